//! The web UI at `/ui/`: server-rendered pages for browsing what the registry holds, as the
//! signed-in principal may see it. Every read goes through the same `Registry` methods (and so
//! the same identity, repository and registry policies) as the ECR API's DescribeRepositories,
//! DescribeImages, BatchGetImage, GetDownloadUrlForLayer, GetRepositoryPolicy and
//! GetLifecyclePolicy; a refusal shows the API's AccessDenied message and nothing else.
//!
//! Sign-in takes an access key (id and secret) or a registry token (GetAuthorizationToken's
//! password) and sets a session cookie (see `session.rs`).
//!
//! Regions: each page shows one region's registry, named by `?region=` (absent: the default
//! region, so that the URLs of a one-region deployment stay as they were). The region is in
//! the URL rather than the session so that a link names what it shows, two tabs may show two
//! regions, and choosing one is a GET that changes nothing. A session signed in with a registry
//! token stays in the token's region, as the token opens no other. The header offers the
//! configured `regions` in a list; where every region is served (the default) it is a field
//! for any region name, with the default and the current one suggested: listing the regions
//! that hold an account's repositories would need a scan of the registry keys in PostgreSQL
//! (whose default collation cannot seek on their `<account>:<region>` form) on every page. Changes are POST only (sign-in,
//! sign-out); with a SameSite=Strict cookie and an Origin check on POST no other site can make
//! a signed-in browser act. Assets are compiled in: no CDN.

mod html;
mod image;
mod pages;
mod session;

use std::sync::Arc;

use auth::{CredentialStore, SigningKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use registry::{Principal, Registries, Registry, RegistryError};
use serde::Deserialize;

use html::esc;
use session::Session;

/// What the UI needs from the server's configuration.
pub struct UiConfig {
    pub signing_key: SigningKey,
    /// The configured access keys; `None` when there are none (any key id signs in as the
    /// default account's root, as the ECR API accepts any signature then).
    pub credentials: Option<Arc<dyn CredentialStore>>,
    pub account_id: String,
    /// Where clients reach berth (`public-url`), for pull commands; else the request's Host.
    pub public_url: Option<String>,
    pub scheme: &'static str,
    /// The configured `regions`; empty: every region name.
    pub regions: Vec<String>,
    /// `registry-domain`: registries are then reached as `<account>.dkr.ecr.<region>.<domain>`.
    pub registry_domain: Option<String>,
}

#[derive(Clone)]
struct Ui {
    registries: Arc<Registries>,
    config: Arc<UiConfig>,
}

/// The region a page shows, its registry, and how links keep it.
struct Here {
    registry: Arc<Registry>,
    region: String,
    /// Whether `region` is the default one (links then carry no `region=`).
    default: bool,
    /// The session is confined to this region (a registry token's).
    pinned: bool,
    /// The regions the header offers.
    choices: Vec<String>,
    /// Every region is served: the header takes any region name.
    free_text: bool,
}

impl Here {
    /// `path` (a UI path, with or without a query) in this page's region.
    fn link(&self, path: &str) -> String {
        html::in_region(path, (!self.default).then_some(self.region.as_str()))
    }
}

/// What every signed-in page's header shows.
type Chrome<'a> = Option<(&'a Session, &'a Here)>;

/// The `/ui` routes.
pub fn router(registries: Arc<Registries>, config: UiConfig) -> Router {
    let state = Ui {
        registries,
        config: Arc::new(config),
    };
    Router::new()
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(pages::repositories))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/static/{file}", get(asset))
        .route("/ui/r/{*path}", get(pages::repository_route))
        .with_state(state)
}

impl Ui {
    /// The signed-in session, if the request carries a valid one.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        Session::from_headers(&self.config.signing_key, headers)
    }

    /// The region a request asks for (`?region=`, else the default one), as the session
    /// allows; an error page for a region that is not served or that the session may not
    /// browse.
    fn here(&self, s: &Session, asked: Option<&str>) -> Result<Here, Box<Response>> {
        let default = self.registries.default_region().region().to_owned();
        let asked = asked.filter(|a| !a.is_empty());
        let region = match (&s.region, asked) {
            (Some(pinned), Some(a)) if a != pinned => {
                return Err(Box::new(region_refused(
                    s,
                    &format!(
                        "You signed in with a registry token for {pinned}, which opens the registries of that region only. Sign in with an access key to browse {a}."
                    ),
                )));
            }
            (Some(pinned), _) => pinned.clone(),
            (None, Some(a)) => a.to_owned(),
            (None, None) => default.clone(),
        };
        let registry = model::region::is_region_name(&region)
            .then(|| self.registries.get(&region))
            .flatten();
        let Some(registry) = registry else {
            return Err(Box::new(region_refused(
                s,
                &format!("This registry does not serve the region '{region}'."),
            )));
        };
        let mut choices = if s.region.is_some() {
            vec![region.clone()]
        } else if self.config.regions.is_empty() {
            vec![default.clone(), region.clone()]
        } else {
            self.config.regions.clone()
        };
        choices.sort();
        choices.dedup();
        Ok(Here {
            registry,
            default: region == default,
            pinned: s.region.is_some(),
            free_text: s.region.is_none() && self.config.regions.is_empty(),
            choices,
            region,
        })
    }

    /// `host[:port]` clients name `account`'s registry in the page's region by, in image
    /// references; `None` when `/v2` clients cannot address it (a region other than the
    /// default one, without `registry-domain`).
    fn pull_host(&self, headers: &HeaderMap, here: &Here, account: &str) -> Option<String> {
        let host = self.registry_host(headers);
        match &self.config.registry_domain {
            Some(domain) => Some(html::regional_host(account, &here.region, domain, &host)),
            None => here.default.then_some(host),
        }
    }

    /// `host[:port]` as clients reach berth (`public-url`, else the request's `Host`).
    fn registry_host(&self, headers: &HeaderMap) -> String {
        match &self.config.public_url {
            Some(u) => u
                .split_once("://")
                .map_or(u.as_str(), |(_, rest)| rest)
                .trim_end_matches('/')
                .to_owned(),
            None => headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_owned(),
        }
    }
}

/// A complete HTML response with the UI's security headers: only our own assets, no framing,
/// no caching of pages that show what a principal may read.
fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// A page refusing the region asked for.
fn region_refused(s: &Session, detail: &str) -> Response {
    let body = format!(
        r#"<div class="notice" role="alert"><h1>Region not available</h1><p>{}</p></div>
<p><a href="/ui/">Back to repositories</a></p>"#,
        esc(detail)
    );
    html_response(
        StatusCode::NOT_FOUND,
        html::page("Region not available", Some(s), None, &[], &body),
    )
}

/// To the sign-in page, and back to `here` after.
fn sign_in_first(here: &str) -> Response {
    redirect(&format!("/ui/login?next={}", html::url(here)))
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The page for a refused or failed read: AccessDenied shows the API's own message (which
/// names the principal, the action and the resource asked for, nothing stored); a missing
/// repository or image says so; anything else is logged and shown without detail.
fn error_page(chrome: Chrome<'_>, err: &RegistryError) -> Response {
    let (status, title, detail) = match err {
        RegistryError::AccessDenied { .. } => {
            (StatusCode::FORBIDDEN, "Access denied", err.to_string())
        }
        RegistryError::RepositoryNotFound { .. }
        | RegistryError::ImageNotFound { .. }
        | RegistryError::LayersNotFound { .. } => {
            (StatusCode::NOT_FOUND, "Not found", err.to_string())
        }
        RegistryError::InvalidParameter(_) => {
            (StatusCode::BAD_REQUEST, "Invalid request", err.to_string())
        }
        RegistryError::RateExceeded { .. } | RegistryError::Throttled { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "Slow down", err.to_string())
        }
        RegistryError::ImageArchived { .. } => {
            (StatusCode::CONFLICT, "Image archived", err.to_string())
        }
        _ => {
            tracing::error!(error = ?err, "web UI read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The registry could not answer. The server log has the details.".to_owned(),
            )
        }
    };
    let hint = if status == StatusCode::FORBIDDEN {
        r#"<p class="muted">The policies in force do not let you read this. An administrator can grant it in your key's identity policy or the repository's policy.</p>"#
    } else {
        ""
    };
    let home = chrome.map_or("/ui/".to_owned(), |(_, h)| h.link("/ui/"));
    let body = format!(
        r#"<div class="notice" role="alert"><h1>{}</h1><p>{}</p></div>
{hint}<p><a href="{}">Back to repositories</a></p>"#,
        esc(title),
        esc(&detail),
        esc(&home),
    );
    html_response(
        status,
        html::page(
            title,
            chrome.map(|(s, _)| s),
            chrome.map(|(_, h)| h),
            &[],
            &body,
        ),
    )
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (ctype, body) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", html::STYLE),
        "app.js" => ("text/javascript; charset=utf-8", html::SCRIPT),
        "icon.svg" => ("image/svg+xml", html::ICON),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after sign-in: a UI page only (never another site: `//host` or a scheme).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/ui/",
    }
}

fn login_form(next: &str, message: Option<&str>) -> String {
    let alert = message.map_or(String::new(), |m| {
        format!(
            r#"<div class="notice" role="alert"><p>{}</p></div>"#,
            esc(m)
        )
    });
    let next = esc(next);
    format!(
        r#"<div class="login">
<h1>Sign in to berth</h1>
{alert}
<div class="panel pad">
<form method="post" action="/ui/login">
<input type="hidden" name="next" value="{next}">
<label for="access_key_id">Access key ID</label>
<input type="text" id="access_key_id" name="access_key_id" autocomplete="username" spellcheck="false">
<label for="secret_access_key">Secret access key</label>
<input type="password" id="secret_access_key" name="secret_access_key" autocomplete="current-password">
<button type="submit">Sign in with access key</button>
</form>
<p class="or">or</p>
<form method="post" action="/ui/login">
<input type="hidden" name="next" value="{next}">
<label for="token">Registry token</label>
<input type="password" id="token" name="token" autocomplete="off" placeholder="aws ecr get-login-password">
<button type="submit">Sign in with token</button>
</form>
</div>
</div>"#
    )
}

async fn login_page(State(ui): State<Ui>, headers: HeaderMap, q: Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if Session::from_headers(&ui.config.signing_key, &headers).is_some() {
        return redirect(next);
    }
    html_response(
        StatusCode::OK,
        html::page("Sign in", None, None, &[], &login_form(next, None)),
    )
}

#[derive(Deserialize, Default)]
struct LoginForm {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    next: Option<String>,
}

/// Refuses a POST another origin's page sent: browsers name the page's origin in `Origin`
/// (and `Sec-Fetch-Site`); clients that send neither are not browsers acting for a user.
fn cross_site(ui: &Ui, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == "cross-site" || s == "same-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // The host the page came from must be the host the request went to. Schemes are not
    // compared: behind a proxy that ends TLS, the page is https and berth sees http.
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin_host.is_empty() || (origin_host != host && origin_host != ui.registry_host(headers))
}

/// Whether browsers reach the UI over TLS (berth's own, or a proxy's that `public-url` names):
/// the session cookie is then `Secure`.
fn secure_cookies(ui: &Ui) -> bool {
    ui.config.scheme == "https"
        || ui
            .config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

async fn login(State(ui): State<Ui>, headers: HeaderMap, body: Bytes) -> Response {
    if cross_site(&ui, &headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = safe_next(form.next.as_deref()).to_owned();
    let refuse = |status: StatusCode, msg: &str| {
        html_response(
            status,
            html::page("Sign in", None, None, &[], &login_form(&next, Some(msg))),
        )
    };
    let now = session::now_secs();
    let signed_in = match (&form.token, &form.access_key_id) {
        (Some(t), _) if !t.trim().is_empty() => {
            match auth::token::verify(&ui.config.signing_key, t.trim(), now) {
                // A token of any region served; the session stays in that region.
                Ok(t) if ui.registries.get(&t.region).is_some() => Ok(Session {
                    expires_at: t.expires_at.min(now + session::LIFETIME_SECS),
                    principal: Principal {
                        access_key_id: t.access_key_id,
                        arn: t.arn,
                        account_id: t.account_id,
                    },
                    region: Some(t.region),
                }),
                Ok(_) | Err(auth::token::TokenError::Invalid) => {
                    Err("That token is not one this registry issued.")
                }
                Err(auth::token::TokenError::Expired) => {
                    Err("Your authorization token has expired. Reauthenticate and try again.")
                }
            }
        }
        (_, Some(id)) if !id.trim().is_empty() => {
            let secret = form.secret_access_key.as_deref().unwrap_or_default();
            check_access_key(&ui, id.trim(), secret).map(|principal| Session {
                principal,
                expires_at: now + session::LIFETIME_SECS,
                region: None,
            })
        }
        _ => Err("Enter an access key and its secret, or a registry token."),
    };
    match signed_in {
        Ok(s) => {
            let secure = secure_cookies(&ui);
            let mut resp = redirect(&next);
            let cookie = session::set_cookie(
                &s.seal(&ui.config.signing_key),
                s.expires_at.saturating_sub(now),
                secure,
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(msg) => refuse(StatusCode::UNAUTHORIZED, msg),
    }
}

/// The principal an access key and secret prove, as the ECR API would resolve a signature
/// made with them.
fn check_access_key(ui: &Ui, id: &str, secret: &str) -> Result<Principal, &'static str> {
    const WRONG: &str = "The access key ID or the secret is not right.";
    let Some(store) = &ui.config.credentials else {
        // No keys configured: the ECR API accepts any signature for the default account.
        let account_id = ui.config.account_id.clone();
        return Ok(Principal {
            access_key_id: id.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            account_id,
        });
    };
    let identity = store.lookup(id).ok_or(WRONG)?;
    // Compared as MACs, so that the time taken says nothing about the secret, not even its
    // length.
    let key = &ui.config.signing_key;
    let expected = key.sign("ui-login", identity.secret.expose().as_bytes());
    if !key.verify("ui-login", secret.as_bytes(), &expected) {
        return Err(WRONG);
    }
    if identity.session_token.is_some() {
        // Its requests must carry a session token the form does not ask for.
        return Err("This key needs a session token: sign in with a registry token instead.");
    }
    Ok(Principal {
        access_key_id: identity.access_key_id,
        arn: identity.arn,
        account_id: identity.account_id,
    })
}

async fn logout(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if cross_site(&ui, &headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let mut resp = redirect("/ui/login");
    let cookie = session::set_cookie("", 0, secure_cookies(&ui));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
