//! Blob GET and HEAD.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::{Digest, RepositoryName};

use crate::{Ctx, OciError};

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
    let digest = Digest::parse(digest).map_err(|e| OciError::DigestInvalid(e.to_string()))?;
    let blob = ctx
        .registry
        .blob_in_repository(&ctx.principal, &ctx.repo(name), &digest)
        .await?
        .ok_or_else(|| OciError::BlobUnknown(digest.to_string()))?;
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
