//! A `/v2` request's share of the registry's memory budget for request bodies. Blob bodies
//! are streams, so an upload request holds not its body but a bounded window of it: the 1 MiB
//! block its bytes are written to the staging file from (sometimes a second one being filled),
//! and the connection's read buffer. Each reserves that window, so that a thousand slow
//! streamed PATCHes are bounded too; a manifest PUT, which is buffered, reserves its size.

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use futures_util::StreamExt;
use registry::{Registry, Reservation};

use crate::OciError;
use crate::manifests::MAX_MANIFEST_BYTES;
use crate::route::Route;

/// What one streamed upload request holds in memory at once (see the module's comment).
const STREAMED_BODY_SHARE: u64 = 2 * 1024 * 1024;

/// Refused bodies up to this size are read and thrown away, so that the client reads the 429
/// rather than a reset connection; a larger one is cut off (the connection closes).
const DISCARD_LIMIT: u64 = 32 * 1024 * 1024;

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reserves the request's share before its body is read; `None` for requests without a body
/// or that buffer none. 429 `TOOMANYREQUESTS` when the budget stays full past its wait.
pub(crate) async fn reserve(
    registry: &Registry,
    method: &Method,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Option<Reservation>, OciError> {
    let declared = declared_length(headers);
    if declared == Some(0) {
        return Ok(None);
    }
    let bytes = match (method, route) {
        (&Method::POST | &Method::PATCH | &Method::PUT, Route::Uploads(_) | Route::Upload(..)) => {
            STREAMED_BODY_SHARE
        }
        // Collected whole, then copied once for the registry.
        (&Method::PUT, Route::Manifest(..)) => {
            2 * declared.map_or(MAX_MANIFEST_BYTES as u64, |n| {
                n.min(MAX_MANIFEST_BYTES as u64)
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(registry.reserve_body_memory(bytes).await?))
}

/// Reads a refused request's body to its end, throwing it away as it arrives, when it is small
/// enough: the client then reads the answer instead of a reset connection.
pub(crate) async fn discard(headers: &HeaderMap, body: Body) {
    let expects_continue = headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue || declared_length(headers).is_none_or(|n| n > DISCARD_LIMIT) {
        return;
    }
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}
