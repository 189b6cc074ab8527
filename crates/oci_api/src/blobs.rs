//! Blob GET, HEAD and DELETE.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::{Digest, RepositoryName};
use registry::{BlobUnlink, PullThroughBlob, UpstreamBlob};

use crate::{Ctx, OciError};

/// Whether `s` has the shape of the OCI digest grammar, `algorithm ":" encoded` with
/// `algorithm ::= [a-z0-9]+ ([+._-] [a-z0-9]+)*` and `encoded ::= [a-zA-Z0-9=_-]+`, whatever
/// its algorithm or length.
fn digest_shaped(s: &str) -> bool {
    let Some((alg, encoded)) = s.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    alg.split(['+', '.', '_', '-']).all(component)
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

/// The digest a blob path names. As the reference registries answer: a digest-shaped name
/// that is not a valid digest (an unsupported algorithm, a wrong length) is the client's
/// mistake, 400 `DIGEST_INVALID` (CNCF distribution and zot alike); a name that is not
/// digest-shaped at all names nothing that could exist, 404 `BLOB_UNKNOWN` (distribution's
/// router answers such paths with a 404 too).
fn blob_digest(s: &str) -> Result<Digest, OciError> {
    Digest::parse(s).map_err(|e| {
        if digest_shaped(s) {
            OciError::DigestInvalid(e.to_string())
        } else {
            OciError::BlobUnknown(s.to_owned())
        }
    })
}

/// How long a redirect's presigned URL stays valid: long enough for a slow start, short
/// because the client uses it at once.
const REDIRECT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(900);

/// Streams a blob the repository holds (uploaded to or mounted into it), with `Range`. Unlike
/// GetDownloadUrlForLayer this serves blobs no manifest references yet: the OCI spec lets a
/// client read back what it pushed.
pub(crate) async fn get_blob(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    digest: &str,
) -> Result<Response, OciError> {
    let digest = blob_digest(digest)?;
    let repo = ctx.repo(name);
    let blob = match ctx
        .registry
        .blob_in_repository(&ctx.principal, &repo, &digest)
        .await?
    {
        Some(blob) => blob,
        None => match ctx
            .registry
            .pull_through_blob(&ctx.principal, &repo, &digest)
            .await?
        {
            Some(PullThroughBlob::Streaming(upstream)) => {
                return Ok(streaming_blob(ctx, &digest, upstream));
            }
            Some(PullThroughBlob::Cached) => ctx
                .registry
                .blob_in_repository(&ctx.principal, &repo, &digest)
                .await?
                .ok_or_else(|| OciError::BlobUnknown(digest.to_string()))?,
            None => return Err(OciError::BlobUnknown(digest.to_string())),
        },
    };
    // A layer only archived images use cannot be pulled, as they cannot (ECR answers 404).
    if blob.archived_only {
        return Err(OciError::BlobUnknown(digest.to_string()));
    }
    if ctx.method == Method::GET
        && let Some(url) = ctx
            .registry
            .blob_download_url(&digest, REDIRECT_LIFETIME)
            .await?
    {
        // Blobs on S3 with redirects on: the client fetches the bytes from S3 (a GET of a
        // presigned URL; `Range` carries over as clients resend it to the new location).
        return Ok((
            StatusCode::TEMPORARY_REDIRECT,
            [
                (header::LOCATION, url),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    digest.to_string(),
                ),
            ],
        )
            .into_response());
    }
    let req = blob_http::BlobRequest {
        method: &ctx.method,
        version: ctx.version,
        headers: &ctx.headers,
        zero_copy: ctx.zero_copy.as_ref(),
    };
    Ok(blob_http::blob_response(ctx.registry, req, &digest, blob.size).await)
}

/// The first pull of a cache repository's blob: the bytes as the upstream sends them (while
/// the registry stores them), whole (a `Range` is answered with all of it, as HTTP allows). A
/// HEAD answers the size and lets the fill go on without a reader.
fn streaming_blob(ctx: &Ctx<'_>, digest: &Digest, upstream: UpstreamBlob) -> Response {
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(upstream.body)
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    if let Some(size) = upstream.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    resp
}

/// Unlinks a blob from the repository (202); garbage collection reclaims the bytes once no
/// repository links them. A blob an image of the repository references is refused, as zot
/// refuses it (405 `DENIED`): deleting it would leave a manifest that cannot be pulled, which
/// distribution allows and ECR users never see (ECR removes layers only with their images).
/// With blob deletes turned off, 405 `UNSUPPORTED`, which the spec names for that case.
pub(crate) async fn delete_blob(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    digest: &str,
) -> Result<Response, OciError> {
    if !ctx.blob_delete {
        return Err(OciError::Unsupported(
            "blob deletes are turned off (--blob-delete=false); garbage collection removes blobs no image references".into(),
        ));
    }
    let digest = blob_digest(digest)?;
    match ctx
        .registry
        .unlink_blob(&ctx.principal, &ctx.repo(name), &digest)
        .await?
    {
        BlobUnlink::Unlinked => {
            let mut resp = StatusCode::ACCEPTED.into_response();
            resp.headers_mut()
                .insert("content-length", HeaderValue::from_static("0"));
            Ok(resp)
        }
        BlobUnlink::NotLinked => Err(OciError::BlobUnknown(digest.to_string())),
        BlobUnlink::Referenced => Err(OciError::BlobReferenced(digest.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_digests_are_400_when_digest_shaped_else_404() {
        let code = |s: &str| match blob_digest(s) {
            Ok(_) => "ok",
            Err(OciError::DigestInvalid(_)) => "DIGEST_INVALID",
            Err(OciError::BlobUnknown(_)) => "BLOB_UNKNOWN",
            Err(_) => "other",
        };
        assert_eq!(code(&format!("sha256:{}", "a".repeat(64))), "ok");
        for shaped in [
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert_eq!(code(shaped), "DIGEST_INVALID", "{shaped}");
        }
        for not_shaped in [
            "latest",
            ".INVALID",
            "sha256:",
            ":abc",
            "SHA256:abc",
            "sha256:ab/c",
            "sha256+:abc",
        ] {
            assert_eq!(code(not_shaped), "BLOB_UNKNOWN", "{not_shaped}");
        }
    }
}
