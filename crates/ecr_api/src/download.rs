//! Layer download URLs: `<base>/_berth/layers/<registryId>/<repository>/<digest>?expires=<epoch
//! seconds>&signature=<hex HMAC>`. Like ECR's presigned S3 URLs they authorise themselves (a
//! client fetches them with a bare GET), expire after an hour, and support `Range`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Digest, RepositoryName};
use registry::{BlobRange, Principal, RepositoryRef};
use serde::Deserialize;

use crate::{now_secs, Ctx, EcrApi};

/// How long a download URL stays valid, as ECR's presigned URLs do.
pub const URL_LIFETIME_SECS: u64 = 3600;
const PURPOSE: &str = "layer-download";

fn message(registry_id: &str, repo: &str, digest: &str, expires: u64) -> String {
    format!("{registry_id}\n{repo}\n{digest}\n{expires}")
}

pub(crate) fn presign(ctx: &Ctx<'_>, registry_id: &str, repo: &RepositoryName, digest: &Digest) -> String {
    let expires = now_secs() + URL_LIFETIME_SECS;
    let sig = ctx
        .api
        .config
        .signing_key
        .sign(PURPOSE, message(registry_id, repo.as_str(), digest.as_str(), expires).as_bytes());
    format!(
        "{}/_berth/layers/{registry_id}/{repo}/{digest}?expires={expires}&signature={}",
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

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against `size`; `Err` when unsatisfiable.
/// Anything else (several ranges, other units) is ignored, and the whole blob is sent, which
/// RFC 9110 allows.
fn parse_range(h: &str, size: u64) -> Result<Option<BlobRange>, ()> {
    let Some(spec) = h.strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let (first, last) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Some(a), None) if b.is_empty() => (a, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Ok(None),
    };
    if size == 0 || first >= size {
        return Err(());
    }
    Ok(Some(BlobRange { first, last }))
}

pub(crate) async fn get_layer(
    State(api): State<EcrApi>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    // <registryId>/<repository name, may contain '/'>/<digest>
    let Some((registry_id, tail)) = rest.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some((repo, digest)) = tail.rsplit_once('/') else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let sig = hex::decode(&q.signature).unwrap_or_default();
    if !api
        .config
        .signing_key
        .verify(PURPOSE, message(registry_id, repo, digest, q.expires).as_bytes(), &sig)
    {
        return plain(StatusCode::FORBIDDEN, "Signature does not match");
    }
    if now_secs() >= q.expires {
        return plain(StatusCode::FORBIDDEN, "Request has expired");
    }
    let (Ok(name), Ok(digest)) = (RepositoryName::parse(repo), Digest::parse(digest)) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    // The signature vouches for the caller; the registry still checks the layer is there, so a
    // URL stops working once its image is deleted.
    let who = Principal {
        access_key_id: String::new(),
        account_id: registry_id.to_owned(),
    };
    let r = RepositoryRef {
        registry_id: Some(registry_id.to_owned()),
        name,
    };
    let blob = match api.registry.downloadable_layer(&who, &r, &digest).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::NOT_FOUND, "Not Found"),
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) => match parse_range(h, blob.size) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = plain(StatusCode::RANGE_NOT_SATISFIABLE, "Range Not Satisfiable");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", blob.size)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
        },
        None => None,
    };
    let len = range.map_or(blob.size, |r| r.last - r.first + 1);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        match api.registry.open_blob(&digest, range).await {
            Ok(reader) => Body::from_stream(reader.body),
            Err(e) => {
                tracing::error!(error = ?e, %digest, "cannot open blob for download");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(digest.as_str()) {
        h.insert("docker-content-digest", v.clone());
        h.insert(header::ETAG, HeaderValue::from_str(&format!("\"{digest}\"")).unwrap_or(v));
    }
    if let Some(r) = range {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", r.first, r.last, blob.size)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |first, last| Ok(Some(BlobRange { first, last }));
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-200", 100), r(90, 99));
        assert_eq!(parse_range("bytes=95-", 100), r(95, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
    }
}
