//! Hands each request's connection facts (the client's address, TLS or not) to the registry,
//! which reads them for the `aws:SourceIp` and `aws:SecureTransport` condition keys, and
//! writes the audit record of the request once its response is known.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// A header a trusted proxy sets to the client's address (`X-Forwarded-For` style: the
    /// first address of the list is the client).
    proxy_header: Option<HeaderName>,
    tls: bool,
    audit: Option<Arc<crate::audit::AuditLog>>,
}

impl Facts {
    pub(crate) fn new(
        proxy_header: Option<&str>,
        tls: bool,
        audit: Option<Arc<crate::audit::AuditLog>>,
    ) -> anyhow::Result<Self> {
        let proxy_header = proxy_header
            .map(|h| {
                HeaderName::try_from(h.to_ascii_lowercase())
                    .with_context(|| format!("trusted-proxy-header: '{h}' is not a header name"))
            })
            .transpose()?;
        Ok(Self {
            proxy_header,
            tls,
            audit,
        })
    }

    /// The client's address: the proxy header's first entry when configured and readable,
    /// else the peer's.
    fn source_ip(&self, req: &Request) -> Option<IpAddr> {
        let forwarded = self
            .proxy_header
            .as_ref()
            .and_then(|h| req.headers().get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        forwarded.or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
    }
}

pub(crate) async fn scope(State(facts): State<Facts>, req: Request, next: Next) -> Response {
    let source_ip = facts.source_ip(&req);
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let v2 = req.uri().path().starts_with("/v2");
    let connection = registry::Connection {
        source_ip,
        secure_transport: facts.tls,
        audit: registry::AuditNotes::default(),
    };
    let notes = connection.audit.clone();
    let resp = connection.scope(next.run(req)).await;
    if let Some(log) = &facts.audit
        && let Some(note) = notes.to_record()
    {
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
        let status = resp.status();
        let error_code = match header("x-amzn-errortype") {
            Some(t) => Some(t.to_owned()),
            None if v2 && (status.is_client_error() || status.is_server_error()) => {
                Some(v2_error_code(status.as_u16()).to_owned())
            }
            None => None,
        };
        let outcome = crate::audit::Outcome {
            source_ip,
            user_agent: user_agent.as_deref(),
            request_id: header("x-amzn-requestid"),
            error_code,
        };
        log.append(&log.record(&note, &outcome));
    }
    resp
}

/// The Distribution error code a `/v2` status stands for in a record (the body, which names
/// it exactly, streams on to the client unread).
fn v2_error_code(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NOT_FOUND",
        405 => "UNSUPPORTED",
        413 => "SIZE_INVALID",
        416 => "RANGE_INVALID",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    }
}
