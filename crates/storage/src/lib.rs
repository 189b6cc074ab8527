//! Where berth keeps things: the `BlobStore` trait (content-addressed bytes and upload staging)
//! and the `MetaStore` trait (repositories, images, tags, blob links, upload sessions), with
//! the embedded backends (filesystem, SQLite). Speaks model types only; knows no HTTP and no
//! protocol rules. Never calls the registry.

pub mod blob;
pub mod failpoint;
pub mod fence;
pub mod meta;

#[cfg(test)]
mod conformance;

use std::path::Path;
use std::sync::Arc;

pub use blob::{BlobRange, BlobReader, BlobStore, ByteStream};
pub use meta::*;

/// What went wrong in a backend, in kinds the registry can act on. Backend error types
/// (sqlx, io) stay inside this crate, carried as the source.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    /// A concurrent change or a uniqueness rule stopped the write; nothing was changed.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The data being written failed before its end (the client's body stopped or broke);
    /// nothing of it is acknowledged.
    #[error("the data source failed: {0}")]
    SourceFailed(String),
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// Whether a backing service (object storage, a database server) could not be reached
    /// or kept failing: the request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            _ => StorageError::Other(Box::new(e)),
        }
    }
}

/// The two stores a registry runs on.
#[derive(Clone)]
pub struct Storage {
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
    /// Orders GC's file deletions against writers that make a blob referenced.
    pub gc_fence: fence::GcFence,
}

impl Storage {
    /// Puts the blobs in S3-compatible storage at `url` (`s3://bucket/prefix`), with the
    /// endpoint, region and credentials of the AWS environment. Answers whether the endpoint
    /// is on loopback (unreachable for clients on other hosts).
    #[cfg(feature = "s3")]
    pub fn with_s3_blobs(mut self, url: &str) -> Result<(Self, bool), StorageError> {
        let location = blob::object_store::S3Location::parse(url)
            .map_err(|e| StorageError::Other(e.into()))?;
        let store = blob::object_store::S3BlobStore::open_s3(&location, None)?;
        let loopback = store.endpoint_is_loopback();
        self.blobs = Arc::new(store);
        Ok((self, loopback))
    }

    /// Opens the embedded backends under `data_dir`: blobs on the filesystem, metadata in
    /// SQLite. Creates the directory on first use.
    pub async fn open_embedded(data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir)?;
        let blobs = blob::filesystem::FilesystemBlobStore::open(data_dir).await?;
        let meta = meta::sqlite::SqliteMetaStore::open(&data_dir.join("meta.sqlite")).await?;
        Ok(Self {
            blobs: Arc::new(blobs),
            meta: Arc::new(meta),
            gc_fence: fence::GcFence::open(data_dir),
        })
    }
}
