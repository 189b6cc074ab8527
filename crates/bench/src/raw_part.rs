//! UploadLayerPart as pre-signed raw HTTP/1.1 requests over hyper: a client whose ceiling is far
//! above what berth does, so that the upload benchmark measures the server. The AWS SDK spends
//! some 4 CPU-seconds per GiB on a 20 MiB part (base64, JSON escaping, the payload hash for its
//! signature, copies); on two cores shared with the server that is the bound, not berth.
//!
//! What makes it cheap: every part of a layer is the same pseudo-random bytes except its last
//! 16 (the upload's seed and the part's index), so the request body is a shared prefix
//! (`{"layerPartBlob":"` and the base64 of the constant bytes) and a small per-part tail (the
//! base64 of the varying bytes and the other members). The prefix is encoded once, and the
//! SHA-256 state over its whole 64-byte blocks is kept: signing a part hashes only the tail.
//! hyper writes the shared prefix straight from its buffer. The layer digest is computed before
//! the clock starts, as a real client knows its layer's digest before pushing it.
//!
//! The signature is computed with berth's own `auth::sigv4` (checked against AWS's published test
//! suite); the integration tests cover the SDK's signatures.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use auth::sigv4::{self, Authorization, RequestParts};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::server::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const REGION: &str = "us-east-1";
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";
/// The bytes at the end of every part that vary: the upload's seed, then the part's index.
pub const VARYING: usize = 16;

/// The bytes of part `index` of the upload `seed`, of length `len`: `base[..len]` with the seed
/// and the index in its last 16 bytes.
fn varying_bytes(seed: u64, index: u64) -> [u8; VARYING] {
    let mut v = [0u8; VARYING];
    v[..8].copy_from_slice(&seed.to_le_bytes());
    v[8..].copy_from_slice(&index.to_le_bytes());
    v
}

/// The sha256 digest (`sha256:<hex>`) of a layer of `size` bytes in parts of `part_size`.
pub fn layer_digest(base: &[u8], size: u64, part_size: u64, seed: u64) -> String {
    let mut h = Sha256::new();
    let (mut offset, mut index) = (0u64, 0u64);
    while offset < size {
        let len = (size - offset).min(part_size) as usize;
        let constant = len.saturating_sub(VARYING);
        h.update(&base[..constant]);
        h.update(&varying_bytes(seed, index)[VARYING - (len - constant)..]);
        offset += len as u64;
        index += 1;
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The constant start of the request body of every part of one length.
pub struct Prefix {
    pub len: usize,
    /// `{"layerPartBlob":"` and the base64 of the part's first `encoded` bytes.
    body: Bytes,
    encoded: usize,
    /// SHA-256 over `body[..hashed]`, the whole 64-byte blocks of `body`.
    state: Sha256,
    hashed: usize,
}

impl Prefix {
    pub fn new(base: &[u8], len: usize) -> Self {
        // The largest multiple of 3 of the constant bytes: its base64 never changes.
        let encoded = len.saturating_sub(VARYING) / 3 * 3;
        let mut body = br#"{"layerPartBlob":""#.to_vec();
        body.extend_from_slice(
            base64_simd::STANDARD
                .encode_to_string(&base[..encoded])
                .as_bytes(),
        );
        let hashed = body.len() / 64 * 64;
        let mut state = Sha256::new();
        state.update(&body[..hashed]);
        Prefix {
            len,
            body: Bytes::from(body),
            encoded,
            state,
            hashed,
        }
    }
}

/// One part's request body: the shared prefix and this part's tail.
struct PartBody(VecDeque<Bytes>);

impl Body for PartBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

/// One keep-alive connection sending the parts of one upload.
pub struct PartClient {
    sender: hyper::client::conn::http1::SendRequest<PartBody>,
    host: String,
}

impl PartClient {
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let host = endpoint
            .strip_prefix("http://")
            .with_context(|| format!("not an http:// endpoint: {endpoint}"))?
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host)
            .await
            .with_context(|| format!("connect {host}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(PartClient { sender, host })
    }

    /// Sends part `index` (bytes `offset..offset + prefix.len`) of the upload `seed`; answers
    /// the `lastByteReceived` the server reports (`None` from null-server, which answers `{}`).
    /// A throttled part is an error here; see [`PartClient::try_part`].
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &mut self,
        prefix: &Prefix,
        base: &[u8],
        repo: &str,
        upload_id: &str,
        seed: u64,
        index: u64,
        offset: u64,
    ) -> Result<Option<i64>> {
        match self
            .try_part(prefix, base, repo, upload_id, seed, index, offset)
            .await?
        {
            PartReply::Stored(last) => Ok(last),
            PartReply::Throttled { .. } => bail!("UploadLayerPart {index}: ThrottlingException"),
        }
    }

    /// [`PartClient::upload_part`], answering a `ThrottlingException` rather than failing on it.
    #[allow(clippy::too_many_arguments)]
    pub async fn try_part(
        &mut self,
        prefix: &Prefix,
        base: &[u8],
        repo: &str,
        upload_id: &str,
        seed: u64,
        index: u64,
        offset: u64,
    ) -> Result<PartReply> {
        let len = prefix.len;
        // The part's bytes from `prefix.encoded` on: constant bytes, then the varying ones.
        let constant = len.saturating_sub(VARYING);
        let mut rest = base[prefix.encoded..constant].to_vec();
        rest.extend_from_slice(&varying_bytes(seed, index)[VARYING - (len - constant)..]);
        let mut tail = base64_simd::STANDARD.encode_to_string(&rest).into_bytes();
        tail.extend_from_slice(
            format!(
                r#"","partFirstByte":{offset},"partLastByte":{},"repositoryName":"{repo}","uploadId":"{upload_id}"}}"#,
                offset + len as u64 - 1
            )
            .as_bytes(),
        );
        let mut h = prefix.state.clone();
        h.update(&prefix.body[prefix.hashed..]);
        h.update(&tail);
        let payload_sha256 = hex::encode(h.finalize());

        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        let amz_date = sigv4::format_amz_date(now);
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("host", self.host.as_str()),
            ("x-amz-date", amz_date.as_str()),
            ("x-amz-target", TARGET),
        ];
        let auth = Authorization {
            access_key_id: ACCESS_KEY_ID.into(),
            date: amz_date[..8].into(),
            region: REGION.into(),
            service: "ecr".into(),
            signed_headers: SIGNED_HEADERS.split(';').map(str::to_owned).collect(),
            signature: String::new(),
        };
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            payload_sha256,
        };
        let signature = sigv4::expected_signature(SECRET_ACCESS_KEY, &auth, &amz_date, &parts);
        let mut req = hyper::Request::builder().method("POST").uri("/");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .header(
                "authorization",
                format!(
                    "{} Credential={ACCESS_KEY_ID}/{}/{REGION}/ecr/aws4_request, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
                    sigv4::ALGORITHM,
                    &amz_date[..8]
                ),
            )
            .body(PartBody(VecDeque::from([
                prefix.body.clone(),
                Bytes::from(tail),
            ])))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body = resp.into_body().collect().await?.to_bytes();
        if status == hyper::StatusCode::BAD_REQUEST
            && serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|v| v["__type"] == "ThrottlingException")
        {
            return Ok(PartReply::Throttled {
                retry_after_secs: retry_after
                    .context("a ThrottlingException without Retry-After")?,
            });
        }
        if !status.is_success() {
            bail!(
                "UploadLayerPart {index}: status {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(PartReply::Stored(v["lastByteReceived"].as_i64()))
    }
}

/// What the server did with a part.
pub enum PartReply {
    /// Stored; the `lastByteReceived` it reports.
    Stored(Option<i64>),
    /// Refused, unread, for want of memory; the server's `Retry-After`.
    Throttled { retry_after_secs: u64 },
}

/// Uploads all parts of a layer of `size` bytes through one connection.
#[allow(clippy::too_many_arguments)]
pub async fn upload_parts(
    endpoint: &str,
    prefixes: &Prefixes,
    base: &[u8],
    repo: &str,
    upload_id: &str,
    seed: u64,
    size: u64,
    check: bool,
) -> Result<usize> {
    let mut client = PartClient::connect(endpoint).await?;
    let (mut offset, mut index) = (0u64, 0u64);
    while offset < size {
        let len = (size - offset).min(prefixes.full.len as u64);
        let prefix = if len == prefixes.full.len as u64 {
            &prefixes.full
        } else {
            prefixes
                .last
                .as_ref()
                .filter(|p| p.len as u64 == len)
                .context("no prefix for the last part")?
        };
        let last = client
            .upload_part(prefix, base, repo, upload_id, seed, index, offset)
            .await
            .with_context(|| format!("UploadLayerPart {index} at byte {offset}"))?;
        if check {
            ensure!(
                last == Some((offset + len - 1) as i64),
                "part {index}: lastByteReceived {last:?}, expected {}",
                offset + len - 1
            );
        }
        offset += len;
        index += 1;
    }
    Ok(index as usize)
}

/// The prefixes of a layer's full parts and of its shorter last part, if any.
pub struct Prefixes {
    pub full: Prefix,
    pub last: Option<Prefix>,
}

impl Prefixes {
    pub fn new(base: &[u8], size: u64, part_size: u64) -> Arc<Self> {
        let rem = (size % part_size) as usize;
        Arc::new(Prefixes {
            full: Prefix::new(base, part_size as usize),
            last: (rem != 0).then(|| Prefix::new(base, rem)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body assembled from prefix and tail is the JSON a plain encoder would produce, and
    /// its hash is that of the whole body.
    #[test]
    fn body_matches_plain_encoding() {
        let base = crate::random_bytes(1000);
        for len in [16usize, 17, 100, 1000] {
            let p = Prefix::new(&base, len);
            let mut part = base[..len].to_vec();
            let v = varying_bytes(7, 3);
            part[len - VARYING..].copy_from_slice(&v);
            let plain = format!(
                r#"{{"layerPartBlob":"{}""#,
                base64_simd::STANDARD.encode_to_string(&part)
            );
            let constant = len - VARYING;
            let mut rest = base[p.encoded..constant].to_vec();
            rest.extend_from_slice(&v);
            let mut assembled = p.body.to_vec();
            assembled.extend_from_slice(base64_simd::STANDARD.encode_to_string(&rest).as_bytes());
            assembled.push(b'"');
            assert_eq!(String::from_utf8(assembled.clone()).unwrap(), plain);
            let mut h = p.state.clone();
            h.update(&p.body[p.hashed..]);
            h.update(&assembled[p.body.len()..]);
            assert_eq!(h.finalize(), Sha256::digest(&assembled));
        }
        // The layer digest covers the parts as sent.
        let mut all = Vec::new();
        for (i, len) in [(0u64, 100usize), (1, 100), (2, 40)] {
            let mut part = base[..len].to_vec();
            part[len - VARYING..].copy_from_slice(&varying_bytes(9, i));
            all.extend_from_slice(&part);
        }
        assert_eq!(
            layer_digest(&base, 240, 100, 9),
            format!("sha256:{}", hex::encode(Sha256::digest(&all)))
        );
    }
}
