//! The repository pages: the list with its search, and one repository's images, tags and
//! policies. Every listing is one page of the store's keyset-paginated listing (a page costs
//! the same at tag 100,000 as at tag 1).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::future::join_all;
use model::{ImageTag, Reference, RepositoryName};
use registry::{Page, PageToken, RegistryError, RepositoryRef, TagStatus};
use serde::Deserialize;

use super::html::{self, Crumb, esc, url};
use super::session::Session;
use super::{Ui, error_page, html_response, image, redirect, sign_in_first};

/// Rows per page.
const REPOSITORIES_PER_PAGE: u32 = 50;
const IMAGES_PER_PAGE: u32 = 25;
const TAGS_PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    token: Option<String>,
    tab: Option<String>,
}

pub(super) async fn repositories(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let here = "/ui/";
    let Some(s) = ui.session(&headers) else {
        return sign_in_first(here);
    };
    let who = &s.principal;
    let prefix = q.q.as_deref().unwrap_or("").trim().to_owned();
    let listed = ui
        .registry
        .browse_repositories(who, &prefix, q.after.as_deref(), REPOSITORIES_PER_PAGE)
        .await;
    let (repos, more) = match listed {
        Ok(x) => x,
        // A principal that may not list every repository may still open one by its name.
        Err(RegistryError::AccessDenied { .. }) if RepositoryName::parse(&prefix).is_ok() => {
            return redirect(&format!("/ui/r/{prefix}"));
        }
        Err(e @ RegistryError::AccessDenied { .. }) => {
            let body = format!(
                r#"<div class="notice" role="alert"><h1>You may not list repositories</h1><p>{}</p></div>
<h2>Open a repository by name</h2>{}"#,
                esc(&e.to_string()),
                search_form("", "team/app")
            );
            return html_response(
                StatusCode::FORBIDDEN,
                html::page("Repositories", Some(&s), &[], &body),
            );
        }
        Err(e) => return error_page(Some(&s), &e),
    };
    let usage = join_all(repos.iter().map(|r| {
        let r = RepositoryRef::private(None, r.name.clone());
        let ui = ui.clone();
        async move { ui.registry.repository_usage(who, &r).await.ok() }
    }))
    .await;
    let host = ui.registry_host(&headers);
    let mut rows = String::new();
    for (r, u) in repos.iter().zip(&usage) {
        let name = r.name.as_str();
        let _ = write!(
            rows,
            r#"<tr><td><a href="/ui/r/{n}"><strong>{n}</strong></a></td><td class="num">{images}</td><td class="num">{size}</td><td class="nowrap">{created}</td><td class="hide-sm"><code>{host}/{n}</code></td></tr>"#,
            n = esc(name),
            images = u.map_or("—".to_owned(), |u| u.images.to_string()),
            size = u.map_or("—".to_owned(), |u| html::bytes(u.bytes)),
            created = esc(&html::time(r.created_at)),
            host = esc(&host),
        );
    }
    let table = if repos.is_empty() {
        format!(
            r#"<div class="empty">{}</div>"#,
            if prefix.is_empty() {
                "No repositories yet. Push an image to create one.".to_owned()
            } else {
                format!("No repository name starts with “{}”.", esc(&prefix))
            }
        )
    } else {
        format!(
            r#"<table><thead><tr><th>Repository</th><th class="num">Images</th><th class="num">Size</th><th>Created</th><th class="hide-sm">URI</th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let pager = pager(
        q.after
            .is_some()
            .then(|| format!("/ui/?q={}", url(&prefix))),
        more.then(|| {
            let last = repos.last().map_or("", |r| r.name.as_str());
            format!("/ui/?q={}&after={}", url(&prefix), url(last))
        }),
    );
    let body = format!(
        r#"<h1>Repositories</h1><p class="sub">Registry <code>{host}</code> · account {account}</p>
{search}
<div class="panel">{table}{pager}</div>"#,
        host = esc(&host),
        account = esc(&who.account_id),
        search = search_form(&prefix, "Search by name prefix, e.g. team/"),
    );
    html_response(
        StatusCode::OK,
        html::page("Repositories", Some(&s), &[], &body),
    )
}

fn search_form(value: &str, placeholder: &str) -> String {
    format!(
        r#"<form class="search" method="get" action="/ui/" role="search"><input type="search" name="q" value="{}" placeholder="{}" aria-label="Repository name"><button type="submit">Search</button></form>"#,
        esc(value),
        esc(placeholder)
    )
}

/// Links to the first page and the next one, when there are.
fn pager(first: Option<String>, next: Option<String>) -> String {
    if first.is_none() && next.is_none() {
        return String::new();
    }
    format!(
        r#"<div class="pager"><span>{}</span><span>{}</span></div>"#,
        first.map_or(String::new(), |f| format!(
            r#"<a href="{}">« First page</a>"#,
            esc(&f)
        )),
        next.map_or(String::new(), |n| format!(
            r#"<a href="{}" rel="next">Next page »</a>"#,
            esc(&n)
        )),
    )
}

/// `/ui/r/<name>`, `/ui/r/<name>/-/tags`, `/ui/r/<name>/-/policies`,
/// `/ui/r/<name>/-/image/<tag or digest>`. A name may hold `/`, but no segment of it is `-`.
pub(super) async fn repository_route(
    State(ui): State<Ui>,
    Path(path): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let here = format!("/ui/r/{path}");
    let Some(s) = ui.session(&headers) else {
        return sign_in_first(&here);
    };
    let (name, rest) = match path.split_once("/-/") {
        Some((n, rest)) => (n, Some(rest)),
        None => (path.as_str(), None),
    };
    let Ok(name) = RepositoryName::parse(name) else {
        return error_page(
            Some(&s),
            &RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: '{}' is not a repository name",
                name
            )),
        );
    };
    let r = RepositoryRef::private(None, name);
    match rest {
        None => repository(&ui, &s, &headers, &r, q.tab.as_deref(), &q).await,
        Some(rest) => match rest.strip_prefix("image/").map(Reference::parse) {
            Some(Some(reference)) => image::image(&ui, &s, &headers, &r, &reference).await,
            _ => error_page(
                Some(&s),
                &RegistryError::InvalidParameter("Unknown page".to_owned()),
            ),
        },
    }
}

/// The crumbs of a repository's pages.
pub(super) fn crumbs(r: &RepositoryRef) -> Vec<Crumb> {
    vec![
        ("/ui/".to_owned(), "Repositories".to_owned()),
        (format!("/ui/r/{}", r.name), r.name.to_string()),
    ]
}

async fn repository(
    ui: &Ui,
    s: &Session,
    headers: &HeaderMap,
    r: &RepositoryRef,
    tab: Option<&str>,
    q: &ListQuery,
) -> Response {
    let who = &s.principal;
    // DescribeRepositories on this repository, as the console's repository page needs.
    let record = match ui
        .registry
        .describe_repositories(
            who,
            None,
            Some(std::slice::from_ref(&r.name)),
            Page::default(),
        )
        .await
    {
        Ok((mut v, _)) if !v.is_empty() => v.remove(0),
        Ok(_) => {
            return error_page(
                Some(s),
                &RegistryError::RepositoryNotFound {
                    registry_id: who.account_id.clone(),
                    name: r.name.to_string(),
                },
            );
        }
        Err(e) => return error_page(Some(s), &e),
    };
    let tab = match tab {
        Some("tags") => "tags",
        Some("policies") => "policies",
        _ => "images",
    };
    let content = match tab {
        "tags" => tags_tab(ui, s, r, q.after.as_deref()).await,
        "policies" => Ok(policies_tab(ui, s, r).await),
        _ => images_tab(ui, s, r, q.token.as_deref()).await,
    };
    let content = match content {
        Ok(c) => c,
        Err(e) => return error_page(Some(s), &e),
    };
    let usage = ui.registry.repository_usage(who, r).await.ok();
    let host = ui.registry_host(headers);
    let name = r.name.as_str();
    let tabs: String = [
        ("images", "Images"),
        ("tags", "Tags"),
        ("policies", "Policies"),
    ]
    .iter()
    .map(|(id, label)| {
        format!(
            r#"<a href="/ui/r/{}?tab={id}"{}>{label}</a>"#,
            esc(name),
            if *id == tab { r#" class="on""# } else { "" }
        )
    })
    .collect();
    let body = format!(
        r#"<h1>{n}</h1><p class="sub"><code>{host}/{n}</code></p>
<div class="panel pad meta">
<div><span>Images</span><strong>{images}</strong></div>
<div><span>Size</span><strong>{size}</strong></div>
<div><span>Created</span><strong>{created}</strong></div>
<div><span>Tag mutability</span><strong>{mutability}</strong></div>
<div><span>Scan on push</span><strong>{scan}</strong></div>
<div><span>Encryption</span><strong>{enc}</strong></div>
</div>
<nav class="tabs">{tabs}</nav>
{content}"#,
        n = esc(name),
        host = esc(&host),
        images = usage.map_or("—".to_owned(), |u| u.images.to_string()),
        size = usage.map_or("—".to_owned(), |u| html::bytes(u.bytes)),
        created = esc(&html::time(record.created_at)),
        mutability = esc(&record.image_tag_mutability),
        scan = if record.scan_on_push { "on" } else { "off" },
        enc = esc(&record.encryption_type),
    );
    html_response(StatusCode::OK, html::page(name, Some(s), &crumbs(r), &body))
}

async fn images_tab(
    ui: &Ui,
    s: &Session,
    r: &RepositoryRef,
    token: Option<&str>,
) -> Result<String, RegistryError> {
    let who = &s.principal;
    let page = Page {
        after: token.map(PageToken::decode).transpose()?,
        limit: IMAGES_PER_PAGE,
    };
    let (images, next) = ui
        .registry
        .describe_images(
            who,
            r,
            None,
            TagStatus::Any,
            registry::StatusFilter::Any,
            page,
        )
        .await?;
    let platforms = join_all(
        images
            .iter()
            .map(|i| image::platforms(ui, who, r, &i.digest)),
    )
    .await;
    let name = esc(r.name.as_str());
    let mut rows = String::new();
    for (i, p) in images.iter().zip(&platforms) {
        let tags: String =
            if i.tags.is_empty() {
                r#"<span class="muted">untagged</span>"#.to_owned()
            } else {
                i.tags
                    .iter()
                    .take(8)
                    .map(|t| format!(r#"<span class="tag">{}</span>"#, esc(t.as_str())))
                    .chain((i.tags.len() > 8).then(|| {
                        format!(r#"<span class="muted">+{} more</span>"#, i.tags.len() - 8)
                    }))
                    .collect()
            };
        let kind = i
            .artifact_media_type
            .as_deref()
            .filter(|a| !a.starts_with("application/vnd.oci.image.config"))
            .filter(|a| !a.starts_with("application/vnd.docker.container.image"))
            .map_or(String::new(), |a| {
                format!(r#"<br><span class="muted">{}</span>"#, esc(a))
            });
        let _ = write!(
            rows,
            r#"<tr><td>{tags}</td><td><a href="/ui/r/{name}/-/image/{d}">{short}</a></td><td><span title="{mt}">{label}</span>{kind}</td><td>{platforms}</td><td class="num">{size}</td><td class="nowrap">{pushed}</td></tr>"#,
            d = esc(i.digest.as_str()),
            short = html::short_digest(i.digest.as_str()),
            mt = esc(&i.media_type),
            label = esc(html::media_type_label(&i.media_type)),
            platforms = platform_pills(p.as_deref()),
            size = html::bytes(i.size),
            pushed = esc(&html::time(i.pushed_at)),
        );
    }
    if images.is_empty() && token.is_none() {
        return Ok(
            r#"<div class="panel"><div class="empty">No images yet.</div></div>"#.to_owned(),
        );
    }
    let pager = pager(
        token.map(|_| format!("/ui/r/{}?tab=images", r.name)),
        next.map(|t| format!("/ui/r/{}?tab=images&token={}", r.name, url(&t.encode()))),
    );
    Ok(format!(
        r#"<div class="panel"><table><thead><tr><th>Tags</th><th>Digest</th><th>Type</th><th>Platform</th><th class="num">Size</th><th>Pushed</th></tr></thead><tbody>{rows}</tbody></table>{pager}</div>
<p class="muted">Pull times are not recorded by this registry.</p>"#
    ))
}

pub(super) fn platform_pills(p: Option<&[String]>) -> String {
    match p {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|x| format!(r#"<span class="pill">{}</span>"#, esc(x)))
            .collect(),
        _ => r#"<span class="muted">—</span>"#.to_owned(),
    }
}

async fn tags_tab(
    ui: &Ui,
    s: &Session,
    r: &RepositoryRef,
    after: Option<&str>,
) -> Result<String, RegistryError> {
    let who = &s.principal;
    let after = after.filter(|a| ImageTag::parse(a).is_ok());
    let (tags, more) = ui.registry.list_tags(who, r, after, TAGS_PER_PAGE).await?;
    let records = join_all(tags.iter().map(|t| {
        let reference = Reference::Tag(t.clone());
        async move { ui.registry.get_manifest(who, r, &reference).await.ok() }
    }))
    .await;
    let name = esc(r.name.as_str());
    let mut rows = String::new();
    for (t, rec) in tags.iter().zip(&records) {
        let (digest, mt, size, pushed) = match rec {
            Some(i) => (
                html::short_digest(i.digest.as_str()),
                format!(
                    r#"<span title="{}">{}</span>"#,
                    esc(&i.media_type),
                    esc(html::media_type_label(&i.media_type))
                ),
                html::bytes(i.size),
                esc(&html::time(i.pushed_at)),
            ),
            None => Default::default(),
        };
        let _ = write!(
            rows,
            r#"<tr><td><a href="/ui/r/{name}/-/image/{t}"><span class="tag">{t}</span></a></td><td>{digest}</td><td>{mt}</td><td class="num">{size}</td><td class="nowrap">{pushed}</td></tr>"#,
            t = esc(t.as_str()),
        );
    }
    if tags.is_empty() && after.is_none() {
        return Ok(r#"<div class="panel"><div class="empty">No tags.</div></div>"#.to_owned());
    }
    let pager = pager(
        after.map(|_| format!("/ui/r/{}?tab=tags", r.name)),
        more.then(|| {
            let last = tags.last().map_or("", ImageTag::as_str);
            format!("/ui/r/{}?tab=tags&after={}", r.name, url(last))
        }),
    );
    Ok(format!(
        r#"<div class="panel"><table><thead><tr><th>Tag</th><th>Digest</th><th>Type</th><th class="num">Size</th><th>Pushed</th></tr></thead><tbody>{rows}</tbody></table>{pager}</div>"#
    ))
}

/// Both policies, read-only; each section shows its own refusal, so a principal allowed one
/// still sees it.
async fn policies_tab(ui: &Ui, s: &Session, r: &RepositoryRef) -> String {
    let who = &s.principal;
    let repo_policy = match ui.registry.get_repository_policy(who, r).await {
        Ok(p) => html::json_block(&p.text),
        Err(RegistryError::RepositoryPolicyNotFound { .. }) => {
            r#"<p class="muted">No repository policy: access follows identity and registry policies.</p>"#.to_owned()
        }
        Err(e) => refusal(&e),
    };
    let lifecycle = match ui.registry.get_lifecycle_policy(who, r).await {
        Ok(p) => format!(
            "{}{}",
            p.last_evaluated_at.map_or(String::new(), |t| format!(
                r#"<p class="muted">Last evaluated {}</p>"#,
                esc(&html::time(t))
            )),
            html::json_block(&p.text)
        ),
        Err(RegistryError::LifecyclePolicyNotFound { .. }) => {
            r#"<p class="muted">No lifecycle policy: images are kept until deleted.</p>"#.to_owned()
        }
        Err(e) => refusal(&e),
    };
    format!(
        r#"<div class="grid2"><section class="panel pad"><h2>Repository policy</h2>{repo_policy}</section>
<section class="panel pad"><h2>Lifecycle policy</h2>{lifecycle}</section></div>"#
    )
}

/// A refusal inside a page section.
pub(super) fn refusal(e: &RegistryError) -> String {
    match e {
        RegistryError::AccessDenied { .. } => format!(
            r#"<div class="notice" role="alert"><p>Access denied. {}</p></div>"#,
            esc(&e.to_string())
        ),
        _ => {
            tracing::error!(error = ?e, "web UI read failed");
            r#"<div class="notice" role="alert"><p>The registry could not answer.</p></div>"#
                .to_owned()
        }
    }
}
