//! The middleware every request passes first: it classifies the request (`classify.rs`),
//! counts it and its bytes in the metrics, gives `/v2` (and every other non-ECR route) a
//! request id, and writes one structured log line when the response body has been sent.
//!
//! The line carries no header and no body: `Authorization`, SigV4 signatures, registry
//! passwords and presigned URLs never reach the log. The principal is what the front end
//! authenticated (it leaves the `registry::Principal` in the response's extensions).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tracing::Instrument;

use crate::classify::{Api, classify};
use crate::metrics::Metrics;

/// The header that carries a request's id, as ECR's API sends it.
pub const REQUEST_ID: &str = "x-amzn-requestid";

pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let class = classify(req.method(), req.uri().path(), req.headers());
    let method = req.method().clone();
    if class.api == Api::Operator {
        let resp = next.run(req).await;
        tracing::debug!(target: "berth::request", operation = class.operation, status = resp.status().as_u16(), "operator request");
        return resp;
    }
    let api = class.api;
    let in_flight = metrics.in_flight(api, class.upload);
    // The ECR front end makes the ids of its own requests (its logs carry them); every other
    // request gets one here, in its span and in its response.
    let own_id = (!matches!(api, Api::Ecr | Api::EcrPublic) || class.operation == "LayerDownload")
        .then(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        api = api.label(),
        operation = class.operation,
        request_id = tracing::field::Empty
    );
    if let Some(id) = &own_id {
        span.record("request_id", id.as_str());
    }
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        api,
        received: AtomicU64::new(0),
    });
    let req = req.map(|inner| {
        Body::new(Received {
            inner,
            shared: shared.clone(),
        })
    });
    let mut resp = next.run(req).instrument(span).await;
    let latency = started.elapsed();
    let status = resp.status().as_u16();
    metrics.request(api, class.operation, status, latency);
    let request_id = match own_id {
        Some(id) => {
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().entry(REQUEST_ID).or_insert(v);
            }
            id
        }
        None => resp
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
    };
    let line = Line {
        request_id,
        api,
        operation: class.operation,
        // `/v2` names it in the path; ECR and ECR Public in the body, which their front end
        // read and left in the response.
        repository: class.repository.or_else(|| {
            resp.extensions()
                .get::<ecr_api::RequestRepository>()
                .map(|r| r.0.clone())
        }),
        principal: resp
            .extensions()
            .get::<registry::Principal>()
            .map(|p| p.arn.clone()),
        method,
        status,
        latency_ms: latency.as_secs_f64() * 1000.0,
        started,
        received: shared,
        in_flight,
    };
    resp.map(|inner| {
        Body::new(Sent {
            inner,
            sent: 0,
            failed: false,
            line: Some(line),
        })
    })
}

/// What the request body counts into.
struct Shared {
    metrics: Arc<Metrics>,
    api: Api,
    received: AtomicU64,
}

/// The request body, counted as the handler reads it.
struct Received {
    inner: Body,
    shared: Arc<Shared>,
}

impl http_body::Body for Received {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &poll
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.shared.received.fetch_add(n, Ordering::Relaxed);
            self.shared.metrics.received(self.shared.api, n);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, counted as it is sent; the request's log line is written when it is
/// dropped (sent, or abandoned by a client that went away).
struct Sent {
    inner: Body,
    sent: u64,
    failed: bool,
    line: Option<Line>,
}

impl http_body::Body for Sent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                // Zero-copy frames pass through as they are: hyper and the connection still
                // see the same placeholder bytes (`blob_http::zero_copy`).
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    self.sent += n;
                    if let Some(line) = &self.line {
                        line.received.metrics.sent(line.api, n);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => self.failed = true,
            _ => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.write(self.sent, self.failed);
        }
    }
}

/// A request's log line, less what only the end of its response body tells.
struct Line {
    request_id: String,
    api: Api,
    operation: &'static str,
    repository: Option<String>,
    principal: Option<String>,
    method: Method,
    status: u16,
    /// Until the response headers.
    latency_ms: f64,
    started: Instant,
    received: Arc<Shared>,
    /// Counts the request as in flight until the line is written: a download is served
    /// until its last byte.
    in_flight: crate::metrics::InFlight,
}

impl Line {
    fn write(self, bytes_out: u64, body_failed: bool) {
        tracing::info!(
            target: "berth::request",
            request_id = %self.request_id,
            api = self.api.label(),
            operation = self.operation,
            repository = self.repository.as_deref().unwrap_or("-"),
            principal = self.principal.as_deref().unwrap_or("-"),
            method = %self.method,
            status = self.status,
            bytes_in = self.received.received.load(Ordering::Relaxed),
            bytes_out,
            latency_ms = round(self.latency_ms),
            duration_ms = round(self.started.elapsed().as_secs_f64() * 1000.0),
            body_failed,
            "request"
        );
        drop(self.in_flight);
    }
}

/// Milliseconds to the microsecond: enough for a log line.
fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
