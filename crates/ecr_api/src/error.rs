//! Every failure as an awsJson 1.1 error: `{"__type": ..., "message": ...}` plus the modeled
//! extra members, `X-Amzn-ErrorType`, and 400 (client fault) or 500 (`ServerException`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::RegistryError;
use serde_json::{Map, Value, json};

use crate::CONTENT_TYPE_JSON;

/// Failures of the protocol itself, before or around the registry call.
#[derive(Debug)]
pub enum ApiError {
    UnknownOperation(String),
    /// The body is not JSON of the operation's shape (wrong types, invalid base64).
    Serialization(String),
    MissingAuthenticationToken,
    IncompleteSignature(String),
    /// The signature's credential scope names another service or region.
    InvalidSignature(String),
    /// An access key berth does not know.
    UnrecognizedClient(String),
    /// A member breaks a constraint of the model; the text is ECR's wording.
    InvalidParameter(String),
    /// A member breaks a repository tag constraint (key or value length).
    InvalidTagParameter(String),
    RequestTooLarge(usize),
    /// The body stalled past the idle timeout.
    RequestTimeout,
    /// ECR Public: the operation is not offered in the region the request was signed for
    /// (AWS offers ECR Public in `us-east-1` only).
    UnsupportedCommand(String),
    /// ECR Public: `registryId` names a registry (account id or alias) berth does not have.
    RegistryNotFound(String),
    Registry(RegistryError),
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(e)
    }
}

/// Builds `Invalid parameter at '<field>' failed to satisfy constraint: '<constraint>'`.
pub fn invalid(field: &str, constraint: &str) -> ApiError {
    ApiError::InvalidParameter(format!(
        "Invalid parameter at '{field}' failed to satisfy constraint: '{constraint}'"
    ))
}

/// The exception name, status and extra members of a registry error. Exhaustive on purpose:
/// a new domain error does not compile until it has an ECR meaning.
fn registry_error(e: &RegistryError) -> (&'static str, StatusCode, Map<String, Value>) {
    use RegistryError as E;
    let bad = StatusCode::BAD_REQUEST;
    let none = Map::new();
    match e {
        E::RepositoryNotFound { .. } => ("RepositoryNotFoundException", bad, none),
        E::RepositoryAlreadyExists { .. } => ("RepositoryAlreadyExistsException", bad, none),
        E::RepositoryNotEmpty { .. } => ("RepositoryNotEmptyException", bad, none),
        E::InvalidParameter(_) => ("InvalidParameterException", bad, none),
        E::UploadNotFound { .. } => ("UploadNotFoundException", bad, none),
        E::InvalidLayerPart {
            registry_id,
            name,
            upload_id,
            last_valid_byte_received,
            ..
        } => {
            let mut m = Map::new();
            m.insert("registryId".into(), json!(registry_id));
            m.insert("repositoryName".into(), json!(name.as_str()));
            m.insert("uploadId".into(), json!(upload_id.to_string()));
            if let Some(b) = last_valid_byte_received {
                m.insert("lastValidByteReceived".into(), json!(b));
            }
            ("InvalidLayerPartException", bad, m)
        }
        E::EmptyUpload { .. } => ("EmptyUploadException", bad, none),
        E::LayerPartTooSmall => ("LayerPartTooSmallException", bad, none),
        E::InvalidLayer { .. } => ("InvalidLayerException", bad, none),
        E::LayerAlreadyExists { .. } => ("LayerAlreadyExistsException", bad, none),
        E::LayersNotFound { .. } => ("LayersNotFoundException", bad, none),
        E::LayerInaccessible { .. } => ("LayerInaccessibleException", bad, none),
        E::ReferencedImagesNotFound { .. } => ("ReferencedImagesNotFoundException", bad, none),
        E::ImageAlreadyExists { .. } => ("ImageAlreadyExistsException", bad, none),
        E::ImageTagAlreadyExists { .. } => ("ImageTagAlreadyExistsException", bad, none),
        E::ImageDigestDoesNotMatch { .. } => ("ImageDigestDoesNotMatchException", bad, none),
        E::ImageNotFound { .. } => ("ImageNotFoundException", bad, none),
        E::ScanNotFound { .. } => ("ScanNotFoundException", bad, none),
        E::UnsupportedImageType(_) => ("UnsupportedImageTypeException", bad, none),
        E::TemplateAlreadyExists { .. } => ("TemplateAlreadyExistsException", bad, none),
        E::TemplateNotFound { .. } => ("TemplateNotFoundException", bad, none),
        E::LimitExceeded(_) => ("LimitExceededException", bad, none),
        E::TooManyTags { .. } => ("TooManyTagsException", bad, none),
        E::AccessDenied { .. } => ("AccessDeniedException", bad, none),
        E::RepositoryPolicyNotFound { .. } => ("RepositoryPolicyNotFoundException", bad, none),
        E::RegistryPolicyNotFound { .. } => ("RegistryPolicyNotFoundException", bad, none),
        E::LifecyclePolicyNotFound { .. } => ("LifecyclePolicyNotFoundException", bad, none),
        E::LifecyclePolicyPreviewNotFound { .. } => {
            ("LifecyclePolicyPreviewNotFoundException", bad, none)
        }
        E::RequestBodyFailed(_) => ("RequestTimeoutException", StatusCode::REQUEST_TIMEOUT, none),
        // ECR's answer to a rate limit; the SDKs retry it with backoff.
        E::Throttled { .. } | E::RateExceeded { .. } => ("ThrottlingException", bad, none),
        E::PullThroughCacheRuleAlreadyExists { .. } => {
            ("PullThroughCacheRuleAlreadyExistsException", bad, none)
        }
        E::PullThroughCacheRuleNotFound { .. } => {
            ("PullThroughCacheRuleNotFoundException", bad, none)
        }
        E::UnsupportedUpstreamRegistry(_) => ("UnsupportedUpstreamRegistryException", bad, none),
        E::SecretNotFound(_) => ("SecretNotFoundException", bad, none),
        E::UnableToAccessSecret(_) => ("UnableToAccessSecretException", bad, none),
        E::UnableToGetUpstreamImage { .. } => ("UnableToGetUpstreamImageException", bad, none),
        E::ImageStorageClassUpdateNotSupported(_) => {
            ("ImageStorageClassUpdateNotSupportedException", bad, none)
        }
        E::ImageArchived { .. } => ("ImageArchivedException", bad, none),
        E::ExclusionAlreadyExists(_) => ("ExclusionAlreadyExistsException", bad, none),
        E::ExclusionNotFound(_) => ("ExclusionNotFoundException", bad, none),
        E::Storage(_) => ("ServerException", StatusCode::INTERNAL_SERVER_ERROR, none),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        let (kind, status, extra, message) = match &self {
            ApiError::UnknownOperation(t) => (
                "UnknownOperationException",
                bad,
                Map::new(),
                format!("Unknown operation {t}"),
            ),
            ApiError::Serialization(m) => ("SerializationException", bad, Map::new(), m.clone()),
            ApiError::MissingAuthenticationToken => (
                "MissingAuthenticationTokenException",
                bad,
                Map::new(),
                "Missing Authentication Token".into(),
            ),
            ApiError::IncompleteSignature(m) => {
                ("IncompleteSignatureException", bad, Map::new(), m.clone())
            }
            ApiError::InvalidSignature(m) => {
                ("InvalidSignatureException", bad, Map::new(), m.clone())
            }
            ApiError::UnrecognizedClient(m) => {
                ("UnrecognizedClientException", bad, Map::new(), m.clone())
            }
            ApiError::InvalidParameter(m) => {
                ("InvalidParameterException", bad, Map::new(), m.clone())
            }
            ApiError::InvalidTagParameter(m) => {
                ("InvalidTagParameterException", bad, Map::new(), m.clone())
            }
            ApiError::RequestTooLarge(limit) => (
                "SerializationException",
                StatusCode::PAYLOAD_TOO_LARGE,
                Map::new(),
                format!("Request body exceeds the limit of {limit} bytes"),
            ),
            ApiError::RequestTimeout => (
                "RequestTimeoutException",
                StatusCode::REQUEST_TIMEOUT,
                Map::new(),
                "Your socket connection to the server was not read from or written to within the timeout period.".into(),
            ),
            ApiError::UnsupportedCommand(m) => {
                ("UnsupportedCommandException", bad, Map::new(), m.clone())
            }
            ApiError::RegistryNotFound(m) => {
                ("RegistryNotFoundException", bad, Map::new(), m.clone())
            }
            ApiError::Registry(e) => {
                let (kind, status, extra) = registry_error(e);
                let message = match e {
                    // Never leak storage internals to the client; the log has them.
                    RegistryError::Storage(_) => "An internal error occurred".to_owned(),
                    other => other.to_string(),
                };
                (kind, status, extra, message)
            }
        };
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else {
            tracing::debug!(kind, %message, "request refused");
        }
        let mut body = extra;
        body.insert("__type".into(), json!(kind));
        body.insert("message".into(), json!(message));
        let mut resp = (
            status,
            serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static(CONTENT_TYPE_JSON));
        h.insert("x-amzn-errortype", HeaderValue::from_static(kind));
        if let ApiError::Registry(
            RegistryError::Throttled { retry_after_secs }
            | RegistryError::RateExceeded { retry_after_secs },
        ) = &self
        {
            h.insert("retry-after", HeaderValue::from(*retry_after_secs));
        }
        resp
    }
}
