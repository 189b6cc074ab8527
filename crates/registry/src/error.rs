use model::{Digest, RepositoryName, UploadId};
use storage::StorageError;

/// Everything that can go wrong in a registry use case, in domain words. Each front end maps
/// it once, exhaustively, to its protocol's error.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
    )]
    RepositoryNotFound { registry_id: String, name: String },
    #[error(
        "The repository with name '{name}' already exists in the registry with id '{registry_id}'"
    )]
    RepositoryAlreadyExists {
        registry_id: String,
        name: RepositoryName,
    },
    #[error(
        "The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted because it still contains images"
    )]
    RepositoryNotEmpty {
        registry_id: String,
        name: RepositoryName,
    },
    /// A request value breaks a constraint; the text says which, in ECR's wording.
    #[error("{0}")]
    InvalidParameter(String),
    #[error(
        "The upload with id '{upload_id}' does not exist in the repository with name '{name}' in the registry with id '{registry_id}'"
    )]
    UploadNotFound {
        registry_id: String,
        name: RepositoryName,
        upload_id: String,
    },
    #[error("{reason}")]
    InvalidLayerPart {
        registry_id: String,
        name: RepositoryName,
        upload_id: UploadId,
        /// The last byte stored so far; `None` while the upload holds no byte.
        last_valid_byte_received: Option<u64>,
        reason: String,
    },
    #[error("The upload with id '{upload_id}' does not contain any layer parts")]
    EmptyUpload { upload_id: UploadId },
    #[error("All layer parts except the last part should be at least 5MB")]
    LayerPartTooSmall,
    #[error("The layer digest '{given}' does not match the computed digest '{computed}'")]
    InvalidLayer { given: String, computed: Digest },
    #[error(
        "The layer with digest '{digest}' already exists in the repository with name '{name}' in registry with id '{registry_id}'"
    )]
    LayerAlreadyExists {
        registry_id: String,
        name: RepositoryName,
        digest: Digest,
    },
    #[error("Layers with digests {} required for pushing image into repository with name '{name}' in the registry with id '{registry_id}' do not exist", digest_list(.digests))]
    LayersNotFound {
        registry_id: String,
        name: RepositoryName,
        digests: Vec<Digest>,
    },
    #[error(
        "The layer with digest '{digest}' in the repository with name '{name}' in the registry with id '{registry_id}' is not associated with an image"
    )]
    LayerInaccessible {
        registry_id: String,
        name: RepositoryName,
        digest: Digest,
    },
    #[error("Manifests with digests {} referenced by the image index do not exist in the repository with name '{name}' in the registry with id '{registry_id}'", digest_list(.digests))]
    ReferencedImagesNotFound {
        registry_id: String,
        name: RepositoryName,
        digests: Vec<Digest>,
    },
    #[error("Image with digest '{digest}' and tag '{}' already exists in the repository with name '{name}' in registry with id '{registry_id}'", .tag.as_deref().unwrap_or("null"))]
    ImageAlreadyExists {
        registry_id: String,
        name: RepositoryName,
        digest: Digest,
        tag: Option<String>,
    },
    #[error(
        "The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because the tag is immutable."
    )]
    ImageTagAlreadyExists { name: RepositoryName, tag: String },
    #[error("Provided digest '{given}' does not match calculated digest '{computed}'")]
    ImageDigestDoesNotMatch { given: String, computed: Digest },
    #[error("The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{name}' in the registry with id '{registry_id}'", .digest.as_deref().unwrap_or("null"), .tag.as_deref().unwrap_or("null"))]
    ImageNotFound {
        registry_id: String,
        name: RepositoryName,
        digest: Option<String>,
        tag: Option<String>,
    },
    /// DescribeImageScanFindings for an image no scan has run on (berth has no scanner).
    #[error("Image scan does not exist for the image with '{{imageDigest:'{}', imageTag:'{}'}}' in the repository with name '{name}' in the registry with id '{registry_id}'", .digest.as_deref().unwrap_or("null"), .tag.as_deref().unwrap_or("null"))]
    ScanNotFound {
        registry_id: String,
        name: RepositoryName,
        digest: Option<String>,
        tag: Option<String>,
    },
    /// StartImageScan on an image that cannot be scanned: ECR's answer when no scan can run.
    #[error("{0}")]
    UnsupportedImageType(String),
    #[error(
        "A repository creation template with prefix '{prefix}' already exists in the registry with id '{registry_id}'"
    )]
    TemplateAlreadyExists { registry_id: String, prefix: String },
    #[error(
        "The repository creation template with prefix '{prefix}' does not exist in the registry with id '{registry_id}'"
    )]
    TemplateNotFound { registry_id: String, prefix: String },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("The repository can have at most {limit} tags")]
    TooManyTags { limit: usize },
    #[error("User: {principal} is not authorized to perform: {action} on resource: {resource} {}", denial_reason(*.explicit, *.identity_based, action))]
    AccessDenied {
        principal: String,
        action: String,
        resource: String,
        explicit: bool,
        /// Whether the caller's identity policy denied it (or, for an implicit deny, did not
        /// allow it), rather than a resource policy: AWS names which in the message.
        identity_based: bool,
    },
    #[error(
        "Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
    )]
    RepositoryPolicyNotFound {
        registry_id: String,
        name: RepositoryName,
    },
    #[error(
        "Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
    )]
    LifecyclePolicyNotFound {
        registry_id: String,
        name: RepositoryName,
    },
    #[error(
        "There is no lifecycle policy preview for the repository with name '{name}' in the registry with id '{registry_id}'"
    )]
    LifecyclePolicyPreviewNotFound {
        registry_id: String,
        name: RepositoryName,
    },
    #[error("Registry policy does not exist in the registry with id '{registry_id}'")]
    RegistryPolicyNotFound { registry_id: String },
    /// The request body stopped or broke before its end (an idle timeout, a disconnect).
    #[error("The request body ended before it was complete: {0}")]
    RequestBodyFailed(String),
    /// The memory budget for request bodies stayed full past the wait: retry after this many
    /// seconds. Nothing of the request was read or stored.
    #[error("Rate exceeded: too many upload bodies in flight; retry after {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The caller's request-rate quota for the operation is spent (`quota.rs`): ECR's
    /// ThrottlingException, `/v2`'s 429 TOOMANYREQUESTS, both with `Retry-After`.
    #[error("Rate exceeded")]
    RateExceeded { retry_after_secs: u64 },
    /// CreatePullThroughCacheRule for a prefix that already has a rule.
    #[error(
        "A pull through cache rule with the prefix '{prefix}' already exists in the registry with id '{registry_id}'"
    )]
    PullThroughCacheRuleAlreadyExists { registry_id: String, prefix: String },
    #[error(
        "The pull through cache rule with the prefix '{prefix}' does not exist in the registry with id '{registry_id}'"
    )]
    PullThroughCacheRuleNotFound { registry_id: String, prefix: String },
    /// An `upstreamRegistryUrl` berth cannot mirror (not a registry host, or `http://` to a
    /// host that is not loopback without the server allowing it).
    #[error("{0}")]
    UnsupportedUpstreamRegistry(String),
    /// A `credentialArn` that names no configured secret.
    #[error("{0}")]
    SecretNotFound(String),
    /// A configured secret that cannot be read (its file is missing or malformed).
    #[error("{0}")]
    UnableToAccessSecret(String),
    /// A pull-through cache's upstream refused, throttled or failed a fetch berth needed and
    /// had nothing cached to serve instead.
    #[error("{message}")]
    UnableToGetUpstreamImage {
        reason: crate::UpstreamFailure,
        message: String,
    },
    /// UpdateImageStorageClass that cannot be done: the image is in the class already, is
    /// being restored, or goes with an index.
    #[error("{0}")]
    ImageStorageClassUpdateNotSupported(String),
    /// A pull (or scan) of an image in the archive, or still being restored from it.
    #[error(
        "The image with digest '{digest}' in the repository with name '{name}' in the registry with id '{registry_id}' is {status}; it cannot be pulled until it is restored to the standard storage class"
    )]
    ImageArchived {
        registry_id: String,
        name: RepositoryName,
        digest: Digest,
        /// `archived` or `being restored`.
        status: &'static str,
    },
    #[error(
        "The pull time update exclusion for the principal '{0}' already exists in the registry"
    )]
    ExclusionAlreadyExists(String),
    #[error(
        "The pull time update exclusion for the principal '{0}' does not exist in the registry"
    )]
    ExclusionNotFound(String),
    #[error("internal storage failure")]
    Storage(#[source] StorageError),
}

fn digest_list(d: &[Digest]) -> String {
    let items: Vec<&str> = d.iter().map(Digest::as_str).collect();
    format!("'[{}]'", items.join(", "))
}

fn denial_reason(explicit: bool, identity_based: bool, action: &str) -> String {
    let (article, kind) = if identity_based {
        ("an", "identity-based")
    } else {
        ("a", "resource-based")
    };
    if explicit {
        format!("with an explicit deny in {article} {kind} policy")
    } else {
        format!("because no {kind} policy allows the {action} action")
    }
}

impl RegistryError {
    /// A backend (the metadata database, the blob store) cannot be reached right now: the
    /// request may succeed when retried (`/v2` answers 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RegistryError::Storage(StorageError::Unavailable(_)))
    }
}

impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> Self {
        match e {
            // The client's fault, not the storage's: no ServerException, no error log.
            StorageError::SourceFailed(m) => RegistryError::RequestBodyFailed(m),
            e => RegistryError::Storage(e),
        }
    }
}
