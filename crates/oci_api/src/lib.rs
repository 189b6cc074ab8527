//! The OCI Distribution (Docker Registry v2) front end under `/v2/`: the same registry core as
//! the ECR API, so an upload here is an upload there (same id) and an image pushed one way is
//! pulled the other. Authentication is ECR's: Basic with user `AWS` and a GetAuthorizationToken
//! password. Bodies stay streams; only manifests (bounded) are buffered.
//!
//! Public repositories (ECR Public) are addressed as `/v2/<alias>/<name>/...`, where `<alias>`
//! is the public registry alias of their account; a name whose first component is a known
//! alias always means the public repository (a private repository so named is not reachable
//! through `/v2`). Anyone may read a public repository; writing needs an ECR Public token of
//! its account. A token of one registry counts as no token for the other.
//!
//! The host name selects the private registry: `<account>.dkr.ecr.<region>.<domain>` (ECR's
//! own naming, with the configured `registry-domain`) is `account`'s registry in `region`;
//! any other host is the caller's own registry in the default region. A token opens the
//! registries of the region it was issued in.

mod blobs;
mod body_memory;
mod error;
mod listing;
mod logos;
mod manifests;
pub mod route;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auth::SigningKey;
use auth::token::{self, TokenError, TokenScope};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use registry::{Principal, Registries, Registry, RepositoryRef, Service};
use tracing::Instrument;

pub use error::OciError;
use route::{Route, RouteError};
pub use uploads::parse_content_range;

pub const API_VERSION: &str = "registry/2.0";

#[derive(Clone)]
pub struct OciApiConfig {
    pub signing_key: SigningKey,
    /// The account anonymous pulls read from.
    pub account_id: String,
    /// Create a missing repository on the first push instead of answering NAME_UNKNOWN.
    pub create_on_push: bool,
    /// Let `DELETE /v2/<name>/blobs/<digest>` unlink a blob no image references; when false
    /// it answers 405 UNSUPPORTED.
    pub blob_delete: bool,
    /// Repository name patterns (`*` wildcards) anyone may pull without logging in.
    pub anonymous_pull: Vec<String>,
    /// Base URL for the Basic realm; by default the request's `Host`.
    pub public_url: Option<String>,
    /// `http` or `https`: the scheme of the realm built from `Host`.
    pub scheme: &'static str,
    /// The domain of registry host names (`<account>.dkr.ecr.<region>.<domain>`); `None`:
    /// every host means the caller's registry in the default region.
    pub registry_domain: Option<String>,
}

#[derive(Clone)]
pub struct OciApi {
    registries: Arc<Registries>,
    config: Arc<OciApiConfig>,
}

/// The registry a request's host name addresses (see the module note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRegistry {
    /// `None`: the caller's own account.
    pub account: Option<String>,
    /// `None`: the default region.
    pub region: Option<String>,
}

/// Reads `<account>.dkr.ecr.<region>.<domain>[:port]` (ASCII case-insensitive, as host names
/// are); `None` for any other host. The region is only checked for shape here.
pub fn parse_registry_host(host: &str, domain: &str) -> Option<HostRegistry> {
    let host = host.to_ascii_lowercase();
    // Without the port; a bracketed IPv6 literal never matches a domain.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host.as_str(),
    };
    let name = name.trim_end_matches('.');
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_suffix(domain.as_str())?.strip_suffix('.')?;
    let (account, rest) = rest.split_once(".dkr.ecr.")?;
    if !model::is_registry_id(account) || !model::region::is_region_name(rest) {
        return None;
    }
    Some(HostRegistry {
        account: Some(account.to_owned()),
        region: Some(rest.to_owned()),
    })
}

impl OciApi {
    /// The registry (and the account in it) a request's `Host` addresses; `NotFound` for a
    /// registry host name in a region this deployment does not serve.
    fn addressed(&self, headers: &HeaderMap) -> Result<(Arc<Registry>, Option<String>), OciError> {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let named = self
            .config
            .registry_domain
            .as_deref()
            .and_then(|d| parse_registry_host(host, d));
        match named {
            Some(HostRegistry {
                account,
                region: Some(region),
            }) => {
                let registry = self.registries.get(&region).ok_or(OciError::NotFound)?;
                Ok((registry, account))
            }
            _ => Ok((self.registries.default_region().clone(), None)),
        }
    }
}

/// What a handler sees of one request.
pub(crate) struct Ctx<'a> {
    pub registry: &'a Registry,
    /// The account whose private registry the host name addresses; `None`: the caller's.
    pub account: Option<String>,
    pub principal: Principal,
    pub method: Method,
    pub version: Version,
    pub headers: HeaderMap,
    /// The connection's zero-copy sender, when it has one (plain TCP).
    pub zero_copy: Option<blob_http::ZeroCopyConn>,
    pub query: HashMap<String, String>,
    pub create_on_push: bool,
    pub blob_delete: bool,
}

impl Ctx<'_> {
    /// The repository a `/v2` name means (see [`resolve`]).
    pub fn repo(&self, name: &model::RepositoryName) -> RepositoryRef {
        let mut r = resolve(self.registry, name);
        if r.service == Service::Private {
            r.registry_id = self.account.clone();
        }
        r
    }

    pub fn query(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    /// Creates a missing repository about to be pushed to, from its CREATE_ON_PUSH creation
    /// template, or with default settings under `--create-on-push` when none applies.
    pub async fn prepare_push(&self, name: &model::RepositoryName) -> Result<(), OciError> {
        self.registry
            .create_repository_on_push(&self.principal, &self.repo(name), self.create_on_push)
            .await?;
        Ok(())
    }
}

/// The repository a `/v2` name means: `<alias>/<rest>` is repository `<rest>` of the public
/// registry whose alias is `<alias>`; anything else is a repository of the caller's private
/// registry.
pub fn resolve(registry: &Registry, name: &model::RepositoryName) -> RepositoryRef {
    if let Some((alias, rest)) = name.as_str().split_once('/')
        && let Some(account) = registry.public_account(alias)
        && let Ok(rest) = model::RepositoryName::parse(rest)
    {
        return RepositoryRef::public(Some(account.to_owned()), rest);
    }
    RepositoryRef::private(None, name.clone())
}

pub fn router(registries: Arc<Registries>, config: OciApiConfig) -> Router {
    let api = OciApi {
        registries,
        config: Arc::new(config),
    };
    Router::new()
        .route("/v2", any(handle_base))
        .route("/v2/", any(handle_base))
        .route("/v2/{*rest}", any(handle))
        .route(
            &format!("{}{{*rest}}", registry::LOGO_ROUTE),
            get(logos::get_logo),
        )
        .with_state(api)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 401 with the Basic challenge, whose realm is built only for a refusal.
fn unauthorized_for(api: &OciApi, headers: &HeaderMap) -> OciError {
    OciError::Unauthorized {
        realm: match &api.config.public_url {
            Some(u) => format!("{}/", u.trim_end_matches('/')),
            None => format!(
                "{}://{}/",
                api.config.scheme,
                headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost")
            ),
        },
    }
}

/// Checks `Authorization: Basic base64("AWS:<password>")` against the tokens this deployment
/// minted, in `registry`'s region, and says which registry the token opens.
fn authenticate(
    api: &OciApi,
    registry: &Registry,
    headers: &HeaderMap,
) -> Result<(TokenScope, Principal), OciError> {
    let unauthorized = || unauthorized_for(api, headers);
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let encoded = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64_simd::STANDARD
        .decode_to_vec(encoded.trim())
        .map_err(|_| unauthorized())?;
    let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
    if user != "AWS" {
        return Err(unauthorized());
    }
    match token::verify_any(&api.config.signing_key, password, now_secs()) {
        Ok((scope, t)) if t.region == registry.region() => Ok((
            scope,
            Principal {
                access_key_id: t.access_key_id,
                arn: t.arn,
                account_id: t.account_id,
            },
        )),
        Ok(_) | Err(TokenError::Invalid) => Err(unauthorized()),
        Err(e @ TokenError::Expired) => Err(OciError::Denied(e.to_string())),
    }
}

/// The repository name a route names, if it names one.
fn route_name(route: &Route) -> Option<&model::RepositoryName> {
    match route {
        Route::Blob(n, _)
        | Route::Uploads(n)
        | Route::Upload(n, _)
        | Route::Manifest(n, _)
        | Route::Tags(n)
        | Route::Referrers(n, _) => Some(n),
        Route::Base | Route::Catalog => None,
    }
}

/// Which registry's token a route needs: the public registry's for a public repository, the
/// private registry's otherwise; `None` for `/v2/` itself, which `docker login` probes with
/// either.
fn route_scope(api: &OciApi, route: &Route) -> Option<TokenScope> {
    match route {
        Route::Base => None,
        Route::Catalog => Some(TokenScope::Private),
        _ => Some(
            match route_name(route).map(|n| resolve(api.registries.default_region(), n).service) {
                Some(Service::Public) => TokenScope::Public,
                _ => TokenScope::Private,
            },
        ),
    }
}

/// A read (GET/HEAD) of a public repository, or of a private repository whose name matches
/// an anonymous-pull pattern.
fn anonymous_pull_allowed(api: &OciApi, method: &Method, route: &Route) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    let name = match route {
        Route::Blob(n, _) | Route::Manifest(n, _) | Route::Tags(n) | Route::Referrers(n, _) => n,
        _ => return false,
    };
    resolve(api.registries.default_region(), name).service == Service::Public
        || api
            .config
            .anonymous_pull
            .iter()
            .any(|p| model::wildcard_match(p, name.as_str()))
}

fn with_version(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static(API_VERSION),
    );
    resp
}

async fn handle_base(State(api): State<OciApi>, method: Method, headers: HeaderMap) -> Response {
    // Either registry's token logs in (`docker login` and `aws ecr-public get-login-password`
    // both probe `/v2/`).
    let authenticated = api
        .addressed(&headers)
        .and_then(|(registry, _)| authenticate(&api, &registry, &headers));
    let result = match (&method, authenticated) {
        (_, Err(e)) => Err(e),
        (&Method::GET | &Method::HEAD, Ok(_)) => {
            Ok(([("content-type", "application/json")], "{}").into_response())
        }
        _ => Err(OciError::Unsupported(format!(
            "{method} is not supported on /v2/"
        ))),
    };
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

#[allow(clippy::too_many_arguments)] // axum extractors
async fn handle(
    State(api): State<OciApi>,
    method: Method,
    version: Version,
    zero_copy: Option<Extension<blob_http::ZeroCopyConn>>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    // `instrument`, not `enter`: a guard held across an await leaks into other requests' logs.
    let span = tracing::info_span!("oci", %method, path = %rest);
    async move {
        let req = Incoming {
            method,
            version,
            zero_copy: zero_copy.map(|Extension(z)| z),
            headers,
            query,
            body,
        };
        let result = dispatch(&api, &rest, req).await;
        let resp = with_version(result.unwrap_or_else(IntoResponse::into_response));
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "oci request"
        );
        resp
    }
    .instrument(span)
    .await
}

/// A request as the dispatcher needs it.
struct Incoming {
    method: Method,
    version: Version,
    zero_copy: Option<blob_http::ZeroCopyConn>,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Body,
}

async fn dispatch(api: &OciApi, rest: &str, req: Incoming) -> Result<Response, OciError> {
    let Incoming {
        method,
        version,
        zero_copy,
        headers,
        query,
        body,
    } = req;
    let route = route::parse(rest);
    let (registry, account) = api.addressed(&headers)?;
    // A token of the other registry is no token for this one: 401 with the challenge, or an
    // anonymous read where anonymous reads are allowed.
    let authenticated = match authenticate(api, &registry, &headers) {
        Ok((scope, p)) => match route.as_ref().ok().and_then(|r| route_scope(api, r)) {
            Some(needed) if needed != scope => Err(unauthorized_for(api, &headers)),
            _ => Ok(p),
        },
        Err(e) => Err(e),
    };
    let principal = match authenticated {
        Ok(p) => p,
        Err(OciError::Unauthorized { .. })
            if route
                .as_ref()
                .is_ok_and(|r| anonymous_pull_allowed(api, &method, r)) =>
        {
            let public = route
                .as_ref()
                .ok()
                .and_then(route_name)
                .is_some_and(|n| resolve(&registry, n).service == Service::Public);
            Principal {
                access_key_id: String::new(),
                arn: "anonymous".into(),
                // Public repositories are readable by anyone, so anonymous readers of them
                // belong to no account; private anonymous pulls read the configured account.
                account_id: if public {
                    String::new()
                } else {
                    api.config.account_id.clone()
                },
            }
        }
        // Before the path is looked at: an unauthenticated caller learns nothing from it.
        Err(e) => return Err(e),
    };
    let route = match route {
        Ok(r) => r,
        Err(RouteError::NotFound) => return Err(OciError::NotFound),
        Err(RouteError::NameInvalid(n)) => return Err(OciError::NameInvalid(n)),
    };
    // Held until the handler has finished with the body.
    let _reservation = match body_memory::reserve(&registry, &method, &route, &headers).await {
        Ok(r) => r,
        Err(e) => {
            body_memory::discard(&headers, body).await;
            return Err(e);
        }
    };
    let ctx = Ctx {
        registry: &registry,
        account,
        principal,
        method: method.clone(),
        version,
        headers,
        zero_copy,
        query,
        create_on_push: api.config.create_on_push,
        blob_delete: api.config.blob_delete,
    };
    let unsupported = || OciError::Unsupported(format!("{method} is not supported here"));
    let result = match (&method, route) {
        (&Method::GET | &Method::HEAD, Route::Base) => {
            Ok(([("content-type", "application/json")], "{}").into_response())
        }
        (&Method::GET, Route::Catalog) => listing::get_catalog(&ctx).await,
        (&Method::GET | &Method::HEAD, Route::Blob(name, digest)) => {
            blobs::get_blob(&ctx, &name, &digest).await
        }
        (&Method::DELETE, Route::Blob(name, digest)) => {
            blobs::delete_blob(&ctx, &name, &digest).await
        }
        (&Method::POST, Route::Uploads(name)) => uploads::post_upload(&ctx, &name, body).await,
        (&Method::GET, Route::Upload(name, id)) => uploads::get_upload(&ctx, &name, &id).await,
        (&Method::PATCH, Route::Upload(name, id)) => {
            uploads::patch_upload(&ctx, &name, &id, body).await
        }
        (&Method::PUT, Route::Upload(name, id)) => {
            uploads::put_upload(&ctx, &name, &id, body).await
        }
        (&Method::DELETE, Route::Upload(name, id)) => {
            uploads::delete_upload(&ctx, &name, &id).await
        }
        (&Method::GET | &Method::HEAD, Route::Manifest(name, reference)) => {
            manifests::get_manifest(&ctx, &name, &reference).await
        }
        (&Method::PUT, Route::Manifest(name, reference)) => {
            manifests::put_manifest(&ctx, &name, &reference, body).await
        }
        (&Method::DELETE, Route::Manifest(name, reference)) => {
            manifests::delete_manifest(&ctx, &name, &reference).await
        }
        (&Method::GET, Route::Tags(name)) => listing::get_tags(&ctx, &name).await,
        (&Method::GET, Route::Referrers(name, digest)) => {
            listing::get_referrers(&ctx, &name, &digest).await
        }
        _ => Err(unsupported()),
    };
    // Who asked, for the server's request log.
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.extensions_mut().insert(ctx.principal.clone());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_names_select_account_and_region() {
        let named = |account: &str, region: &str| {
            Some(HostRegistry {
                account: Some(account.into()),
                region: Some(region.into()),
            })
        };
        for (host, domain) in [
            ("123456789012.dkr.ecr.eu-west-1.localhost:5000", "localhost"),
            ("123456789012.dkr.ecr.eu-west-1.localhost", "localhost"),
            (
                "123456789012.DKR.ECR.EU-WEST-1.Registry.Example.com",
                "registry.example.com",
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.registry.example.com.:443",
                "registry.example.com.",
            ),
        ] {
            assert_eq!(
                parse_registry_host(host, domain),
                named("123456789012", "eu-west-1"),
                "{host}"
            );
        }
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "dkr.ecr.eu-west-1.localhost",
            "12345678901.dkr.ecr.eu-west-1.localhost",
            "123456789012.dkr.ecr.eu-west.localhost",
            "123456789012.dkr.ecr.eu-west-1.otherlocalhost",
            "123456789012.dkr.ecr.eu-west-1.localhost.evil.com",
            "x.123456789012.dkr.ecr.eu-west-1.localhost",
            "",
        ] {
            assert_eq!(parse_registry_host(host, "localhost"), None, "{host}");
        }
    }
}
