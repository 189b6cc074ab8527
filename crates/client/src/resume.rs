//! What an interrupted push needs to go on: for each layer being uploaded, the upload ID and
//! the next byte to send. One small JSON file per layer, under
//! `$BERTH_STATE_DIR` (default `$XDG_STATE_HOME/berth`, else `~/.local/state/berth`) in
//! `uploads/`, rewritten after every accepted part and removed once the layer is complete.
//! The byte is only a hint: the registry's `lastValidByteReceived` decides.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadState {
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub upload_id: String,
    pub next_byte: u64,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open() -> anyhow::Result<Self> {
        let base = if let Some(d) = std::env::var_os("BERTH_STATE_DIR") {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
            PathBuf::from(d).join("berth")
        } else {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                .join(".local/state/berth")
        };
        let dir = base.join("uploads");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Self { dir })
    }

    /// One file per (registry, repository, layer).
    fn path(&self, registry: &str, repository: &str, digest: &str) -> PathBuf {
        let key = crate::image::sha256(format!("{registry}\n{repository}\n{digest}").as_bytes());
        self.dir.join(format!("{}.json", &key[7..31]))
    }

    pub fn load(&self, registry: &str, repository: &str, digest: &str) -> Option<UploadState> {
        let bytes = std::fs::read(self.path(registry, repository, digest)).ok()?;
        serde_json::from_slice::<UploadState>(&bytes)
            .ok()
            .filter(|s| s.registry == registry && s.repository == repository && s.digest == digest)
    }

    pub fn save(&self, s: &UploadState) -> anyhow::Result<()> {
        crate::layout::write_atomic(
            &self.path(&s.registry, &s.repository, &s.digest),
            &serde_json::to_vec(s)?,
        )
    }

    pub fn remove(&self, registry: &str, repository: &str, digest: &str) {
        let _ = std::fs::remove_file(self.path(registry, repository, digest));
    }
}
