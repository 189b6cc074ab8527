//! Hands each request's connection facts (the client's address, TLS or not) to the registry,
//! which reads them for the `aws:SourceIp` and `aws:SecureTransport` condition keys.

use std::net::{IpAddr, SocketAddr};

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
}

impl Facts {
    pub(crate) fn new(proxy_header: Option<&str>, tls: bool) -> anyhow::Result<Self> {
        let proxy_header = proxy_header
            .map(|h| {
                HeaderName::try_from(h.to_ascii_lowercase())
                    .with_context(|| format!("trusted-proxy-header: '{h}' is not a header name"))
            })
            .transpose()?;
        Ok(Self { proxy_header, tls })
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
    let connection = registry::Connection {
        source_ip: facts.source_ip(&req),
        secure_transport: facts.tls,
    };
    connection.scope(next.run(req)).await
}
