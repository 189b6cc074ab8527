//! The pull-through cache's client for upstream OCI registries (the registry's `Upstream`),
//! and the credentials `[[upstream-credentials]]` maps `credentialArn`s to, in place of AWS
//! Secrets Manager.
//!
//! Authentication follows the distribution token protocol: a request goes out with what is
//! known (a cached bearer token, Basic credentials, or a configured token); a `401` with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...` sends berth to the realm for a
//! token (with the Basic credentials, if any), which it caches for its lifetime and retries
//! with once. A `Basic` challenge is answered with the configured username and password.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth::Secret as SecretString;
use futures_util::StreamExt;
use model::{Digest, MediaType};
use registry::{Upstream, UpstreamBlob, UpstreamError, UpstreamManifest, UpstreamTarget};
use reqwest::{StatusCode, header};
use reqwest13 as reqwest;
use serde::Deserialize;

/// How long a connection to an upstream may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A manifest (or token, or ping) answer must be complete within this.
const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A blob download that stalls this long (no bytes) is broken off.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest manifest berth takes from an upstream (ECR's `imageManifest` maximum).
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// A token without `expires_in` lives 60 s (the token specification's default).
const DEFAULT_TOKEN_SECS: u64 = 60;
/// Tokens cached at most (one per upstream, repository and scope).
const MAX_TOKENS: usize = 1000;

/// One `[[upstream-credentials]]` entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamSecret {
    /// Basic credentials (also what a token realm is asked with).
    Basic {
        username: String,
        password: SecretString,
    },
    /// A bearer token sent as is.
    Token(SecretString),
    /// A file holding `{"username": ..., "accessToken": ...}`, the JSON ECR expects in the
    /// Secrets Manager secret, read at each use (so it can be rotated in place).
    File(PathBuf),
}

/// What a request authenticates with.
enum Creds {
    None,
    Basic(String, SecretString),
    Token(SecretString),
}

/// The secret file's JSON, as ECR's pull-through cache secrets are written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretFile {
    username: String,
    access_token: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// The parameters of a `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` (or `Basic realm=...`); quoted
/// values may contain commas (a scope of several actions).
fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key, value.to_owned());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

pub struct HttpUpstream {
    client: reqwest::Client,
    secrets: HashMap<String, UpstreamSecret>,
    /// Bearer tokens by upstream, repository and credentials, with when they expire.
    tokens: Mutex<HashMap<String, (SecretString, Instant)>>,
}

fn unavailable(url: &str, e: &reqwest::Error) -> UpstreamError {
    // The URL carries no credentials (they go in headers); the error's own text may name it.
    UpstreamError::Unavailable(format!(
        "the upstream registry at {url} cannot be reached: {e}"
    ))
}

impl HttpUpstream {
    pub fn new(secrets: HashMap<String, UpstreamSecret>) -> anyhow::Result<Self> {
        Self::for_purpose(secrets, "pull-through cache")
    }

    /// A client whose `User-Agent` names what it is for (`pull-through cache`, `replication`).
    pub fn for_purpose(
        secrets: HashMap<String, UpstreamSecret>,
        purpose: &str,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a crypto provider (as for S3): ring, process-wide.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(format!("berth/{} ({purpose})", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            secrets,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client, for requests [`Self::send`] authenticates.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn creds(&self, arn: Option<&str>) -> Result<Creds, UpstreamError> {
        let Some(arn) = arn else {
            return Ok(Creds::None);
        };
        match self.secrets.get(arn) {
            None => Err(UpstreamError::SecretNotFound(format!(
                "Secrets Manager can't find the specified secret '{arn}': no [[upstream-credentials]] entry has this arn"
            ))),
            Some(UpstreamSecret::Basic { username, password }) => {
                Ok(Creds::Basic(username.clone(), password.clone()))
            }
            Some(UpstreamSecret::Token(t)) => Ok(Creds::Token(t.clone())),
            Some(UpstreamSecret::File(path)) => {
                let unusable = |why: String| {
                    UpstreamError::SecretUnusable(format!(
                        "Unable to access the secret '{arn}': {why}"
                    ))
                };
                let text = std::fs::read(path)
                    .map_err(|e| unusable(format!("its file cannot be read ({e})")))?;
                let s: SecretFile = serde_json::from_slice(&text).map_err(|_| {
                    unusable("its file is not JSON with username and accessToken".into())
                })?;
                Ok(Creds::Basic(s.username, SecretString::new(s.access_token)))
            }
        }
    }

    /// Tokens are per credentials too: a rule must never pull with a token that another
    /// rule's secret obtained from the same upstream.
    fn token_key(target: &UpstreamTarget) -> String {
        format!(
            "{} {} {}",
            target.base_url,
            target.repository,
            target.credential_arn.as_deref().unwrap_or("")
        )
    }

    fn cached_token(&self, key: &str) -> Option<SecretString> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    /// Asks a token realm for a token (with Basic credentials if configured).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        creds: &Creds,
    ) -> Result<(SecretString, Duration), UpstreamError> {
        let mut url = reqwest::Url::parse(realm).map_err(|_| {
            UpstreamError::Unavailable(format!("the upstream's token realm '{realm}' is not a URL"))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(s) = service {
                query.append_pair("service", s);
            }
            if let Some(s) = scope {
                query.append_pair("scope", s);
            }
        }
        let mut req = self.client.get(url).timeout(SMALL_REQUEST_TIMEOUT);
        if let Creds::Basic(u, p) = creds {
            req = req.basic_auth(u, Some(p.expose()));
        }
        let resp = req.send().await.map_err(|e| unavailable(realm, &e))?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(UpstreamError::Unauthorized(format!(
                    "the upstream's token service at {realm} refused the credentials"
                )));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(UpstreamError::TooManyRequests(format!(
                    "the upstream's token service at {realm} answered 429"
                )));
            }
            s => {
                return Err(UpstreamError::Unavailable(format!(
                    "the upstream's token service at {realm} answered {s}"
                )));
            }
        }
        let bytes = resp.bytes().await.map_err(|e| unavailable(realm, &e))?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            UpstreamError::Unavailable(format!("the token service at {realm} answered no JSON"))
        })?;
        let token = answer.token.or(answer.access_token).ok_or_else(|| {
            UpstreamError::Unavailable(format!("the token service at {realm} answered no token"))
        })?;
        let ttl = Duration::from_secs(answer.expires_in.unwrap_or(DEFAULT_TOKEN_SECS).max(1));
        Ok((SecretString::new(token), ttl))
    }

    /// GETs `url` of `target`'s upstream, authenticating as described in the module doc.
    async fn get(
        &self,
        target: &UpstreamTarget,
        url: &str,
        accept: Option<&str>,
        small: bool,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.send(target, url, || {
            let mut req = self.client.get(url);
            if small {
                req = req.timeout(SMALL_REQUEST_TIMEOUT);
            }
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            req
        })
        .await
    }

    /// Sends the request `build` makes (for `url` of `target`'s registry), authenticating as
    /// described in the module doc: `build` is called again for the retry after a Bearer
    /// challenge. Any status but 2xx is an error.
    pub(crate) async fn send(
        &self,
        target: &UpstreamTarget,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.send_with(target, url, || std::future::ready(Ok(build())))
            .await
    }

    /// [`Self::send`] with a builder that may have to wait, or fail, before it has a request:
    /// one whose body is a stream reads the stream again for the retry.
    pub(crate) async fn send_with<F, Fut>(
        &self,
        target: &UpstreamTarget,
        url: &str,
        mut build: F,
    ) -> Result<reqwest::Response, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<reqwest::RequestBuilder, UpstreamError>>,
    {
        let creds = self.creds(target.credential_arn.as_deref())?;
        let key = Self::token_key(target);
        let send =
            |mut req: reqwest::RequestBuilder, bearer: Option<&SecretString>, basic: bool| {
                match (bearer, &creds) {
                    (Some(t), _) | (None, Creds::Token(t)) => req = req.bearer_auth(t.expose()),
                    (None, Creds::Basic(u, p)) if basic => {
                        req = req.basic_auth(u, Some(p.expose()));
                    }
                    _ => {}
                }
                req.send()
            };
        let cached = self.cached_token(&key);
        let mut resp = send(build().await?, cached.as_ref(), true)
            .await
            .map_err(|e| unavailable(&target.base_url, &e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge);
            if let Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) = challenge
            {
                let (token, ttl) = self
                    .fetch_token(&realm, service.as_deref(), scope.as_deref(), &creds)
                    .await?;
                {
                    let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                    if tokens.len() >= MAX_TOKENS {
                        tokens.clear();
                    }
                    tokens.insert(key, (token.clone(), Instant::now() + ttl));
                }
                resp = send(build().await?, Some(&token), false)
                    .await
                    .map_err(|e| unavailable(&target.base_url, &e))?;
            }
        }
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(UpstreamError::Unauthorized(format!(
                    "the upstream registry at {} refused access to '{}' ({})",
                    target.base_url,
                    target.repository,
                    resp.status()
                )))
            }
            StatusCode::NOT_FOUND => Err(UpstreamError::NotFound(format!(
                "the upstream registry at {} has no {url}",
                target.base_url
            ))),
            StatusCode::TOO_MANY_REQUESTS => Err(UpstreamError::TooManyRequests(format!(
                "the upstream registry at {} answered 429 Too Many Requests",
                target.base_url
            ))),
            s => Err(UpstreamError::Unavailable(format!(
                "the upstream registry at {} answered {s}",
                target.base_url
            ))),
        }
    }
}

/// Every manifest type berth stores, for the upstream's content negotiation.
fn accept_manifests() -> String {
    [
        MediaType::OCI_INDEX,
        MediaType::OCI_MANIFEST,
        MediaType::DOCKER_MANIFEST_LIST,
        MediaType::DOCKER_MANIFEST_V2,
    ]
    .join(", ")
}

#[async_trait]
impl Upstream for HttpUpstream {
    fn check_secret(&self, arn: &str) -> Result<(), UpstreamError> {
        self.creds(Some(arn)).map(drop)
    }

    async fn manifest(
        &self,
        target: &UpstreamTarget,
        reference: &str,
    ) -> Result<UpstreamManifest, UpstreamError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            target.base_url, target.repository
        );
        let resp = self
            .get(target, &url, Some(&accept_manifests()), true)
            .await?;
        let header_str = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header_str("content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|t| MediaType::is_supported_manifest(t));
        let digest = header_str("docker-content-digest");
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(UpstreamError::Unavailable(format!(
                "the upstream's manifest {url} is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| unavailable(&target.base_url, &e))?;
            if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(UpstreamError::Unavailable(format!(
                    "the upstream's manifest {url} is larger than {MAX_MANIFEST_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(UpstreamManifest {
            bytes,
            media_type,
            digest,
        })
    }

    async fn blob(
        &self,
        target: &UpstreamTarget,
        digest: &Digest,
    ) -> Result<UpstreamBlob, UpstreamError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            target.base_url, target.repository
        );
        let resp = self.get(target, &url, None, false).await?;
        let size = resp.content_length();
        let body = resp.bytes_stream().map(|r| r.map_err(io::Error::other));
        Ok(UpstreamBlob {
            size,
            body: Box::pin(body),
        })
    }

    async fn ping(&self, target: &UpstreamTarget) -> Result<(), UpstreamError> {
        let url = format!("{}/v2/", target.base_url);
        self.get(target, &url, None, true).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://ghcr.io/token""#),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
