//! What a push sends and a pull receives, whatever the file format: manifests (exact bytes,
//! children before the index that names them) and blobs (where their bytes are on disk).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type a pull accepts.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// An OCI descriptor, the members this client reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Matches `OS/ARCH[/VARIANT]`.
    pub fn matches(&self, wanted: &str) -> bool {
        let mut it = wanted.split('/');
        let (os, arch, variant) = (it.next(), it.next(), it.next());
        os == Some(self.os.as_str())
            && arch == Some(self.architecture.as_str())
            && (variant.is_none() || variant == self.variant.as_deref())
    }
}

/// The members of an image manifest or an index that name other content.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBody {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl ManifestBody {
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(bytes).context("a manifest that is not JSON")
    }
    /// The blobs an image manifest names: config first, then layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers)
    }
}

/// One manifest as it is stored: its exact bytes are what its digest covers.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// Checks that `bytes` hash to `digest` and finds the media type (the manifest's own
    /// `mediaType`, else the descriptor's).
    pub fn new(digest: &str, bytes: Vec<u8>, media_type: Option<&str>) -> anyhow::Result<Self> {
        let actual = sha256(&bytes);
        anyhow::ensure!(
            actual == digest,
            "manifest {digest} has the digest {actual}: it is corrupt"
        );
        let own = ManifestBody::parse(&bytes)?.media_type;
        let media_type = own
            .or_else(|| media_type.filter(|m| !m.is_empty()).map(str::to_owned))
            .with_context(|| format!("manifest {digest} has no media type"))?;
        Ok(Self {
            digest: digest.to_owned(),
            media_type,
            bytes,
        })
    }
}

/// Where a blob's bytes are: `size` bytes at `offset` in `path` (a layout's blob file, or a
/// member of a tarball).
#[derive(Debug, Clone)]
pub struct BlobSource {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
    pub offset: u64,
}

/// An image read from local files, ready to push.
#[derive(Debug)]
pub struct LocalImage {
    /// Children first; the last one is what the tag names.
    pub manifests: Vec<Manifest>,
    /// Each blob once, in the order the manifests name them.
    pub blobs: Vec<BlobSource>,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:` digest, checked, for use as a file name.
pub fn digest_hex(digest: &str) -> anyhow::Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("unsupported digest {digest:?}"))?;
    anyhow::ensure!(
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "malformed digest {digest:?}"
    );
    Ok(hex)
}

/// The sha256 digest of `len` bytes at `offset` in `path`, read in 1 MiB pieces.
pub fn hash_file_range(path: &std::path::Path, offset: u64, len: u64) -> anyhow::Result<String> {
    use std::io::{Read as _, Seek as _};
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut r = f.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}
