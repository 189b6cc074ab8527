//! Every failure as an OCI error: `{"errors":[{"code","message","detail"}]}` with the status
//! the Distribution spec (and ECR's `/v2` endpoint, ecr-api.md section 6.4) uses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::RegistryError;
use serde_json::json;

use crate::API_VERSION;

#[derive(Debug)]
pub enum OciError {
    /// No or unusable credentials: 401 with the Basic challenge.
    Unauthorized {
        realm: String,
    },
    /// A genuine token that has expired, or an authenticated caller refused.
    Denied(String),
    NameInvalid(String),
    NotFound,
    DigestInvalid(String),
    BlobUnknown(String),
    /// A blob DELETE refused because an image of the repository references the blob.
    BlobReferenced(String),
    ManifestUnknown(String),
    ManifestInvalid(String),
    ManifestTooLarge(usize),
    TagInvalid(String),
    /// A chunk that does not start where the upload stands.
    RangeInvalid(String),
    BlobUploadUnknown(String),
    Unsupported(String),
    PaginationInvalid(String),
    Registry(RegistryError),
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> Self {
        OciError::Registry(e)
    }
}

/// Status and code of a registry error on `/v2`. Exhaustive on purpose: a new domain error
/// does not compile until it has an OCI meaning.
fn registry_error(e: &RegistryError) -> (StatusCode, &'static str) {
    use RegistryError as E;
    use StatusCode as S;
    match e {
        E::RepositoryNotFound { .. } => (S::NOT_FOUND, "NAME_UNKNOWN"),
        E::RepositoryAlreadyExists { .. } | E::RepositoryNotEmpty { .. } => (S::CONFLICT, "DENIED"),
        E::InvalidParameter(_) => (S::BAD_REQUEST, "MANIFEST_INVALID"),
        E::UploadNotFound { .. } => (S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        E::InvalidLayerPart { .. } => (S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
        E::EmptyUpload { .. } | E::LayerPartTooSmall | E::LayerAlreadyExists { .. } => {
            (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
        }
        E::InvalidLayer { .. } | E::ImageDigestDoesNotMatch { .. } => {
            (S::BAD_REQUEST, "DIGEST_INVALID")
        }
        E::LayersNotFound { .. } | E::ReferencedImagesNotFound { .. } => {
            (S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
        }
        E::LayerInaccessible { .. } => (S::NOT_FOUND, "BLOB_UNKNOWN"),
        E::ImageAlreadyExists { .. } => (S::BAD_REQUEST, "MANIFEST_INVALID"),
        E::ImageTagAlreadyExists { .. } => (S::BAD_REQUEST, "TAG_INVALID"),
        E::ImageNotFound { .. } => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
        E::RepositoryPolicyNotFound { .. }
        | E::RegistryPolicyNotFound { .. }
        | E::LifecyclePolicyNotFound { .. }
        | E::LifecyclePolicyPreviewNotFound { .. }
        | E::ScanNotFound { .. }
        | E::TemplateNotFound { .. } => (S::NOT_FOUND, "NOT_FOUND"),
        E::TemplateAlreadyExists { .. } => (S::CONFLICT, "DENIED"),
        E::UnsupportedImageType(_) => (S::BAD_REQUEST, "UNSUPPORTED"),
        E::LimitExceeded(_) | E::TooManyTags { .. } | E::AccessDenied { .. } => {
            (S::FORBIDDEN, "DENIED")
        }
        E::RequestBodyFailed(_) => (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
        // A storage service (S3, a database) that stays down: the client may retry later.
        E::Storage(e) if e.is_unavailable() => (S::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        E::Throttled { .. } | E::RateExceeded { .. } => (S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        E::PullThroughCacheRuleAlreadyExists { .. } => (S::CONFLICT, "DENIED"),
        E::PullThroughCacheRuleNotFound { .. } => (S::NOT_FOUND, "NOT_FOUND"),
        E::UnsupportedUpstreamRegistry(_) => (S::BAD_REQUEST, "UNSUPPORTED"),
        E::SecretNotFound(_) | E::UnableToAccessSecret(_) => (S::FORBIDDEN, "DENIED"),
        // The upstream of a cache repository could not serve what is not cached: the client
        // may retry later.
        E::UnableToGetUpstreamImage { .. } => (S::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        E::ImageStorageClassUpdateNotSupported(_) => (S::BAD_REQUEST, "UNSUPPORTED"),
        // ECR: "Requests to pull the archived image will fail with a 404 error."
        E::ImageArchived { .. } => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
        E::ExclusionAlreadyExists(_) => (S::CONFLICT, "DENIED"),
        E::ExclusionNotFound(_) => (S::NOT_FOUND, "NOT_FOUND"),
        E::Storage(_) => (S::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let (status, code, message) = match &self {
            OciError::Unauthorized { .. } => {
                (S::UNAUTHORIZED, "UNAUTHORIZED", "Not Authorized".to_owned())
            }
            OciError::Denied(m) => (S::FORBIDDEN, "DENIED", m.clone()),
            OciError::NameInvalid(n) => (
                S::BAD_REQUEST,
                "NAME_INVALID",
                format!("invalid repository name '{n}'"),
            ),
            OciError::NotFound => (S::NOT_FOUND, "NOT_FOUND", "no such route".to_owned()),
            OciError::DigestInvalid(m) => (S::BAD_REQUEST, "DIGEST_INVALID", m.clone()),
            OciError::BlobUnknown(d) => (
                S::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob unknown to registry: {d}"),
            ),
            OciError::BlobReferenced(d) => (
                S::METHOD_NOT_ALLOWED,
                "DENIED",
                format!(
                    "blob {d} is referenced by an image of this repository; delete the image first"
                ),
            ),
            OciError::ManifestUnknown(m) => (S::NOT_FOUND, "MANIFEST_UNKNOWN", m.clone()),
            OciError::ManifestInvalid(m) => (S::BAD_REQUEST, "MANIFEST_INVALID", m.clone()),
            OciError::ManifestTooLarge(max) => (
                S::PAYLOAD_TOO_LARGE,
                "MANIFEST_INVALID",
                format!("manifest exceeds {max} bytes"),
            ),
            OciError::TagInvalid(m) => (S::BAD_REQUEST, "TAG_INVALID", m.clone()),
            OciError::RangeInvalid(m) => {
                (S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", m.clone())
            }
            OciError::BlobUploadUnknown(m) => (S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", m.clone()),
            OciError::Unsupported(m) => (S::METHOD_NOT_ALLOWED, "UNSUPPORTED", m.clone()),
            OciError::PaginationInvalid(m) => {
                (S::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", m.clone())
            }
            OciError::Registry(e) => {
                let (status, code) = registry_error(e);
                let message = match e {
                    RegistryError::Storage(_) => "An internal error occurred".to_owned(),
                    RegistryError::ImageNotFound { .. } => "Requested image not found".to_owned(),
                    other => other.to_string(),
                };
                (status, code, message)
            }
        };
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else {
            tracing::debug!(code, %message, "request refused");
        }
        let body = json!({"errors": [{"code": code, "message": message, "detail": null}]});
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        if let OciError::Registry(
            RegistryError::Throttled { retry_after_secs }
            | RegistryError::RateExceeded { retry_after_secs },
        ) = &self
        {
            h.insert("retry-after", HeaderValue::from(*retry_after_secs));
        }
        if let OciError::Unauthorized { realm } = &self {
            let challenge = format!("Basic realm=\"{realm}\",service=\"ecr.amazonaws.com\"");
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.insert("www-authenticate", v);
            }
        }
        resp
    }
}
