//! Layer download URLs: `<base>/_berth/layers/<region>/<registryId>/<repository>/<digest>?expires=<epoch
//! seconds>&signature=<hex HMAC>`: the region names which of the account's registries holds it. Like ECR's presigned S3 URLs they authorise themselves (a
//! client fetches them with a bare GET), expire after an hour, and support `Range`.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use blob_http::ZeroCopyConn;
use model::{Digest, RepositoryName};
use registry::{Principal, RepositoryRef};
use serde::Deserialize;

use crate::{Ctx, EcrApi, now_secs};

/// How long a download URL stays valid, as ECR's presigned URLs do.
pub const URL_LIFETIME_SECS: u64 = 3600;
const PURPOSE: &str = "layer-download";

fn message(region: &str, registry_id: &str, repo: &str, digest: &str, expires: u64) -> String {
    format!("{region}\n{registry_id}\n{repo}\n{digest}\n{expires}")
}

pub(crate) fn presign(
    ctx: &Ctx<'_>,
    registry_id: &str,
    repo: &RepositoryName,
    digest: &Digest,
) -> String {
    let expires = now_secs() + URL_LIFETIME_SECS;
    let region = ctx.registry().region();
    let sig = ctx.api.config.signing_key.sign(
        PURPOSE,
        message(region, registry_id, repo.as_str(), digest.as_str(), expires).as_bytes(),
    );
    format!(
        "{}/_berth/layers/{region}/{registry_id}/{repo}/{digest}?expires={expires}&signature={}",
        ctx.base_url,
        hex::encode(sig)
    )
}

#[derive(Deserialize)]
pub(crate) struct Signed {
    expires: u64,
    signature: String,
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

pub(crate) async fn get_layer(
    State(api): State<EcrApi>,
    method: Method,
    version: Version,
    zero_copy: Option<Extension<ZeroCopyConn>>,
    Path(rest): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    // <region>/<registryId>/<repository name, may contain '/'>/<digest>
    let Some((region, rest)) = rest.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some((registry_id, tail)) = rest.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some((repo, digest)) = tail.rsplit_once('/') else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let sig = hex::decode(&q.signature).unwrap_or_default();
    if !api.config.signing_key.verify(
        PURPOSE,
        message(region, registry_id, repo, digest, q.expires).as_bytes(),
        &sig,
    ) {
        return plain(StatusCode::FORBIDDEN, "Signature does not match");
    }
    if now_secs() >= q.expires {
        return plain(StatusCode::FORBIDDEN, "Request has expired");
    }
    let (Ok(name), Ok(digest)) = (RepositoryName::parse(repo), Digest::parse(digest)) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    // Signed for a region no longer served (the configuration changed): gone.
    let Some(registry) = api.registries.get(region) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    // The signature vouches for the caller; the registry still checks the layer is there, so a
    // URL stops working once its image is deleted.
    let who = Principal {
        access_key_id: String::new(),
        arn: String::new(),
        account_id: registry_id.to_owned(),
    };
    let r = RepositoryRef {
        service: registry::Service::Private,
        registry_id: Some(registry_id.to_owned()),
        name,
    };
    let blob = match registry.downloadable_layer(&who, &r, &digest).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::NOT_FOUND, "Not Found"),
    };
    let req = blob_http::BlobRequest {
        method: &method,
        version,
        headers: &headers,
        zero_copy: zero_copy.as_deref(),
    };
    blob_http::blob_response(&registry, req, &digest, blob.size).await
}
