//! The plain-TCP acceptor: every connection's stream can send blob files zero-copy (see
//! `blob_http::zero_copy`), and every request on it carries the handle blob handlers use for
//! that. TLS connections do not get it: their bytes must pass through the cipher.

use std::future::{Ready, ready};
use std::io;

use axum::Extension;
use axum::middleware::AddExtension;
use axum_server::accept::Accept;
use blob_http::zero_copy::{ZeroCopyConn, ZeroCopyStream};
use tokio::net::TcpStream;
use tower_layer::Layer;

#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroCopyAcceptor;

impl<S> Accept<TcpStream, S> for ZeroCopyAcceptor {
    type Stream = ZeroCopyStream;
    type Service = AddExtension<S, ZeroCopyConn>;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let conn = ZeroCopyConn::new();
        let stream = ZeroCopyStream::new(stream, conn.clone());
        ready(Ok((stream, Extension(conn).layer(service))))
    }
}
