//! The repository pages: the list with its search, and one repository's images, tags and
//! policies. Every listing is one page of the store's keyset-paginated listing (a page costs
//! the same at tag 100,000 as at tag 1).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::future::join_all;
use model::{ImageTag, Reference, RepositoryName};
use registry::{ImageStatus, Page, PageToken, RegistryError, RepositoryRef, TagStatus};
use serde::Deserialize;

use super::html::{self, Crumb, esc, url};
use super::session::Session;
use super::{Here, Ui, error_page, html_response, image, redirect, sign_in_first};

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
    region: Option<String>,
}

/// `path` with the region the query names, for sign-in to come back to.
fn back_to(path: &str, q: &ListQuery) -> String {
    html::in_region(path, q.region.as_deref().filter(|r| !r.is_empty()))
}

/// What the Size column counts, said once under the list and in the tooltip.
const SIZE_MEANS: &str = "Size counts the bytes of the blobs a repository links, each once however many of its images share it (layers and configs, including layers no image references yet, until garbage collection unlinks them), plus its manifests. Images counts its manifests, an index's included. Both figures are kept up to date by every push and delete, the same figures /metrics reports, not added up from the images when the page is shown.";

pub(super) async fn repositories(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(s) = ui.session(&headers) else {
        return sign_in_first(&back_to("/ui/", &q));
    };
    let here = match ui.here(&s, q.region.as_deref()) {
        Ok(h) => h,
        Err(refused) => return *refused,
    };
    let chrome = Some((&s, &here));
    let who = &s.principal;
    let prefix = q.q.as_deref().unwrap_or("").trim().to_owned();
    let listed = here
        .registry
        .browse_repositories(who, &prefix, q.after.as_deref(), REPOSITORIES_PER_PAGE)
        .await;
    let (repos, more) = match listed {
        Ok(x) => x,
        // A principal that may not list every repository may still open one by its name.
        Err(RegistryError::AccessDenied { .. }) if RepositoryName::parse(&prefix).is_ok() => {
            return redirect(&here.link(&format!("/ui/r/{prefix}")));
        }
        Err(e @ RegistryError::AccessDenied { .. }) => {
            let body = format!(
                r#"<div class="notice" role="alert"><h1>You may not list repositories</h1><p>{}</p></div>
<h2>Open a repository by name</h2>{}"#,
                esc(&e.to_string()),
                search_form(&here, "", "team/app")
            );
            return html_response(
                StatusCode::FORBIDDEN,
                html::page("Repositories", Some(&s), Some(&here), &[], &body),
            );
        }
        Err(e) => return error_page(chrome, &e),
    };
    // The maintained figures of the whole page, in one query.
    let usage = match here.registry.repositories_storage(who, &repos).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = ?e, "web UI: storage figures unavailable");
            vec![None; repos.len()]
        }
    };
    let host = ui.pull_host(&headers, &here, &who.account_id);
    let mut rows = String::new();
    for (r, u) in repos.iter().zip(&usage) {
        let name = r.name.as_str();
        let _ = write!(
            rows,
            r#"<tr><td><a href="{href}"><strong>{n}</strong></a></td><td class="num">{images}</td><td class="num size" data-bytes="{b}">{size}</td><td class="nowrap">{created}</td>{uri}</tr>"#,
            href = esc(&here.link(&format!("/ui/r/{name}"))),
            n = esc(name),
            images = u.map_or("—".to_owned(), |u| u.images.to_string()),
            b = u.map_or(String::new(), |u| u.bytes.to_string()),
            size = u.map_or("—".to_owned(), |u| html::bytes(u.bytes)),
            created = esc(&html::time(r.created_at)),
            uri = host.as_ref().map_or(String::new(), |h| format!(
                r#"<td class="hide-sm"><code>{}/{}</code></td>"#,
                esc(h),
                esc(name)
            )),
        );
    }
    let table = if repos.is_empty() {
        format!(
            r#"<div class="empty">{}</div>"#,
            if prefix.is_empty() {
                format!(
                    "No repositories in {} yet. Push an image to create one.",
                    esc(&here.region)
                )
            } else {
                format!("No repository name starts with “{}”.", esc(&prefix))
            }
        )
    } else {
        format!(
            r#"<table><thead><tr><th>Repository</th><th class="num">Images</th><th class="num" title="{means}">Size</th><th>Created</th>{uri}</tr></thead><tbody>{rows}</tbody></table>"#,
            means = esc(SIZE_MEANS),
            uri = if host.is_some() {
                r#"<th class="hide-sm">URI</th>"#
            } else {
                ""
            },
        )
    };
    let pager = pager(
        q.after
            .is_some()
            .then(|| here.link(&format!("/ui/?q={}", url(&prefix)))),
        more.then(|| {
            let last = repos.last().map_or("", |r| r.name.as_str());
            here.link(&format!("/ui/?q={}&after={}", url(&prefix), url(last)))
        }),
    );
    let registry = match &host {
        Some(h) => format!("Registry <code>{}</code>", esc(h)),
        None => r#"<span title="Without registry-domain, /v2 clients reach the default region only">Not reachable by /v2 clients</span>"#.to_owned(),
    };
    let body = format!(
        r#"<h1>Repositories</h1><p class="sub">{registry} · account {account} · region <strong id="current-region">{region}</strong></p>
{search}
<div class="panel">{table}{pager}</div>
<p class="muted note" id="size-means">{means}</p>"#,
        account = esc(&who.account_id),
        region = esc(&here.region),
        search = search_form(&here, &prefix, "Search by name prefix, e.g. team/"),
        means = esc(SIZE_MEANS),
    );
    html_response(
        StatusCode::OK,
        html::page("Repositories", Some(&s), Some(&here), &[], &body),
    )
}

fn search_form(here: &Here, value: &str, placeholder: &str) -> String {
    let region = if here.default {
        String::new()
    } else {
        format!(
            r#"<input type="hidden" name="region" value="{}">"#,
            esc(&here.region)
        )
    };
    format!(
        r#"<form class="search" method="get" action="/ui/" role="search">{region}<input type="search" name="q" value="{}" placeholder="{}" aria-label="Repository name"><button type="submit">Search</button></form>"#,
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
    let Some(s) = ui.session(&headers) else {
        return sign_in_first(&back_to(&format!("/ui/r/{path}"), &q));
    };
    let here = match ui.here(&s, q.region.as_deref()) {
        Ok(h) => h,
        Err(refused) => return *refused,
    };
    let chrome = Some((&s, &here));
    let (name, rest) = match path.split_once("/-/") {
        Some((n, rest)) => (n, Some(rest)),
        None => (path.as_str(), None),
    };
    let Ok(name) = RepositoryName::parse(name) else {
        return error_page(
            chrome,
            &RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: '{}' is not a repository name",
                name
            )),
        );
    };
    let r = RepositoryRef::private(None, name);
    match rest {
        None => repository(&ui, &s, &here, &headers, &r, q.tab.as_deref(), &q).await,
        Some(rest) => match rest.strip_prefix("image/").map(Reference::parse) {
            Some(Some(reference)) => image::image(&ui, &s, &here, &headers, &r, &reference).await,
            _ => error_page(
                chrome,
                &RegistryError::InvalidParameter("Unknown page".to_owned()),
            ),
        },
    }
}

/// The crumbs of a repository's pages.
pub(super) fn crumbs(here: &Here, r: &RepositoryRef) -> Vec<Crumb> {
    vec![
        (here.link("/ui/"), "Repositories".to_owned()),
        (here.link(&format!("/ui/r/{}", r.name)), r.name.to_string()),
    ]
}

async fn repository(
    ui: &Ui,
    s: &Session,
    here: &Here,
    headers: &HeaderMap,
    r: &RepositoryRef,
    tab: Option<&str>,
    q: &ListQuery,
) -> Response {
    let who = &s.principal;
    let chrome = Some((s, here));
    // DescribeRepositories on this repository, as the console's repository page needs.
    let record = match here
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
                chrome,
                &RegistryError::RepositoryNotFound {
                    registry_id: who.account_id.clone(),
                    name: r.name.to_string(),
                },
            );
        }
        Err(e) => return error_page(chrome, &e),
    };
    let tab = match tab {
        Some("tags") => "tags",
        Some("policies") => "policies",
        _ => "images",
    };
    let content = match tab {
        "tags" => tags_tab(here, s, r, q.after.as_deref()).await,
        "policies" => Ok(policies_tab(here, s, r).await),
        _ => images_tab(here, s, r, q.token.as_deref()).await,
    };
    let content = match content {
        Ok(c) => c,
        Err(e) => return error_page(chrome, &e),
    };
    let usage = here.registry.repository_storage(who, r).await.ok();
    let host = ui.pull_host(
        headers,
        here,
        r.registry_id.as_deref().unwrap_or(&who.account_id),
    );
    let name = r.name.as_str();
    let tabs: String = [
        ("images", "Images"),
        ("tags", "Tags"),
        ("policies", "Policies"),
    ]
    .iter()
    .map(|(id, label)| {
        format!(
            r#"<a href="{}"{}>{label}</a>"#,
            esc(&here.link(&format!("/ui/r/{name}?tab={id}"))),
            if *id == tab { r#" class="on""# } else { "" }
        )
    })
    .collect();
    let body = format!(
        r#"<h1>{n}</h1><p class="sub">{uri} · region {region}</p>
<div class="panel pad meta">
<div><span>Images</span><strong>{images}</strong></div>
<div title="{means}"><span>Size</span><strong id="repo-size">{size}</strong></div>
<div><span>Created</span><strong>{created}</strong></div>
<div><span>Tag mutability</span><strong>{mutability}</strong></div>
<div><span>Scan on push</span><strong>{scan}</strong></div>
<div><span>Encryption</span><strong>{enc}</strong></div>
</div>
<nav class="tabs">{tabs}</nav>
{content}"#,
        n = esc(name),
        uri = host.map_or(
            r#"<span class="muted">Not reachable by /v2 clients in this region without registry-domain</span>"#.to_owned(),
            |h| format!("<code>{}/{}</code>", esc(&h), esc(name))
        ),
        region = esc(&here.region),
        means = esc(SIZE_MEANS),
        images = usage.map_or("—".to_owned(), |u| u.images.to_string()),
        size = usage.map_or("—".to_owned(), |u| html::bytes(u.bytes)),
        created = esc(&html::time(record.created_at)),
        mutability = esc(&record.image_tag_mutability),
        scan = if record.scan_on_push { "on" } else { "off" },
        enc = esc(&record.encryption_type),
    );
    html_response(
        StatusCode::OK,
        html::page(name, Some(s), Some(here), &crumbs(here, r), &body),
    )
}

async fn images_tab(
    here: &Here,
    s: &Session,
    r: &RepositoryRef,
    token: Option<&str>,
) -> Result<String, RegistryError> {
    let who = &s.principal;
    let page = Page {
        after: token.map(PageToken::decode).transpose()?,
        limit: IMAGES_PER_PAGE,
    };
    // Every image whatever its status, as the console lists them (DescribeImages itself lists
    // ACTIVE ones unless asked).
    let (images, next) = here
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
    let now = here.registry.now();
    let platforms = join_all(images.iter().map(|i| async move {
        // An archived image's manifest cannot be read (BatchGetImage refuses it).
        if i.state.status(now) == ImageStatus::Active {
            image::platforms(&here.registry, who, r, &i.digest).await
        } else {
            None
        }
    }))
    .await;
    let name = r.name.as_str();
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
        let status = i.state.status(now);
        let note = html::archive_note(&i.state, now);
        let _ = write!(
            rows,
            r#"<tr class="image" data-digest="{d}"><td>{tags}</td><td><a href="{href}">{short}</a></td><td class="nowrap"><span title="{mt}">{label}</span>{kind}</td><td>{platforms}</td><td class="num">{size}</td><td class="nowrap">{pushed}</td><td class="nowrap pull">{pulled}</td><td class="nowrap">{badge}{note}</td></tr>"#,
            d = esc(i.digest.as_str()),
            href = esc(&here.link(&format!("/ui/r/{name}/-/image/{}", i.digest))),
            short = html::short_digest(i.digest.as_str()),
            mt = esc(&i.media_type),
            label = esc(html::media_type_label(&i.media_type)),
            platforms = platform_pills(p.as_deref()),
            size = html::bytes(i.size),
            pushed = esc(&html::time(i.pushed_at)),
            pulled = html::last_pull(i.state.last_pulled_at),
            badge = html::status_badge(status),
            note = if note.is_empty() {
                String::new()
            } else {
                format!(r#"<br><span class="muted small">{}</span>"#, esc(&note))
            },
        );
    }
    if images.is_empty() && token.is_none() {
        return Ok(
            r#"<div class="panel"><div class="empty">No images yet.</div></div>"#.to_owned(),
        );
    }
    let pager = pager(
        token.map(|_| here.link(&format!("/ui/r/{name}?tab=images"))),
        next.map(|t| {
            here.link(&format!(
                "/ui/r/{name}?tab=images&token={}",
                url(&t.encode())
            ))
        }),
    );
    Ok(format!(
        r#"<div class="panel"><table><thead><tr><th>Tags</th><th>Digest</th><th>Type</th><th>Platform</th><th class="num">Size</th><th>Pushed</th><th title="lastRecordedPullTime">Last pull</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>{pager}</div>
<p class="muted note">Last pull is the last recorded pull time: pulls are written every few seconds, and those of principals on the pull-time exclusion list are not recorded. An archived image is listed but cannot be pulled until it is restored.</p>"#
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
    here: &Here,
    s: &Session,
    r: &RepositoryRef,
    after: Option<&str>,
) -> Result<String, RegistryError> {
    let who = &s.principal;
    let after = after.filter(|a| ImageTag::parse(a).is_ok());
    let (tags, more) = here
        .registry
        .list_tags(who, r, after, TAGS_PER_PAGE)
        .await?;
    let records = join_all(tags.iter().map(|t| {
        let reference = Reference::Tag(t.clone());
        async move { here.registry.get_manifest(who, r, &reference).await }
    }))
    .await;
    let name = r.name.as_str();
    let mut rows = String::new();
    for (t, rec) in tags.iter().zip(&records) {
        let (digest, mt, size, pushed, status) = match rec {
            Ok(i) => (
                html::short_digest(i.digest.as_str()),
                format!(
                    r#"<span title="{}">{}</span>"#,
                    esc(&i.media_type),
                    esc(html::media_type_label(&i.media_type))
                ),
                html::bytes(i.size),
                esc(&html::time(i.pushed_at)),
                html::status_badge(ImageStatus::Active),
            ),
            // The manifest of an image out of the standard storage class cannot be read; its
            // digest and status can.
            Err(RegistryError::ImageArchived { digest, status, .. }) => (
                html::short_digest(digest.as_str()),
                String::new(),
                String::new(),
                String::new(),
                html::status_badge(if *status == "archived" {
                    ImageStatus::Archived
                } else {
                    ImageStatus::Activating
                }),
            ),
            Err(_) => Default::default(),
        };
        let _ = write!(
            rows,
            r#"<tr><td><a href="{href}"><span class="tag">{t}</span></a></td><td>{digest}</td><td>{mt}</td><td class="num">{size}</td><td class="nowrap">{pushed}</td><td>{status}</td></tr>"#,
            href = esc(&here.link(&format!("/ui/r/{name}/-/image/{t}"))),
            t = esc(t.as_str()),
        );
    }
    if tags.is_empty() && after.is_none() {
        return Ok(r#"<div class="panel"><div class="empty">No tags.</div></div>"#.to_owned());
    }
    let pager = pager(
        after.map(|_| here.link(&format!("/ui/r/{name}?tab=tags"))),
        more.then(|| {
            let last = tags.last().map_or("", ImageTag::as_str);
            here.link(&format!("/ui/r/{name}?tab=tags&after={}", url(last)))
        }),
    );
    Ok(format!(
        r#"<div class="panel"><table><thead><tr><th>Tag</th><th>Digest</th><th>Type</th><th class="num">Size</th><th>Pushed</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>{pager}</div>"#
    ))
}

/// Both policies, read-only; each section shows its own refusal, so a principal allowed one
/// still sees it.
async fn policies_tab(here: &Here, s: &Session, r: &RepositoryRef) -> String {
    let who = &s.principal;
    let repo_policy = match here.registry.get_repository_policy(who, r).await {
        Ok(p) => html::json_block(&p.text),
        Err(RegistryError::RepositoryPolicyNotFound { .. }) => {
            r#"<p class="muted">No repository policy: access follows identity and registry policies.</p>"#.to_owned()
        }
        Err(e) => refusal(&e),
    };
    let lifecycle = match here.registry.get_lifecycle_policy(who, r).await {
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
