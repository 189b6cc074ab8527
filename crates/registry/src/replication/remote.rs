//! What replication needs of a registry outside this deployment (another berth, any OCI
//! registry), as a trait: the registry knows no HTTP, so the server supplies the `/v2` client
//! and the credentials `[[replication-remotes]]` configures for each destination.

use async_trait::async_trait;
use model::Digest;
use storage::{ByteStream, ReplicationDestination};

use crate::UpstreamError;

#[async_trait]
pub trait ReplicationRemote: Send + Sync {
    /// Whether `dest` is configured as a remote registry (and so is delivered to over `/v2`).
    fn serves(&self, dest: &ReplicationDestination) -> bool;
    /// Whether the remote repository already holds the blob (then it is not sent again).
    async fn has_blob(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, UpstreamError>;
    /// Uploads a blob of `size` bytes, `body`; the remote checks it against `digest`. A
    /// stream cannot be sent twice, so a PUT that meets an authentication challenge after its
    /// body went out (a token expired between the upload's start and its bytes) is sent again
    /// with the blob read anew from `source`, as containerd's pusher re-opens content.
    async fn put_blob(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        source: &dyn BlobSource,
    ) -> Result<(), UpstreamError>;
    /// Puts a manifest under `reference` (a tag, or its digest).
    async fn put_manifest(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), UpstreamError>;
}

/// Where a blob being sent is read from again when a request must be repeated.
#[async_trait]
pub trait BlobSource: Send + Sync {
    /// The blob's bytes from the start.
    async fn reopen(&self) -> Result<ByteStream, UpstreamError>;
}
