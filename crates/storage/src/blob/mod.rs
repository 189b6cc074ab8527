//! Content-addressed blob storage and upload staging.

mod direct;
pub mod filesystem;
#[cfg(feature = "s3")]
pub mod object_store;

use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use model::{Digest, UploadId};

use crate::StorageError;

/// A stream of bytes going into or out of a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// An inclusive byte range of a blob, as HTTP `Range` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRange {
    pub first: u64,
    pub last: u64,
}

/// An open blob: its total size and the requested bytes.
pub struct BlobReader {
    pub size: u64,
    pub body: ByteStream,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes one part of an upload, starting at byte `offset` of the layer, and returns the
    /// number of bytes written and the upload's new staging state. `staging` is the state
    /// saved with the last acknowledged part (empty before the first): the store continues
    /// from it, so a part written but never acknowledged is overwritten by the next write at
    /// the same offset, and the part may arrive at any node. The caller saves the new state
    /// with the part (`MetaStore::record_part`). `observe` sees every byte in order, so the
    /// caller can hash while writing. The part is durable when this returns.
    async fn write_part(
        &self,
        upload: UploadId,
        offset: u64,
        staging: &[u8],
        data: ByteStream,
        observe: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
    ) -> Result<(u64, Vec<u8>), StorageError>;

    /// Turns the first `size` staged bytes of the upload (as its saved `staging` state
    /// describes them) into the blob `digest`, atomically: readers see either no blob or the
    /// whole blob. The caller has verified the digest. Committing a digest the store already
    /// holds keeps the stored copy and discards the upload's bytes.
    async fn commit_upload(
        &self,
        upload: UploadId,
        staging: &[u8],
        size: u64,
        digest: &Digest,
    ) -> Result<(), StorageError>;

    /// The first `size` staged bytes of an upload, for the rare digest that was not computed
    /// while the parts arrived.
    async fn read_upload(
        &self,
        upload: UploadId,
        staging: &[u8],
        size: u64,
    ) -> Result<ByteStream, StorageError>;

    /// Discards an upload's staged bytes; succeeds if there are none. `staging` is its saved
    /// state, or empty when the metadata no longer knows the upload (an orphan GC found).
    async fn delete_upload(&self, upload: UploadId, staging: &[u8]) -> Result<(), StorageError>;

    /// The size of a stored blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError>;

    /// Opens a blob, or the inclusive `range` of it (the caller checks the range against the
    /// size it learned from the metadata store or `stat`).
    async fn open(
        &self,
        digest: &Digest,
        range: Option<BlobRange>,
    ) -> Result<BlobReader, StorageError>;

    /// A local file holding exactly the blob's bytes, for serving it without copying through
    /// userspace (`sendfile`). `None` when the backend keeps no local files (the default) or
    /// the blob is missing.
    async fn open_file(&self, _digest: &Digest) -> Result<Option<std::fs::File>, StorageError> {
        Ok(None)
    }

    /// A URL from which a client may GET the blob directly, valid for `expires_in`, for
    /// backends that can presign one (S3). `None` when the backend cannot, or the blob is
    /// missing: the caller then serves the bytes itself.
    async fn download_url(
        &self,
        _digest: &Digest,
        _expires_in: std::time::Duration,
    ) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// Removes a blob; succeeds if it is already gone.
    async fn delete(&self, digest: &Digest) -> Result<(), StorageError>;

    /// Every stored blob with its size and last modification.
    async fn list_blobs(&self) -> Result<Vec<(Digest, u64, SystemTime)>, StorageError>;

    /// Every staged upload with its last modification.
    async fn list_uploads(&self) -> Result<Vec<(UploadId, SystemTime)>, StorageError>;
}
