//! `docker save` tarballs. Two generations exist: docker 25 and later write an OCI image
//! layout inside the tarball (plus `manifest.json`); older docker and `skopeo copy
//! docker-archive:` write only `manifest.json`, `<id>.json` configs and `<id>.tar` layers.
//! A push reads either (from the second it builds an OCI manifest); a pull writes the first,
//! which both `docker load` and `skopeo` read.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::json;

use crate::image::{BlobSource, LocalImage, Manifest, digest_hex, hash_file_range, sha256};
use crate::layout::{self, Files, REF_NAME};

/// A tarball's members: name -> (offset of the data in the file, size).
struct Tar {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl Tar {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        let mut members = HashMap::new();
        for entry in archive.entries().context("not a tar archive")? {
            let entry = entry.context("not a tar archive")?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry.path()?.to_string_lossy().into_owned();
            let name = name.trim_start_matches("./").to_owned();
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Self {
            path: path.to_owned(),
            members,
        })
    }
}

impl Files for Tar {
    fn read_small(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let (path, offset, size) = self.locate(name)?;
        anyhow::ensure!(size <= 4 << 20, "{name} is too large");
        let mut buf = vec![0; usize::try_from(size)?];
        std::fs::File::open(path)?.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
    fn locate(&self, name: &str) -> anyhow::Result<(PathBuf, u64, u64)> {
        let (offset, size) = self
            .members
            .get(name)
            .with_context(|| format!("{name} is not in the tarball"))?;
        Ok((self.path.clone(), *offset, *size))
    }
}

/// One entry of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Reads the image in a `docker save` tarball (the one tagged `tag` if several are).
pub fn read(path: &Path, tag: Option<&str>) -> anyhow::Result<LocalImage> {
    let tar = Tar::open(path)?;
    if tar.members.contains_key("index.json") && tar.members.contains_key("oci-layout") {
        return layout::read(&tar, tag).or_else(|e| {
            // docker names its entries with the full reference; fall back to manifest.json.
            if tar.members.contains_key("manifest.json") {
                read_legacy(&tar, tag)
            } else {
                Err(e)
            }
        });
    }
    read_legacy(&tar, tag)
}

fn read_legacy(tar: &Tar, tag: Option<&str>) -> anyhow::Result<LocalImage> {
    let entries: Vec<SaveEntry> = serde_json::from_slice(&tar.read_small("manifest.json")?)
        .context("manifest.json is not a docker-save manifest")?;
    let entry = match tag {
        Some(t) => entries
            .iter()
            .find(|e| {
                e.repo_tags
                    .iter()
                    .any(|r| r == t || r.ends_with(&format!(":{t}")))
            })
            .with_context(|| format!("no image tagged {t:?} in the tarball"))?,
        None => match entries.as_slice() {
            [one] => one,
            _ => anyhow::bail!(
                "the tarball holds {} images: choose one with docker-archive:FILE:TAG",
                entries.len()
            ),
        },
    };
    let mut blobs = Vec::new();
    let mut describe =
        |name: &str, media_type: Option<&str>| -> anyhow::Result<serde_json::Value> {
            let (path, offset, size) = tar.locate(name)?;
            let digest = hash_file_range(&path, offset, size)?;
            let media_type = match media_type {
                Some(m) => m.to_owned(),
                None => layer_media_type(&path, offset, size)?.to_owned(),
            };
            if !blobs.iter().any(|b: &BlobSource| b.digest == digest) {
                blobs.push(BlobSource {
                    digest: digest.clone(),
                    size,
                    path,
                    offset,
                });
            }
            Ok(json!({"mediaType": media_type, "digest": digest, "size": size}))
        };
    let config = describe(
        &entry.config,
        Some("application/vnd.oci.image.config.v1+json"),
    )?;
    let layers = entry
        .layers
        .iter()
        .map(|l| describe(l, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": crate::image::OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }))?;
    let manifest = Manifest::new(&sha256(&bytes), bytes, None)?;
    Ok(LocalImage {
        manifests: vec![manifest],
        blobs,
    })
}

/// A layer's OCI media type from its first bytes (gzip, zstd, else a plain tar).
fn layer_media_type(path: &Path, offset: u64, size: u64) -> anyhow::Result<&'static str> {
    let mut magic = [0u8; 4];
    let n = usize::try_from(size.min(4))?;
    std::fs::File::open(path)?.read_exact_at(&mut magic[..n], offset)?;
    Ok(match magic {
        [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    })
}

/// Writes `dest` as a docker-save tarball holding the single-platform image `image` (already
/// in the layout at `layout_dir`): an OCI layout plus `manifest.json`. The tarball is built
/// under a temporary name and renamed when complete.
pub fn write(
    layout_dir: &Path,
    image: &Manifest,
    repo_tag: &str,
    dest: &Path,
) -> anyhow::Result<()> {
    let body = crate::image::ManifestBody::parse(&image.bytes)?;
    let config = body.config.as_ref().context("the image has no config")?;
    let blob =
        |d: &str| -> anyhow::Result<String> { Ok(format!("blobs/sha256/{}", digest_hex(d)?)) };
    let save = json!([{
        "Config": blob(&config.digest)?,
        "RepoTags": [repo_tag],
        "Layers": body.layers.iter().map(|l| blob(&l.digest)).collect::<anyhow::Result<Vec<_>>>()?,
    }]);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::image::OCI_INDEX,
        "manifests": [{
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": image.bytes.len(),
            "annotations": {REF_NAME: repo_tag, "io.containerd.image.name": repo_tag},
        }],
    });
    let tmp = dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name().context("no file name")?.to_string_lossy()
    ));
    let file = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let small = |tar: &mut tar::Builder<_>, name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes)?;
        Ok(())
    };
    small(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    small(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
    small(&mut tar, "manifest.json", &serde_json::to_vec(&save)?)?;
    small(&mut tar, &blob(&image.digest)?, &image.bytes)?;
    for d in body.blobs() {
        let name = blob(&d.digest)?;
        let mut f = std::fs::File::open(layout_dir.join(&name))?;
        tar.append_file(&name, &mut f)?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {}", tmp.display(), e.error()))?
        .sync_all()?;
    layout::commit(&tmp, dest)
}
