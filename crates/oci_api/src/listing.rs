//! Tag listing, the catalog and the referrers API, with `n`/`last` pagination and `Link`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use model::{Digest, RepositoryName};
use serde_json::json;

use crate::{Ctx, OciError};

/// Page size when the client gives no `n`: every tag of a repository at ECR's image quota.
const DEFAULT_PAGE: u32 = 100_000;

fn page_size(ctx: &Ctx<'_>) -> Result<u32, OciError> {
    match ctx.query("n") {
        None => Ok(DEFAULT_PAGE),
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= DEFAULT_PAGE)
            .ok_or_else(|| {
                OciError::PaginationInvalid(format!("n must be a number up to {DEFAULT_PAGE}"))
            }),
    }
}

fn json_response(body: serde_json::Value, content_type: &'static str) -> Response {
    let mut resp = body.to_string().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn link(resp: &mut Response, path: &str, n: u32, last: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\"")) {
        resp.headers_mut().insert(header::LINK, v);
    }
}

pub(crate) async fn get_tags(ctx: &Ctx<'_>, name: &RepositoryName) -> Result<Response, OciError> {
    let n = page_size(ctx)?;
    let (tags, more) = if n == 0 {
        // Still a 404 for a missing repository.
        ctx.registry
            .list_tags(&ctx.principal, &ctx.repo(name), None, 0)
            .await
            .map(|_| (vec![], false))?
    } else {
        ctx.registry
            .list_tags(&ctx.principal, &ctx.repo(name), ctx.query("last"), n)
            .await?
    };
    let names: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    let mut resp = json_response(
        json!({"name": name.as_str(), "tags": names}),
        "application/json",
    );
    if more && let Some(last) = names.last() {
        link(&mut resp, &format!("/v2/{name}/tags/list"), n, last);
    }
    Ok(resp)
}

pub(crate) async fn get_catalog(ctx: &Ctx<'_>) -> Result<Response, OciError> {
    let n = page_size(ctx)?;
    let (repos, more) = ctx
        .registry
        .catalog(&ctx.principal, ctx.account.as_deref(), ctx.query("last"), n)
        .await?;
    let names: Vec<&str> = repos.iter().map(|r| r.as_str()).collect();
    let mut resp = json_response(json!({"repositories": names}), "application/json");
    if more && let Some(last) = names.last() {
        link(&mut resp, "/v2/_catalog", n, last);
    }
    Ok(resp)
}

pub(crate) async fn get_referrers(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    digest: &str,
) -> Result<Response, OciError> {
    let digest = Digest::parse(digest).map_err(|e| OciError::DigestInvalid(e.to_string()))?;
    let artifact_type = ctx.query("artifactType");
    let referrers = ctx
        .registry
        .referrers(&ctx.principal, &ctx.repo(name), &digest, artifact_type)
        .await?;
    let manifests: Vec<serde_json::Value> = referrers
        .into_iter()
        .map(|r| {
            let mut d =
                json!({"mediaType": r.media_type, "digest": r.digest.as_str(), "size": r.size});
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = r.annotations {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    let mut resp = json_response(index, "application/vnd.oci.image.index.v1+json");
    if artifact_type.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
