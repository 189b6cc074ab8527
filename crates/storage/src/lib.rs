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

use std::path::{Path, PathBuf};
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

/// Where the metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// SQLite at this path (by default `meta.sqlite` in the data directory).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://...`), shared by several nodes.
    Postgres(String),
}

impl Metadata {
    /// Parses a `--metadata` setting: `postgres://…` or `postgresql://…`, or `sqlite://PATH`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Metadata::Postgres(s.to_owned()))
        } else if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a path".into());
            }
            Ok(Metadata::Sqlite(PathBuf::from(path)))
        } else {
            Err(format!(
                "unknown metadata location {s:?}: expected postgres://… or sqlite://PATH"
            ))
        }
    }
}

/// How many connections a node keeps to PostgreSQL, in its two pools. Every node of a
/// deployment holds up to both at once, so their sum times the nodes must fit the server's
/// `max_connections` (100 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresPools {
    /// Metadata statements. Statements are short; a request waits for a free connection (up
    /// to 10 s, then answers "unavailable") rather than opening more.
    pub metadata: u32,
    /// The GC fence: each completion or mount in flight holds one for its length, so that held
    /// fence guards never starve metadata statements.
    pub fence: u32,
}

impl Default for PostgresPools {
    fn default() -> Self {
        Self {
            metadata: 16,
            fence: 32,
        }
    }
}

impl Storage {
    /// Opens blobs on the filesystem under `data_dir` and the metadata where `metadata` says
    /// (`None`: SQLite in `data_dir`), with the GC fence that suits it.
    pub async fn open(data_dir: &Path, metadata: Option<&Metadata>) -> Result<Self, StorageError> {
        Self::open_with_pools(data_dir, metadata, PostgresPools::default()).await
    }

    /// [`Storage::open`], with PostgreSQL's pools of the given sizes (unused on SQLite).
    pub async fn open_with_pools(
        data_dir: &Path,
        metadata: Option<&Metadata>,
        #[cfg_attr(not(feature = "postgres"), allow(unused_variables))] pools: PostgresPools,
    ) -> Result<Self, StorageError> {
        match metadata {
            None => Self::open_embedded(data_dir).await,
            Some(Metadata::Sqlite(path)) => {
                std::fs::create_dir_all(data_dir)?;
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let blobs = blob::filesystem::FilesystemBlobStore::open(data_dir).await?;
                let meta = meta::sqlite::SqliteMetaStore::open(path).await?;
                Ok(Self {
                    blobs: Arc::new(blobs),
                    meta: Arc::new(meta),
                    gc_fence: fence::GcFence::open(data_dir),
                })
            }
            #[cfg(feature = "postgres")]
            Some(Metadata::Postgres(url)) => {
                std::fs::create_dir_all(data_dir)?;
                let blobs = blob::filesystem::FilesystemBlobStore::open(data_dir).await?;
                let options: sqlx::postgres::PgConnectOptions = url
                    .parse()
                    .map_err(|e: sqlx::Error| StorageError::Other(Box::new(e)))?;
                let meta =
                    meta::postgres::PostgresMetaStore::open_sized(options.clone(), pools.metadata)
                        .await?;
                let fence_pool = meta::postgres::pool(options, pools.fence).await?;
                Ok(Self {
                    blobs: Arc::new(blobs),
                    meta: Arc::new(meta),
                    gc_fence: fence::GcFence::postgres(fence_pool),
                })
            }
            #[cfg(not(feature = "postgres"))]
            Some(Metadata::Postgres(_)) => Err(StorageError::Other(
                "this berth was built without PostgreSQL support (cargo feature `postgres`)".into(),
            )),
        }
    }

    /// Puts the blobs in S3-compatible storage at `url` (`s3://bucket/prefix`), with the
    /// endpoint, region and credentials of the AWS environment. Answers whether the endpoint
    /// is on loopback (unreachable for clients on other hosts).
    #[cfg(feature = "s3")]
    pub async fn with_s3_blobs(mut self, url: &str) -> Result<(Self, bool), StorageError> {
        let location = blob::object_store::S3Location::parse(url)
            .map_err(|e| StorageError::Other(e.into()))?;
        let store = blob::object_store::S3BlobStore::open_s3(&location, None).await?;
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
