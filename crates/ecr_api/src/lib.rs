//! The ECR JSON API front end (awsJson 1.1): `POST /` dispatched on `X-Amz-Target`, plus the
//! self-authorising layer download URLs GetDownloadUrlForLayer hands out. Parses and validates
//! requests into model types, calls the registry, and renders results and errors; it holds
//! no registry rules and never touches storage.

mod account_settings;
mod archive;
mod authentication;
mod authorization;
mod body;
mod creation_templates;
mod download;
mod dto;
mod error;
mod images;
mod layers;
mod lifecycle;
mod policies;
mod public;
mod pull_through;
mod referrers;
mod replication;
mod repositories;
mod scanning;
pub mod shapes;
mod validate;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auth::SigningKey;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use registry::{Principal, Registries, Registry};
use serde::Deserialize;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tracing::Instrument;

pub use error::ApiError;
use shapes::ecr::{self, Operation};
use shapes::ecr_public;

pub const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.1";

/// Largest request body accepted: a 20 MiB part is ~28 MB of base64 inside JSON.
pub const MAX_REQUEST_BODY: usize = 40 * 1024 * 1024;

/// What the ECR front end needs to know about the deployment.
#[derive(Clone)]
pub struct EcrApiConfig {
    /// The account of callers when no access keys are configured.
    pub account_id: String,
    /// Access keys to verify signatures against; `None` accepts any well-formed signature.
    pub credentials: Option<Arc<dyn auth::CredentialStore>>,
    /// Base URL for download URLs and `proxyEndpoint`; by default taken from the request's
    /// `Host` (what the client connected to).
    pub public_url: Option<String>,
    /// `http` or `https`: the scheme of URLs built from `Host`.
    pub scheme: &'static str,
    pub signing_key: SigningKey,
    /// The one region ECR Public answers in; a request signed for another region gets
    /// UnsupportedCommandException, as AWS answers outside `us-east-1`.
    pub public_region: String,
    /// The domain of registry host names: with it, `repositoryUri` and `proxyEndpoint` name
    /// the registry as ECR does (`<account>.dkr.ecr.<region>.<domain>`), keeping the port
    /// clients reach berth on; without it, they name the host the request reached.
    pub registry_domain: Option<String>,
}

/// What an `X-Amz-Target` names: an operation of ECR or of ECR Public (`None`: not one berth
/// knows, answered with UnknownOperationException once the caller is authenticated).
#[derive(Debug, Clone, Copy)]
enum Target {
    Ecr(Option<Operation>),
    Public(Option<ecr_public::Operation>),
}

impl Target {
    fn parse(target: &str) -> Self {
        let name = |prefix: &str| {
            target
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
        };
        match name(ecr_public::TARGET_PREFIX) {
            Some(name) => Target::Public(ecr_public::Operation::from_name(name)),
            None => Target::Ecr(name(ecr::TARGET_PREFIX).and_then(Operation::from_name)),
        }
    }

    /// The service of the SigV4 credential scope the request must carry.
    fn signing_name(self) -> &'static str {
        match self {
            Target::Ecr(_) => ecr::SIGNING_NAME,
            Target::Public(_) => ecr_public::SIGNING_NAME,
        }
    }
}

#[derive(Clone)]
pub struct EcrApi {
    registries: Arc<Registries>,
    config: Arc<EcrApiConfig>,
}

/// What a handler sees of one request.
pub(crate) struct Ctx<'a> {
    pub api: &'a EcrApi,
    /// The registries of the region the request is signed for (ECR Public: the default
    /// region's, as it is region-less).
    pub registry: Arc<Registry>,
    pub principal: Principal,
    /// `scheme://host[:port]` this request reached.
    pub base_url: String,
}

impl Ctx<'_> {
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `host[:port]` of the private registry of `account` in this request's region, as
    /// `repositoryUri` and `proxyEndpoint` name it.
    pub fn registry_host(&self, account: &str) -> String {
        let host = self.base_url.split("://").nth(1).unwrap_or(&self.base_url);
        match &self.api.config.registry_domain {
            Some(domain) => {
                let port = host
                    .rsplit_once(':')
                    .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .map_or(String::new(), |(_, p)| format!(":{p}"));
                format!(
                    "{account}.dkr.ecr.{}.{domain}{port}",
                    self.registry.region()
                )
            }
            None => host.to_owned(),
        }
    }

    /// `scheme://` + [`Ctx::registry_host`]: GetAuthorizationToken's `proxyEndpoint`.
    pub fn proxy_endpoint(&self, account: &str) -> String {
        let scheme = self.base_url.split("://").next().unwrap_or("http");
        format!("{scheme}://{}", self.registry_host(account))
    }
}

/// The router: `POST /` for the API and `GET /_berth/layers/...` for downloads.
pub fn router(registries: Arc<Registries>, config: EcrApiConfig) -> Router {
    let api = EcrApi {
        registries,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", post(handle))
        .route(
            "/_berth/layers/{*rest}",
            get(download::get_layer).head(download::get_layer),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(api)
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn base_url(api: &EcrApi, headers: &HeaderMap) -> String {
    if let Some(u) = &api.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", api.config.scheme)
}

/// A large body's SHA-256 runs on a blocking thread, in batches of this many bytes, while the
/// rest of it arrives (an UploadLayerPart of 20 MiB is ~28 MB). Small bodies are hashed at the
/// end on the request's task.
const HASH_BATCH: usize = 2 * 1024 * 1024;

/// The SHA-256 (for SigV4) of a body that is arriving: the chunks not yet hashed and at most
/// one batch being hashed on a blocking thread. It holds at most two batches beyond the body
/// itself (the chunks are shared with the body's buffer until hashed), and it occupies a
/// blocking thread only while there are bytes to hash, never while waiting for a slow client.
struct PayloadHasher {
    state: Option<Sha256>,
    batch: Vec<Bytes>,
    batch_len: usize,
    running: Option<tokio::task::JoinHandle<Sha256>>,
}

impl PayloadHasher {
    fn new() -> Self {
        PayloadHasher {
            state: Some(Sha256::new()),
            batch: Vec::new(),
            batch_len: 0,
            running: None,
        }
    }

    async fn wait(&mut self) -> Result<(), ApiError> {
        if let Some(job) = self.running.take() {
            let state = job
                .await
                .map_err(|e| ApiError::Serialization(format!("hashing the request body: {e}")))?;
            self.state = Some(state);
        }
        Ok(())
    }

    async fn push(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= HASH_BATCH {
            self.wait().await?;
            let mut state = self.state.take().unwrap_or_default();
            let batch = std::mem::take(&mut self.batch);
            self.batch_len = 0;
            self.running = Some(tokio::task::spawn_blocking(move || {
                for chunk in &batch {
                    state.update(chunk);
                }
                state
            }));
        }
        Ok(())
    }

    /// The hex digest of everything pushed.
    async fn finish(mut self) -> Result<String, ApiError> {
        self.wait().await?;
        let mut state = self.state.take().unwrap_or_default();
        for chunk in &self.batch {
            state.update(chunk);
        }
        Ok(hex::encode(state.finalize()))
    }
}

/// Bodies this small are not reserved: a connection's own buffers are of this order, and
/// DescribeImages or BatchGetImage must not wait behind parts.
const UNRESERVED_BODY: usize = 64 * 1024;

/// What a request holds beyond its body at its peak: the chunks waiting to be hashed (the
/// batch filling and the one being hashed, see [`PayloadHasher`]), then the 1 MiB block its
/// part is written to the staging file from, and the connection's read buffer.
const BODY_OVERHEAD: usize = 2 * HASH_BATCH + 1024 * 1024;

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reserves room in the registry's memory budget for the body about to be read: its
/// `Content-Length`, or the largest body accepted when it declares none (a chunked body), plus
/// what reading and storing it holds besides. `ThrottlingException` when the budget stays
/// full past its wait, before any of the body is read.
async fn reserve_body_memory(
    api: &EcrApi,
    headers: &HeaderMap,
) -> Result<Option<registry::Reservation>, ApiError> {
    let declared = content_length(headers);
    // Too small to matter, or too large to be read at all (`read_body` refuses it at once).
    if declared.is_some_and(|n| n <= UNRESERVED_BODY || n > MAX_REQUEST_BODY) {
        return Ok(None);
    }
    let body = declared.unwrap_or(MAX_REQUEST_BODY).min(MAX_REQUEST_BODY);
    Ok(Some(
        api.registries
            .default_region()
            .reserve_body_memory((body + BODY_OVERHEAD) as u64)
            .await?,
    ))
}

/// Reads a refused request's body to its end (bounded, and throwing it away as it arrives) so
/// that the client, still sending, reads the answer instead of a reset connection. A client
/// that sent `Expect: 100-continue` has sent nothing yet and is not asked for it.
async fn discard(headers: &HeaderMap, body: Body) {
    let expects_continue = headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        return;
    }
    let mut seen = 0;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > MAX_REQUEST_BODY {
            break;
        }
    }
}

/// Reads the whole (bounded) request body into one buffer sized from `Content-Length` (a
/// mapping of its own when large, see `body.rs`), which botocore always sends: collecting
/// chunks and then joining them would hold a 28 MB part twice. Also answers the body's hashing: of a large body, started on another core as the
/// chunks arrived, so that it is (nearly) done when the last byte is.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<(body::RequestBody, Option<PayloadHasher>), ApiError> {
    let declared = content_length(headers);
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY) {
        return Err(ApiError::RequestTooLarge(MAX_REQUEST_BODY));
    }
    let mut buf = body::RequestBody::new(declared);
    let mut hasher = declared
        .is_some_and(|n| n >= HASH_BATCH)
        .then(PayloadHasher::new);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if is_timeout(&e) {
                ApiError::RequestTimeout
            } else {
                ApiError::Serialization(format!("reading the request body: {e}"))
            }
        })?;
        buf.extend(&chunk)?;
        if let Some(h) = &mut hasher {
            h.push(chunk).await?;
        }
    }
    Ok((buf, hasher))
}

/// Whether a body error is the server's idle timeout (tower-http's, somewhere in the chain).
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Decodes the body as the operation's request shape. An empty body is `{}` (botocore sends
/// `{}`, but other clients send nothing for operations without input).
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::Serialization(e.to_string()))
}

fn respond<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Serialization(e.to_string()))?;
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE_JSON));
    Ok(resp)
}

async fn handle(State(api): State<EcrApi>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = Target::parse(target);
    // `instrument`, not `enter`: a guard held across an await leaks into other requests' logs.
    let span = tracing::info_span!("ecr", op = ?op, request_id = %request_id);
    let started = std::time::Instant::now();
    let mut seen = Seen::default();
    let mut resp = async {
        let result = dispatch(&api, &uri, &headers, target, op, body, &mut seen).await;
        let resp = result.unwrap_or_else(IntoResponse::into_response);
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ecr request"
        );
        resp
    }
    .instrument(span)
    .await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    // Who asked and about which repository, for the server's request log; refused requests
    // too, once their caller and body are known.
    if let Some(p) = seen.principal {
        resp.extensions_mut().insert(p);
    }
    if let Some(name) = seen.repository {
        resp.extensions_mut().insert(RequestRepository(name));
    }
    resp
}

/// The repository a request to the ECR or ECR Public API names (its `repositoryName`), left
/// in the response's extensions for the request log: unlike `/v2`, the path does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRepository(pub String);

/// What `dispatch` learnt of a request, kept whether or not it succeeded.
#[derive(Default)]
struct Seen {
    principal: Option<Principal>,
    repository: Option<String>,
}

/// Longest repository name kept for the log: ECR's own limit (256), so that a request
/// naming a longer one cannot stretch the line.
const MAX_LOGGED_NAME: usize = 256;

/// The `repositoryName` of a JSON request body, if it has one that is a string.
/// Only the member is read: the rest of the body is skipped, not built.
fn named_repository(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(rename = "repositoryName", borrow, default)]
        repository_name: Option<std::borrow::Cow<'a, str>>,
    }
    let named: Named = serde_json::from_slice(body).ok()?;
    named.repository_name.map(|n| logged_name(&n))
}

fn logged_name(name: &str) -> String {
    name.chars().take(MAX_LOGGED_NAME).collect()
}

async fn dispatch(
    api: &EcrApi,
    uri: &Uri,
    headers: &HeaderMap,
    target: &str,
    op: Target,
    body: Body,
    seen: &mut Seen,
) -> Result<Response, ApiError> {
    // Authentication first, as AWS does: an unsigned request learns nothing about operations.
    let sig = authentication::parse(
        api,
        headers,
        op.signing_name(),
        matches!(op, Target::Ecr(_)),
    )?;
    // Held until the body and everything made from it are dropped, at the end of this call.
    let _reservation = match reserve_body_memory(api, headers).await {
        Ok(r) => r,
        Err(e) => {
            discard(headers, body).await;
            return Err(e);
        }
    };
    let (body, hasher) = read_body(headers, body).await?;
    // Parsing needs no trust: it runs while the body's hash may still be finishing, and its
    // errors come after the signature's, as before.
    let decoded = match op {
        Target::Ecr(op) => op.map(|op| decode(op, &body)),
        Target::Public(_) => None,
    };
    // The decoded request names the repository; only a body that did not decode is read
    // again for it. A layer part's body is tens of megabytes of base64: ECR Public's handler
    // names the repository instead of a second pass over it.
    seen.repository = match (op, &decoded) {
        (_, Some(Ok(req))) => req.repository_name().map(logged_name),
        (Target::Public(Some(ecr_public::Operation::UploadLayerPart)), _) => None,
        _ => named_repository(&body),
    };
    let principal = authentication::authenticate(
        api,
        &sig,
        headers,
        uri.path(),
        uri.query().unwrap_or(""),
        match hasher {
            Some(h) => h.finish().await?,
            None => hex::encode(Sha256::digest(&body[..])),
        },
    )?;
    seen.principal = Some(principal.clone());
    // The signature's region was checked in `parse`; ECR Public is region-less.
    let registry = match op {
        Target::Ecr(_) => api.registries.get(&sig.region),
        Target::Public(_) => None,
    }
    .unwrap_or_else(|| api.registries.default_region().clone());
    let ctx = Ctx {
        api,
        registry,
        principal,
        base_url: base_url(api, headers),
    };
    if let Target::Public(op) = op {
        return public::dispatch(&ctx, &sig.region, target, op, body, &mut seen.repository).await;
    }
    let req = decoded.ok_or_else(|| ApiError::UnknownOperation(target.to_owned()))??;
    use Request as R;
    match req {
        R::CreateRepository(r) => respond(&repositories::create_repository(&ctx, r).await?),
        R::DescribeRepositories(r) => respond(&repositories::describe_repositories(&ctx, r).await?),
        R::DeleteRepository(r) => respond(&repositories::delete_repository(&ctx, r).await?),
        R::BatchCheckLayerAvailability(r) => {
            respond(&layers::batch_check_layer_availability(&ctx, r).await?)
        }
        R::InitiateLayerUpload(r) => respond(&layers::initiate_layer_upload(&ctx, r).await?),
        R::UploadLayerPart(r) => {
            let part = layers::UploadPart::check(r, &body)?;
            respond(&layers::upload_layer_part(&ctx, part, body).await?)
        }
        R::CompleteLayerUpload(r) => respond(&layers::complete_layer_upload(&ctx, r).await?),
        R::GetDownloadUrlForLayer(r) => {
            respond(&layers::get_download_url_for_layer(&ctx, r).await?)
        }
        R::PutImage(r) => respond(&images::put_image(&ctx, r).await?),
        R::BatchGetImage(r) => respond(&images::batch_get_image(&ctx, r).await?),
        R::ListImages(r) => respond(&images::list_images(&ctx, r).await?),
        R::DescribeImages(r) => respond(&images::describe_images(&ctx, r).await?),
        R::BatchDeleteImage(r) => respond(&images::batch_delete_image(&ctx, r).await?),
        R::SetRepositoryPolicy(r) => respond(&policies::set_repository_policy(&ctx, r).await?),
        R::GetRepositoryPolicy(r) => respond(&policies::get_repository_policy(&ctx, r).await?),
        R::DeleteRepositoryPolicy(r) => {
            respond(&policies::delete_repository_policy(&ctx, r).await?)
        }
        R::PutRegistryPolicy(r) => respond(&policies::put_registry_policy(&ctx, r).await?),
        R::GetRegistryPolicy(r) => respond(&policies::get_registry_policy(&ctx, r).await?),
        R::DeleteRegistryPolicy(r) => respond(&policies::delete_registry_policy(&ctx, r).await?),
        R::ListTagsForResource(r) => respond(&repositories::list_tags_for_resource(&ctx, r).await?),
        R::GetAuthorizationToken(r) => respond(&authorization::get_authorization_token(&ctx, r)?),
        R::TagResource(r) => respond(&repositories::tag_resource(&ctx, r).await?),
        R::UntagResource(r) => respond(&repositories::untag_resource(&ctx, r).await?),
        R::GetAccountSetting(r) => respond(&account_settings::get_account_setting(&ctx, r).await?),
        R::PutAccountSetting(r) => respond(&account_settings::put_account_setting(&ctx, r).await?),
        R::DescribeRegistry(r) => respond(&account_settings::describe_registry(&ctx, r).await?),
        R::CreatePullThroughCacheRule(r) => {
            respond(&pull_through::create_pull_through_cache_rule(&ctx, r).await?)
        }
        R::DescribePullThroughCacheRules(r) => {
            respond(&pull_through::describe_pull_through_cache_rules(&ctx, r).await?)
        }
        R::UpdatePullThroughCacheRule(r) => {
            respond(&pull_through::update_pull_through_cache_rule(&ctx, r).await?)
        }
        R::DeletePullThroughCacheRule(r) => {
            respond(&pull_through::delete_pull_through_cache_rule(&ctx, r).await?)
        }
        R::ValidatePullThroughCacheRule(r) => {
            respond(&pull_through::validate_pull_through_cache_rule(&ctx, r).await?)
        }
        R::PutLifecyclePolicy(r) => respond(&lifecycle::put_lifecycle_policy(&ctx, r).await?),
        R::GetLifecyclePolicy(r) => respond(&lifecycle::get_lifecycle_policy(&ctx, r).await?),
        R::DeleteLifecyclePolicy(r) => respond(&lifecycle::delete_lifecycle_policy(&ctx, r).await?),
        R::StartLifecyclePolicyPreview(r) => {
            respond(&lifecycle::start_lifecycle_policy_preview(&ctx, r).await?)
        }
        R::GetLifecyclePolicyPreview(r) => {
            respond(&lifecycle::get_lifecycle_policy_preview(&ctx, r).await?)
        }
        R::PutImageTagMutability(r) => {
            respond(&repositories::put_image_tag_mutability(&ctx, r).await?)
        }
        R::PutImageScanningConfiguration(r) => {
            respond(&scanning::put_image_scanning_configuration(&ctx, r).await?)
        }
        R::ListImageReferrers(r) => respond(&referrers::list_image_referrers(&ctx, r).await?),
        R::GetRegistryScanningConfiguration(r) => {
            respond(&scanning::get_registry_scanning_configuration(&ctx, r).await?)
        }
        R::PutRegistryScanningConfiguration(r) => {
            respond(&scanning::put_registry_scanning_configuration(&ctx, r).await?)
        }
        R::BatchGetRepositoryScanningConfiguration(r) => {
            respond(&scanning::batch_get_repository_scanning_configuration(&ctx, r).await?)
        }
        R::CreateRepositoryCreationTemplate(r) => {
            respond(&creation_templates::create_repository_creation_template(&ctx, r).await?)
        }
        R::DescribeRepositoryCreationTemplates(r) => {
            respond(&creation_templates::describe_repository_creation_templates(&ctx, r).await?)
        }
        R::UpdateRepositoryCreationTemplate(r) => {
            respond(&creation_templates::update_repository_creation_template(&ctx, r).await?)
        }
        R::DeleteRepositoryCreationTemplate(r) => {
            respond(&creation_templates::delete_repository_creation_template(&ctx, r).await?)
        }
        R::StartImageScan(r) => respond(&scanning::start_image_scan(&ctx, r).await?),
        R::DescribeImageScanFindings(r) => {
            respond(&scanning::describe_image_scan_findings(&ctx, r).await?)
        }
        R::UpdateImageStorageClass(r) => {
            respond(&archive::update_image_storage_class(&ctx, r).await?)
        }
        R::RegisterPullTimeUpdateExclusion(r) => {
            respond(&archive::register_pull_time_update_exclusion(&ctx, r).await?)
        }
        R::DeregisterPullTimeUpdateExclusion(r) => {
            respond(&archive::deregister_pull_time_update_exclusion(&ctx, r).await?)
        }
        R::ListPullTimeUpdateExclusions(r) => {
            respond(&archive::list_pull_time_update_exclusions(&ctx, r).await?)
        }
        R::PutReplicationConfiguration(r) => {
            respond(&replication::put_replication_configuration(&ctx, r).await?)
        }
        R::DescribeImageReplicationStatus(r) => {
            respond(&replication::describe_image_replication_status(&ctx, r).await?)
        }
    }
}

/// A request body decoded as the shape of its operation; the handlers validate the members.
enum Request<'a> {
    CreateRepository(dto::CreateRepositoryRequest),
    DescribeRepositories(dto::DescribeRepositoriesRequest),
    DeleteRepository(dto::DeleteRepositoryRequest),
    BatchCheckLayerAvailability(dto::BatchCheckLayerAvailabilityRequest),
    InitiateLayerUpload(dto::InitiateLayerUploadRequest),
    UploadLayerPart(dto::UploadLayerPartRequest<'a>),
    CompleteLayerUpload(dto::CompleteLayerUploadRequest),
    GetDownloadUrlForLayer(dto::GetDownloadUrlForLayerRequest),
    PutImage(dto::PutImageRequest),
    BatchGetImage(dto::BatchGetImageRequest),
    ListImages(dto::ListImagesRequest),
    DescribeImages(dto::DescribeImagesRequest),
    BatchDeleteImage(dto::BatchDeleteImageRequest),
    SetRepositoryPolicy(dto::SetRepositoryPolicyRequest),
    GetRepositoryPolicy(dto::RepositoryPolicyRequest),
    DeleteRepositoryPolicy(dto::RepositoryPolicyRequest),
    PutRegistryPolicy(dto::PutRegistryPolicyRequest),
    GetRegistryPolicy(dto::Empty),
    DeleteRegistryPolicy(dto::Empty),
    ListTagsForResource(dto::ListTagsForResourceRequest),
    GetAuthorizationToken(dto::GetAuthorizationTokenRequest),
    TagResource(ecr::TagResourceRequest),
    UntagResource(ecr::UntagResourceRequest),
    GetAccountSetting(ecr::GetAccountSettingRequest),
    PutAccountSetting(ecr::PutAccountSettingRequest),
    DescribeRegistry(ecr::DescribeRegistryRequest),
    PutLifecyclePolicy(dto::PutLifecyclePolicyRequest),
    GetLifecyclePolicy(dto::RepositoryPolicyRequest),
    DeleteLifecyclePolicy(dto::RepositoryPolicyRequest),
    StartLifecyclePolicyPreview(dto::PutLifecyclePolicyRequest),
    GetLifecyclePolicyPreview(dto::GetLifecyclePolicyPreviewRequest),
    CreatePullThroughCacheRule(ecr::CreatePullThroughCacheRuleRequest),
    DescribePullThroughCacheRules(ecr::DescribePullThroughCacheRulesRequest),
    UpdatePullThroughCacheRule(ecr::UpdatePullThroughCacheRuleRequest),
    DeletePullThroughCacheRule(ecr::DeletePullThroughCacheRuleRequest),
    ValidatePullThroughCacheRule(ecr::ValidatePullThroughCacheRuleRequest),
    PutImageTagMutability(ecr::PutImageTagMutabilityRequest),
    PutImageScanningConfiguration(ecr::PutImageScanningConfigurationRequest),
    ListImageReferrers(ecr::ListImageReferrersRequest),
    GetRegistryScanningConfiguration(ecr::GetRegistryScanningConfigurationRequest),
    PutRegistryScanningConfiguration(ecr::PutRegistryScanningConfigurationRequest),
    BatchGetRepositoryScanningConfiguration(ecr::BatchGetRepositoryScanningConfigurationRequest),
    CreateRepositoryCreationTemplate(ecr::CreateRepositoryCreationTemplateRequest),
    DescribeRepositoryCreationTemplates(ecr::DescribeRepositoryCreationTemplatesRequest),
    UpdateRepositoryCreationTemplate(ecr::UpdateRepositoryCreationTemplateRequest),
    DeleteRepositoryCreationTemplate(ecr::DeleteRepositoryCreationTemplateRequest),
    StartImageScan(ecr::StartImageScanRequest),
    DescribeImageScanFindings(ecr::DescribeImageScanFindingsRequest),
    UpdateImageStorageClass(ecr::UpdateImageStorageClassRequest),
    RegisterPullTimeUpdateExclusion(ecr::RegisterPullTimeUpdateExclusionRequest),
    DeregisterPullTimeUpdateExclusion(ecr::DeregisterPullTimeUpdateExclusionRequest),
    ListPullTimeUpdateExclusions(ecr::ListPullTimeUpdateExclusionsRequest),
    PutReplicationConfiguration(ecr::PutReplicationConfigurationRequest),
    DescribeImageReplicationStatus(ecr::DescribeImageReplicationStatusRequest),
}

impl Request<'_> {
    /// The `repositoryName` the request names (`None` for an operation that names none), for
    /// the request log: read from the decoded request rather than from the body again.
    fn repository_name(&self) -> Option<&str> {
        use Request as R;
        match self {
            R::CreateRepository(r) => r.repository_name.as_deref(),
            R::DeleteRepository(r) => r.repository_name.as_deref(),
            R::BatchCheckLayerAvailability(r) => r.repository_name.as_deref(),
            R::InitiateLayerUpload(r) => r.repository_name.as_deref(),
            R::UploadLayerPart(r) => r.repository_name.as_deref(),
            R::CompleteLayerUpload(r) => r.repository_name.as_deref(),
            R::GetDownloadUrlForLayer(r) => r.repository_name.as_deref(),
            R::PutImage(r) => r.repository_name.as_deref(),
            R::BatchGetImage(r) => r.repository_name.as_deref(),
            R::ListImages(r) => r.repository_name.as_deref(),
            R::DescribeImages(r) => r.repository_name.as_deref(),
            R::BatchDeleteImage(r) => r.repository_name.as_deref(),
            R::SetRepositoryPolicy(r) => r.repository_name.as_deref(),
            R::GetRepositoryPolicy(r) => r.repository_name.as_deref(),
            R::DeleteRepositoryPolicy(r) => r.repository_name.as_deref(),
            R::PutLifecyclePolicy(r) => r.repository_name.as_deref(),
            R::GetLifecyclePolicy(r) => r.repository_name.as_deref(),
            R::DeleteLifecyclePolicy(r) => r.repository_name.as_deref(),
            R::StartLifecyclePolicyPreview(r) => r.repository_name.as_deref(),
            R::GetLifecyclePolicyPreview(r) => r.repository_name.as_deref(),
            R::PutImageTagMutability(r) => r.repository_name.as_deref(),
            R::PutImageScanningConfiguration(r) => r.repository_name.as_deref(),
            R::ListImageReferrers(r) => r.repository_name.as_deref(),
            R::StartImageScan(r) => r.repository_name.as_deref(),
            R::DescribeImageScanFindings(r) => r.repository_name.as_deref(),
            R::UpdateImageStorageClass(r) => r.repository_name.as_deref(),
            R::DescribeImageReplicationStatus(r) => r.repository_name.as_deref(),
            R::DescribeRepositories(_)
            | R::PutRegistryPolicy(_)
            | R::GetRegistryPolicy(_)
            | R::DeleteRegistryPolicy(_)
            | R::ListTagsForResource(_)
            | R::GetAuthorizationToken(_)
            | R::TagResource(_)
            | R::UntagResource(_)
            | R::GetAccountSetting(_)
            | R::PutAccountSetting(_)
            | R::DescribeRegistry(_)
            | R::CreatePullThroughCacheRule(_)
            | R::DescribePullThroughCacheRules(_)
            | R::UpdatePullThroughCacheRule(_)
            | R::DeletePullThroughCacheRule(_)
            | R::ValidatePullThroughCacheRule(_)
            | R::GetRegistryScanningConfiguration(_)
            | R::PutRegistryScanningConfiguration(_)
            | R::BatchGetRepositoryScanningConfiguration(_)
            | R::CreateRepositoryCreationTemplate(_)
            | R::DescribeRepositoryCreationTemplates(_)
            | R::UpdateRepositoryCreationTemplate(_)
            | R::DeleteRepositoryCreationTemplate(_)
            | R::RegisterPullTimeUpdateExclusion(_)
            | R::DeregisterPullTimeUpdateExclusion(_)
            | R::ListPullTimeUpdateExclusions(_)
            | R::PutReplicationConfiguration(_) => None,
        }
    }
}

/// Decodes `body` as the request shape of `op`. The 21 operations berth had before the ECR
/// model was generated keep their hand-written shapes (`dto.rs`), whose checks word some
/// refusals their own way; operations built since decode the generated shapes and run their
/// generated checks. Operations not built yet answer UnknownOperationException, as they did
/// before the model named them, without reading the body.
fn decode(op: Operation, body: &[u8]) -> Result<Request<'_>, ApiError> {
    use Operation as O;
    use Request as R;
    Ok(match op {
        O::CreateRepository => R::CreateRepository(parse(body)?),
        O::DescribeRepositories => R::DescribeRepositories(parse(body)?),
        O::DeleteRepository => R::DeleteRepository(parse(body)?),
        O::BatchCheckLayerAvailability => R::BatchCheckLayerAvailability(parse(body)?),
        O::InitiateLayerUpload => R::InitiateLayerUpload(parse(body)?),
        O::UploadLayerPart => R::UploadLayerPart(parse(body)?),
        O::CompleteLayerUpload => R::CompleteLayerUpload(parse(body)?),
        O::GetDownloadUrlForLayer => R::GetDownloadUrlForLayer(parse(body)?),
        O::PutImage => R::PutImage(parse(body)?),
        O::BatchGetImage => R::BatchGetImage(parse(body)?),
        O::ListImages => R::ListImages(parse(body)?),
        O::DescribeImages => R::DescribeImages(parse(body)?),
        O::BatchDeleteImage => R::BatchDeleteImage(parse(body)?),
        O::SetRepositoryPolicy => R::SetRepositoryPolicy(parse(body)?),
        O::GetRepositoryPolicy => R::GetRepositoryPolicy(parse(body)?),
        O::DeleteRepositoryPolicy => R::DeleteRepositoryPolicy(parse(body)?),
        O::PutRegistryPolicy => R::PutRegistryPolicy(parse(body)?),
        O::GetRegistryPolicy => R::GetRegistryPolicy(parse(body)?),
        O::DeleteRegistryPolicy => R::DeleteRegistryPolicy(parse(body)?),
        O::ListTagsForResource => R::ListTagsForResource(parse(body)?),
        O::GetAuthorizationToken => R::GetAuthorizationToken(parse(body)?),
        O::TagResource => R::TagResource(checked(body, ecr::TagResourceRequest::validate)?),
        O::UntagResource => R::UntagResource(checked(body, ecr::UntagResourceRequest::validate)?),
        O::GetAccountSetting => {
            R::GetAccountSetting(checked(body, ecr::GetAccountSettingRequest::validate)?)
        }
        O::DescribeRegistry => {
            R::DescribeRegistry(checked(body, ecr::DescribeRegistryRequest::validate)?)
        }
        O::PutAccountSetting => {
            R::PutAccountSetting(checked(body, ecr::PutAccountSettingRequest::validate)?)
        }
        O::CreatePullThroughCacheRule => R::CreatePullThroughCacheRule(checked(
            body,
            ecr::CreatePullThroughCacheRuleRequest::validate,
        )?),
        O::DescribePullThroughCacheRules => R::DescribePullThroughCacheRules(checked(
            body,
            ecr::DescribePullThroughCacheRulesRequest::validate,
        )?),
        O::UpdatePullThroughCacheRule => R::UpdatePullThroughCacheRule(checked(
            body,
            ecr::UpdatePullThroughCacheRuleRequest::validate,
        )?),
        O::DeletePullThroughCacheRule => R::DeletePullThroughCacheRule(checked(
            body,
            ecr::DeletePullThroughCacheRuleRequest::validate,
        )?),
        O::ValidatePullThroughCacheRule => R::ValidatePullThroughCacheRule(checked(
            body,
            ecr::ValidatePullThroughCacheRuleRequest::validate,
        )?),
        O::UpdateImageStorageClass => R::UpdateImageStorageClass(checked(
            body,
            ecr::UpdateImageStorageClassRequest::validate,
        )?),
        O::RegisterPullTimeUpdateExclusion => R::RegisterPullTimeUpdateExclusion(checked(
            body,
            ecr::RegisterPullTimeUpdateExclusionRequest::validate,
        )?),
        O::DeregisterPullTimeUpdateExclusion => R::DeregisterPullTimeUpdateExclusion(checked(
            body,
            ecr::DeregisterPullTimeUpdateExclusionRequest::validate,
        )?),
        O::ListPullTimeUpdateExclusions => R::ListPullTimeUpdateExclusions(checked(
            body,
            ecr::ListPullTimeUpdateExclusionsRequest::validate,
        )?),
        O::DeleteSigningConfiguration
        | O::DescribeImageSigningStatus
        | O::GetSigningConfiguration
        | O::PutSigningConfiguration => {
            return Err(ApiError::UnknownOperation(format!(
                "{}.{}",
                ecr::TARGET_PREFIX,
                op.name()
            )));
        }
        O::PutReplicationConfiguration => R::PutReplicationConfiguration(checked(
            body,
            ecr::PutReplicationConfigurationRequest::validate,
        )?),
        O::DescribeImageReplicationStatus => R::DescribeImageReplicationStatus(checked(
            body,
            ecr::DescribeImageReplicationStatusRequest::validate,
        )?),
        O::PutImageTagMutability => {
            R::PutImageTagMutability(checked(body, ecr::PutImageTagMutabilityRequest::validate)?)
        }
        O::PutImageScanningConfiguration => R::PutImageScanningConfiguration(checked(
            body,
            ecr::PutImageScanningConfigurationRequest::validate,
        )?),
        O::ListImageReferrers => {
            R::ListImageReferrers(checked(body, ecr::ListImageReferrersRequest::validate)?)
        }
        O::GetRegistryScanningConfiguration => R::GetRegistryScanningConfiguration(checked(
            body,
            ecr::GetRegistryScanningConfigurationRequest::validate,
        )?),
        O::PutRegistryScanningConfiguration => R::PutRegistryScanningConfiguration(checked(
            body,
            ecr::PutRegistryScanningConfigurationRequest::validate,
        )?),
        O::BatchGetRepositoryScanningConfiguration => {
            R::BatchGetRepositoryScanningConfiguration(checked(
                body,
                ecr::BatchGetRepositoryScanningConfigurationRequest::validate,
            )?)
        }
        O::CreateRepositoryCreationTemplate => R::CreateRepositoryCreationTemplate(checked(
            body,
            ecr::CreateRepositoryCreationTemplateRequest::validate,
        )?),
        O::DescribeRepositoryCreationTemplates => R::DescribeRepositoryCreationTemplates(checked(
            body,
            ecr::DescribeRepositoryCreationTemplatesRequest::validate,
        )?),
        O::UpdateRepositoryCreationTemplate => R::UpdateRepositoryCreationTemplate(checked(
            body,
            ecr::UpdateRepositoryCreationTemplateRequest::validate,
        )?),
        O::DeleteRepositoryCreationTemplate => R::DeleteRepositoryCreationTemplate(checked(
            body,
            ecr::DeleteRepositoryCreationTemplateRequest::validate,
        )?),
        O::StartImageScan => {
            R::StartImageScan(checked(body, ecr::StartImageScanRequest::validate)?)
        }
        O::DescribeImageScanFindings => R::DescribeImageScanFindings(checked(
            body,
            ecr::DescribeImageScanFindingsRequest::validate,
        )?),
        O::PutLifecyclePolicy => R::PutLifecyclePolicy(parse(body)?),
        O::GetLifecyclePolicy => R::GetLifecyclePolicy(parse(body)?),
        O::DeleteLifecyclePolicy => R::DeleteLifecyclePolicy(parse(body)?),
        O::StartLifecyclePolicyPreview => R::StartLifecyclePolicyPreview(parse(body)?),
        O::GetLifecyclePolicyPreview => R::GetLifecyclePolicyPreview(parse(body)?),
    })
}

/// Decodes `body` as a generated request shape and runs its generated checks (the model's
/// required members, lengths, ranges, patterns and enums, in ECR's words).
fn checked<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    check: impl FnOnce(&T, &str) -> Result<(), shapes::Violation>,
) -> Result<T, ApiError> {
    let req = parse(body)?;
    check(&req, "")?;
    Ok(req)
}

/// Decodes `body` as the request of the operation `target` (an `X-Amz-Target` value) exactly
/// as the server does once a request is authenticated, without running it. The entry point of
/// the `ecr_request` fuzz target (`fuzz/`).
#[doc(hidden)]
pub fn decode_request(target: &str, body: &[u8]) -> Result<(), ApiError> {
    let unknown = || ApiError::UnknownOperation(target.to_owned());
    match Target::parse(target) {
        Target::Ecr(op) => decode(op.ok_or_else(unknown)?, body).map(drop),
        Target::Public(op) => public::decode(op.ok_or_else(unknown)?, body).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUT_IMAGE: &str = "AmazonEC2ContainerRegistry_V20150921.PutImage";

    #[test]
    fn decodes_request_shapes() {
        assert!(decode_request(PUT_IMAGE, br#"{"repositoryName":"app"}"#).is_ok());
        assert!(decode_request(PUT_IMAGE, b" \n").is_ok(), "no body is {{}}");
        assert!(matches!(
            decode_request(PUT_IMAGE, br#"{"repositoryName":1}"#),
            Err(ApiError::Serialization(_))
        ));
        assert!(matches!(
            decode_request("AmazonEC2ContainerRegistry_V20150921.Nope", b"{}"),
            Err(ApiError::UnknownOperation(_))
        ));
    }

    #[test]
    fn targets_name_their_service_and_operation() {
        assert!(matches!(
            Target::parse("AmazonEC2ContainerRegistry_V20150921.UploadLayerPart"),
            Target::Ecr(Some(Operation::UploadLayerPart))
        ));
        assert!(matches!(
            Target::parse("AmazonEC2ContainerRegistry_V20150921.StartImageScan"),
            Target::Ecr(Some(Operation::StartImageScan))
        ));
        assert!(matches!(
            Target::parse("SpencerFrontendService.CreateRepository"),
            Target::Public(Some(ecr_public::Operation::CreateRepository))
        ));
        for t in [
            "AmazonEC2ContainerRegistry_V20150921.Nope",
            "AmazonEC2ContainerRegistry_V20150921UploadLayerPart",
            "UploadLayerPart",
            "",
        ] {
            assert!(matches!(Target::parse(t), Target::Ecr(None)), "{t}");
        }
        assert_eq!(Operation::ALL.len(), 58);
    }
}
