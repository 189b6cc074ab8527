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
    /// Uploads a blob of `size` bytes; the remote checks it against `digest`.
    async fn put_blob(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
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
