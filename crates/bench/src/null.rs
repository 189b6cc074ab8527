//! `berth-bench null-server`: an HTTP/1.1 server that does no work, to measure each client's own
//! ceiling (curl, wrk, `berth-bench load`, the AWS SDK) so that a client's limit is never taken
//! for berth's.
//!
//! - `GET /bytes/<n>` answers `n` bytes (zeros, from one shared 1 MiB buffer), or with
//!   `Range: bytes=<first>-<last>` that part of them (`206`).
//! - Anything else: the request body is read and dropped, and the answer is `200` with `{}` as
//!   `application/x-amz-json-1.1` (an empty but valid answer to every ECR operation the benchmark
//!   calls) and a `Docker-Content-Digest` header. `HEAD` gets the headers only.

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const CHUNK: usize = 1024 * 1024;
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub async fn serve(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    // The line `Server::spawn` (and scripts) wait for.
    println!("listening on http://{}", listener.local_addr()?);
    let zeros = Bytes::from(vec![0u8; CHUNK]);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let zeros = zeros.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, zeros.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    zeros: Bytes,
) -> Result<Response<BoxBody<Bytes, Infallible>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok()?.strip_prefix("bytes=")?.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    // Read and drop the request body, whatever its size.
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    let resp = Response::builder().header("Docker-Content-Digest", EMPTY_DIGEST);
    let resp = match path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(total) => {
            let (status, n) = match range {
                Some((first, last)) if first <= last && first < total => {
                    (206, last.min(total - 1) - first + 1)
                }
                _ => (200, total),
            };
            let chunks = n.div_ceil(CHUNK as u64);
            let frames = (0..chunks).map(move |i| {
                let len = (n - i * CHUNK as u64).min(CHUNK as u64) as usize;
                Ok::<_, Infallible>(Frame::data(zeros.slice(..len)))
            });
            resp.status(status)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", n)
                .body(StreamBody::new(futures_util::stream::iter(frames)).boxed())
        }
        None => resp
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from_static(b"{}")).boxed()),
    };
    Ok(resp.expect("a valid response"))
}
