//! Blob uploads: POST (start, monolithic, or mount, with or without `from`), PATCH (chunked with `Content-Range`, or
//! streamed without), PUT (finish), GET (status) and DELETE (cancel). A `/v2` upload is the
//! registry's upload session, the same one InitiateLayerUpload creates.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use model::{Digest, RepositoryName, UploadId};
use registry::{CompletionRules, PartData, Service, UploadProgress};

use crate::{Ctx, OciError};

fn stream(body: Body) -> PartData {
    PartData::Stream(Box::pin(
        body.into_data_stream().map_err(std::io::Error::other),
    ))
}

fn upload_id(id: &str) -> Result<UploadId, OciError> {
    UploadId::parse(id)
        .ok_or_else(|| OciError::BlobUploadUnknown(format!("upload '{id}' is unknown")))
}

/// 202 (or 204 for a status query) with where the upload stands.
fn progress_response(status: StatusCode, name: &RepositoryName, p: UploadProgress) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    let location = format!("/v2/{name}/blobs/uploads/{}", p.upload_id);
    // Inclusive range of what is stored; distribution answers "0-0" for an empty upload too.
    let range = format!("0-{}", p.received.saturating_sub(1));
    for (k, v) in [
        ("location", location),
        ("range", range),
        ("docker-upload-uuid", p.upload_id.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    h.insert("content-length", HeaderValue::from_static("0"));
    resp
}

fn created_blob(name: &RepositoryName, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/{name}/blobs/{digest}")) {
        h.insert("location", v);
    }
    if let Ok(v) = HeaderValue::from_str(digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    h.insert("content-length", HeaderValue::from_static("0"));
    resp
}

pub(crate) async fn post_upload(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    body: Body,
) -> Result<Response, OciError> {
    ctx.prepare_push(name).await?;
    let repo = ctx.repo(name);
    // A mount that cannot be done (malformed digest or `from`, blob not found, nothing the
    // caller may read) falls back to a new upload session, as the spec asks.
    if let Some(Ok(digest)) = ctx.query("mount").map(Digest::parse) {
        let mounted = match ctx.query("from").map(RepositoryName::parse) {
            // A public registry's token opens no private repository, so a push to a public
            // repository mounts nothing from one (the other way round is a read anyone may do).
            Some(Ok(from))
                if ctx.repo(&from).service == Service::Private
                    && repo.service == Service::Public =>
            {
                false
            }
            Some(Ok(from)) => {
                ctx.registry
                    .mount_blob(&ctx.principal, &ctx.repo(&from), &repo, &digest)
                    .await?
            }
            Some(Err(_)) => false,
            // "The registry MAY treat the `from` parameter as optional, and it MAY
            // cross-mount the blob if it can be found."
            None => {
                ctx.registry
                    .mount_blob_from_any(&ctx.principal, &repo, &digest)
                    .await?
            }
        };
        if mounted {
            return Ok(created_blob(name, &digest));
        }
    }
    let (id, _) = ctx.registry.initiate_upload(&ctx.principal, &repo).await?;
    if let Some(digest) = ctx.query("digest") {
        // Monolithic upload: the body is the whole blob.
        ctx.registry
            .upload_part(&ctx.principal, &repo, id, Some(0), None, stream(body))
            .await?;
        let digest = complete(ctx, name, id, digest).await?;
        return Ok(created_blob(name, &digest));
    }
    Ok(progress_response(
        StatusCode::ACCEPTED,
        name,
        UploadProgress {
            upload_id: id,
            received: 0,
        },
    ))
}

async fn complete(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    id: UploadId,
    digest: &str,
) -> Result<Digest, OciError> {
    Digest::parse(digest).map_err(|e| OciError::DigestInvalid(e.to_string()))?;
    Ok(ctx
        .registry
        .complete_upload(
            &ctx.principal,
            &ctx.repo(name),
            id,
            digest,
            CompletionRules::OCI,
        )
        .await?)
}

pub(crate) async fn get_upload(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, OciError> {
    let p = ctx
        .registry
        .upload_progress(&ctx.principal, &ctx.repo(name), upload_id(id)?)
        .await?;
    Ok(progress_response(StatusCode::NO_CONTENT, name, p))
}

fn range_invalid() -> OciError {
    OciError::RangeInvalid("Content-Range must be <first>-<last>".into())
}

/// A `Content-Range` value: `<first>-<last>` (inclusive, `^[0-9]+-[0-9]+$`); some clients
/// prefix `bytes ` or append `/<total>`, which are ignored.
pub fn parse_content_range(s: &str) -> Result<(u64, u64), OciError> {
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(range_invalid)?;
    let b = b.split('/').next().unwrap_or(b);
    let (first, last) = (
        a.parse::<u64>().map_err(|_| range_invalid())?,
        b.parse::<u64>().map_err(|_| range_invalid())?,
    );
    if last < first {
        return Err(range_invalid());
    }
    Ok((first, last))
}

/// The request's `Content-Range`, if it has one.
fn content_range(ctx: &Ctx<'_>) -> Result<Option<(u64, u64)>, OciError> {
    let Some(v) = ctx.headers.get("content-range") else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| range_invalid())?;
    parse_content_range(s).map(Some)
}

pub(crate) async fn patch_upload(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    id: &str,
    body: Body,
) -> Result<Response, OciError> {
    let id = upload_id(id)?;
    let (first, last) = match content_range(ctx)? {
        Some((f, l)) => (Some(f), Some(l)),
        None => (None, None),
    };
    let p = ctx
        .registry
        .upload_part(
            &ctx.principal,
            &ctx.repo(name),
            id,
            first,
            last,
            stream(body),
        )
        .await?;
    Ok(progress_response(StatusCode::ACCEPTED, name, p))
}

pub(crate) async fn put_upload(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    id: &str,
    body: Body,
) -> Result<Response, OciError> {
    let id = upload_id(id)?;
    let digest = ctx
        .query("digest")
        .ok_or_else(|| OciError::DigestInvalid("the final PUT must name the blob's digest".into()))?
        .to_owned();
    let range = content_range(ctx)?;
    // The last chunk may ride on the PUT; an empty body adds nothing.
    ctx.registry
        .upload_part(
            &ctx.principal,
            &ctx.repo(name),
            id,
            range.map(|r| r.0),
            range.map(|r| r.1),
            stream(body),
        )
        .await?;
    let digest = complete(ctx, name, id, &digest).await?;
    Ok(created_blob(name, &digest))
}

pub(crate) async fn delete_upload(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    id: &str,
) -> Result<Response, OciError> {
    ctx.registry
        .cancel_upload(&ctx.principal, &ctx.repo(name), upload_id(id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-1023").ok(), Some((0, 1023)));
        assert_eq!(
            parse_content_range("bytes 1024-2047/4096").ok(),
            Some((1024, 2047))
        );
        for bad in ["", "5-4", "0-", "-5", "a-b", "0-18446744073709551616"] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }
}
