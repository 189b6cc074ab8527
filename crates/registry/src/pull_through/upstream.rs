//! What the pull-through cache needs of an upstream registry, as a trait: the registry knows
//! no HTTP, so the server supplies the client (`berth::upstream`), and credentials named by a
//! rule's `credentialArn` are resolved there from berth's own configuration.

use async_trait::async_trait;
use model::Digest;
use storage::ByteStream;

/// Where a cached repository's images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    /// The rule's `upstreamRegistryUrl`, normalised to `scheme://host[:port]`.
    pub base_url: String,
    /// The repository path at the upstream (`library/alpine`).
    pub repository: String,
    /// The rule's `credentialArn`, to be resolved by the client.
    pub credential_arn: Option<String>,
}

/// A manifest as the upstream served it.
#[derive(Debug, Clone)]
pub struct UpstreamManifest {
    pub bytes: Vec<u8>,
    /// The upstream's `Content-Type`, when it is a manifest type.
    pub media_type: Option<String>,
    /// The upstream's `Docker-Content-Digest`, if it sent one.
    pub digest: Option<String>,
}

/// A blob being served by the upstream: its length, if announced, and its bytes.
pub struct UpstreamBlob {
    pub size: Option<u64>,
    pub body: ByteStream,
}

/// Why the upstream could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The `credentialArn` names no configured secret (SecretNotFoundException).
    #[error("{0}")]
    SecretNotFound(String),
    /// The secret exists but cannot be read (its file is missing or malformed):
    /// UnableToAccessSecretException.
    #[error("{0}")]
    SecretUnusable(String),
    /// The upstream refused the credentials (or asked for some and none were configured).
    #[error("{0}")]
    Unauthorized(String),
    /// The upstream has no such manifest or blob (404).
    #[error("{0}")]
    NotFound(String),
    /// The upstream answered 429.
    #[error("{0}")]
    TooManyRequests(String),
    /// The upstream cannot be reached, timed out or failed (5xx, a broken connection).
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Upstream: Send + Sync {
    /// Checks that `arn` names a configured, usable secret (Create and Update check it).
    fn check_secret(&self, arn: &str) -> Result<(), UpstreamError>;
    /// The manifest `reference` (a tag or a digest) names at the upstream.
    async fn manifest(
        &self,
        target: &UpstreamTarget,
        reference: &str,
    ) -> Result<UpstreamManifest, UpstreamError>;
    /// Starts downloading a blob.
    async fn blob(
        &self,
        target: &UpstreamTarget,
        digest: &Digest,
    ) -> Result<UpstreamBlob, UpstreamError>;
    /// Reaches the upstream's `/v2/` with the target's credentials (ValidatePullThroughCacheRule).
    async fn ping(&self, target: &UpstreamTarget) -> Result<(), UpstreamError>;
}
