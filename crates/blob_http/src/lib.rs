//! Serving a blob over HTTP, shared by both front ends (ECR download URLs and `/v2` blob GETs):
//! `Range` (one range; 206 or 416), `Content-Length`, `Docker-Content-Digest`, streamed from
//! the blob store without buffering, or zero-copy from a local file (see [`zero_copy`]).

pub mod zero_copy;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use model::Digest;
use registry::{BlobRange, Registry};
pub use zero_copy::ZeroCopyConn;

/// A `Range` that selects no byte of the blob (answered with 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeNotSatisfiable;

/// Parses `bytes=a-b`, `bytes=a-` (from `a` to the end) and `bytes=-n` (the last `n` bytes)
/// against `size`, as RFC 9110 section 14.1.2 reads them: a last position past the end, or a
/// suffix longer than the blob, is cut to the blob. `Err` when unsatisfiable (section 14.1.1:
/// a first position at or past the end, or a suffix of zero bytes, or any range of an empty
/// blob), answered 416 with `Content-Range: bytes */<size>`. Anything else (several ranges,
/// other units, a syntactically invalid range such as `5-1`) is ignored and the whole blob is
/// sent, which RFC 9110 allows.
pub fn parse_range(h: &str, size: u64) -> Result<Option<BlobRange>, RangeNotSatisfiable> {
    let Some(spec) = h.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Some(a), None) if b.is_empty() => (a, size.saturating_sub(1)),
        (None, Some(0)) if a.is_empty() => return Err(RangeNotSatisfiable),
        (None, Some(n)) if a.is_empty() => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Ok(None),
    };
    if size == 0 || first >= size {
        return Err(RangeNotSatisfiable);
    }
    Ok(Some(BlobRange { first, last }))
}

/// What a blob response depends on in the request.
pub struct BlobRequest<'a> {
    pub method: &'a Method,
    pub version: Version,
    pub headers: &'a HeaderMap,
    /// Present when the request came over a connection that can send files zero-copy.
    pub zero_copy: Option<&'a ZeroCopyConn>,
}

/// The response for a GET or HEAD of a blob of `size` bytes the caller may read.
pub async fn blob_response(
    registry: &Registry,
    req: BlobRequest<'_>,
    digest: &Digest,
    size: u64,
) -> Response {
    let (method, headers) = (req.method, req.headers);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) => match parse_range(h, size) {
            Ok(r) => r,
            Err(RangeNotSatisfiable) => {
                let mut resp =
                    (StatusCode::RANGE_NOT_SATISFIABLE, "Range Not Satisfiable").into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
        },
        None => None,
    };
    let len = range.map_or(size, |r| r.last - r.first + 1);
    let body = if method == Method::HEAD {
        Body::empty()
    } else if let Some((conn, file)) = zero_copy_file(registry, &req, digest).await {
        conn.body(file, range.map_or(0, |r| r.first), len)
    } else {
        match registry.open_blob(digest, range).await {
            Ok(reader) => Body::from_stream(reader.body),
            Err(e) => {
                tracing::error!(error = ?e, %digest, "cannot open blob");
                return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    .into_response();
            }
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{digest}\"")) {
        h.insert(header::ETAG, v);
    }
    if let Some(r) = range {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.first, r.last)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// The blob's file and the connection to send it on, when it can go zero-copy.
async fn zero_copy_file<'a>(
    registry: &Registry,
    req: &BlobRequest<'a>,
    digest: &Digest,
) -> Option<(&'a ZeroCopyConn, std::fs::File)> {
    let conn = ZeroCopyConn::for_version(req.zero_copy, req.version)?;
    match registry.blob_file(digest).await {
        Ok(file) => Some((conn, file?)),
        Err(e) => {
            // The copying path reports the error if it persists.
            tracing::warn!(error = ?e, %digest, "cannot open blob file for zero-copy");
            None
        }
    }
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
        assert_eq!(parse_range("bytes=100-", 100), Err(RangeNotSatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
        // Suffix and open ranges at and past the edges.
        assert_eq!(parse_range("bytes=-100", 100), r(0, 99));
        assert_eq!(parse_range("bytes=-1000", 100), r(0, 99));
        assert_eq!(parse_range("bytes=-1", 100), r(99, 99));
        assert_eq!(parse_range("bytes=0-", 100), r(0, 99));
        assert_eq!(parse_range("bytes=99-", 100), r(99, 99));
        assert_eq!(parse_range("bytes=99-99", 100), r(99, 99));
        assert_eq!(parse_range("bytes=-0", 100), Err(RangeNotSatisfiable));
        assert_eq!(parse_range("bytes=100-200", 100), Err(RangeNotSatisfiable));
        assert_eq!(parse_range("bytes=1000-", 100), Err(RangeNotSatisfiable));
        // An empty blob has no byte to select.
        assert_eq!(parse_range("bytes=0-", 0), Err(RangeNotSatisfiable));
        assert_eq!(parse_range("bytes=-5", 0), Err(RangeNotSatisfiable));
        // Not ranges this parser understands: the whole blob.
        assert_eq!(parse_range("bytes=-", 100), Ok(None));
        assert_eq!(parse_range("bytes=a-", 100), Ok(None));
        assert_eq!(parse_range("bytes=--5", 100), Ok(None));
    }
}
