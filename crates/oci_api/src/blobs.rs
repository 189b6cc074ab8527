//! Blob GET and HEAD.

use axum::response::Response;
use model::{Digest, RepositoryName};

use crate::{Ctx, OciError};

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
    let req = blob_http::BlobRequest {
        method: &ctx.method,
        version: ctx.version,
        headers: &ctx.headers,
        zero_copy: ctx.zero_copy.as_ref(),
    };
    Ok(blob_http::blob_response(ctx.registry, req, &digest, blob.size).await)
}
