//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`. Read for a push, written for a pull. The same reading serves a
//! docker-save tarball that holds a layout (docker 25 and later write one).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::image::{
    BlobSource, Descriptor, LocalImage, Manifest, ManifestBody, digest_hex, is_index,
};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Manifests and index.json are read whole; anything larger is not one.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Where a layout's files are: a directory, or members of a tarball.
pub trait Files {
    /// The bytes of a small file (`index.json`, a manifest).
    fn read_small(&self, name: &str) -> anyhow::Result<Vec<u8>>;
    /// Where the bytes of the file `name` are, and how many there are.
    fn locate(&self, name: &str) -> anyhow::Result<(PathBuf, u64, u64)>;
}

pub struct Dir(pub PathBuf);

impl Files for Dir {
    fn read_small(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.0.join(name);
        let len = std::fs::metadata(&path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        anyhow::ensure!(len <= MAX_MANIFEST, "{} is too large", path.display());
        std::fs::read(&path).with_context(|| format!("{}", path.display()))
    }
    fn locate(&self, name: &str) -> anyhow::Result<(PathBuf, u64, u64)> {
        let path = self.0.join(name);
        let len = std::fs::metadata(&path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        Ok((path, 0, len))
    }
}

fn blob_name(digest: &str) -> anyhow::Result<String> {
    Ok(format!("blobs/sha256/{}", digest_hex(digest)?))
}

/// Reads the image `reference` names (an `org.opencontainers.image.ref.name`), or the only
/// one in `index.json`, with everything it needs.
pub fn read(files: &dyn Files, reference: Option<&str>) -> anyhow::Result<LocalImage> {
    let index: ManifestBody = serde_json::from_slice(&files.read_small("index.json")?)
        .context("index.json is not an OCI index")?;
    let top = match reference {
        Some(r) => index
            .manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(r))
            .with_context(|| format!("no image named {r:?} in index.json"))?,
        None => match index.manifests.as_slice() {
            [one] => one,
            [] => anyhow::bail!("index.json names no image"),
            many => anyhow::bail!(
                "index.json names {} images: choose one with oci:DIR:REF (refs: {})",
                many.len(),
                many.iter()
                    .filter_map(|d| d.annotations.get(REF_NAME).cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let mut image = LocalImage {
        manifests: vec![],
        blobs: vec![],
    };
    add_manifest(files, top, &mut image, 0)?;
    Ok(image)
}

fn add_manifest(
    files: &dyn Files,
    d: &Descriptor,
    image: &mut LocalImage,
    depth: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(depth < 4, "indexes nested too deep");
    if image.manifests.iter().any(|m| m.digest == d.digest) {
        return Ok(());
    }
    let bytes = files.read_small(&blob_name(&d.digest)?)?;
    let manifest = Manifest::new(&d.digest, bytes, Some(&d.media_type))?;
    let body = ManifestBody::parse(&manifest.bytes)?;
    if is_index(&manifest.media_type) {
        for child in &body.manifests {
            add_manifest(files, child, image, depth + 1)?;
        }
    } else {
        for b in body.blobs() {
            if image.blobs.iter().any(|x| x.digest == b.digest) {
                continue;
            }
            let (path, offset, size) = files
                .locate(&blob_name(&b.digest)?)
                .with_context(|| format!("blob {} is missing", b.digest))?;
            anyhow::ensure!(
                size == b.size,
                "blob {} has {size} bytes where the manifest says {}",
                b.digest,
                b.size
            );
            image.blobs.push(BlobSource {
                digest: b.digest.clone(),
                size,
                path,
                offset,
            });
        }
    }
    image.manifests.push(manifest);
    Ok(())
}

/// A layout being written by a pull. Every file appears under its final name only once
/// complete (temporary name, fsync, rename), so an interrupted pull leaves no half blob.
pub struct Writer {
    pub root: PathBuf,
}

impl Writer {
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("blobs/sha256"))
            .with_context(|| format!("create {}", root.display()))?;
        let w = Self {
            root: root.to_owned(),
        };
        if !root.join("oci-layout").exists() {
            w.write_atomic(
                &root.join("oci-layout"),
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        Ok(w)
    }

    pub fn blob_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        Ok(self.root.join(blob_name(digest)?))
    }

    /// A temporary name beside the blob's final one; dot-prefixed so no reader of the
    /// layout takes it for a blob.
    pub fn partial_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .root
            .join("blobs/sha256")
            .join(format!(".{}.partial", digest_hex(digest)?)))
    }

    /// Whether the blob is already there with its size (its bytes were checked when it was
    /// renamed into place).
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        self.blob_path(digest)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == size)
    }

    pub fn write_manifest(&self, m: &Manifest) -> anyhow::Result<()> {
        self.write_atomic(&self.blob_path(&m.digest)?, &m.bytes)
    }

    /// Names the image `top` in `index.json` as `reference`, replacing an entry of the same
    /// name.
    pub fn tag(&self, top: &Manifest, reference: &str) -> anyhow::Result<()> {
        let path = self.root.join("index.json");
        let mut index: Value = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).context("index.json is not JSON")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                json!({"schemaVersion": 2, "mediaType": crate::image::OCI_INDEX, "manifests": []})
            }
            Err(e) => return Err(e).context("index.json"),
        };
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .context("index.json has no manifests array")?;
        manifests.retain(|d| d["annotations"][REF_NAME].as_str() != Some(reference));
        manifests.push(json!({
            "mediaType": top.media_type,
            "digest": top.digest,
            "size": top.bytes.len(),
            "annotations": {REF_NAME: reference},
        }));
        self.write_atomic(&path, &serde_json::to_vec(&index)?)
    }

    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(path, bytes)
    }
}

/// Temporary file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a path with no directory")?;
    let tmp = dir.join(format!(
        ".{}.partial",
        path.file_name().context("no file name")?.to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    commit(&tmp, path)
}

/// Renames a complete temporary file into place and makes the rename durable.
pub fn commit(tmp: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::rename(tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
