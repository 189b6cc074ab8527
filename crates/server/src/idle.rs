//! The idle timeout before a connection's first request.
//!
//! hyper's header read timeout covers a request's headers and keep-alive idleness, but before
//! the first byte hyper-util first sniffs the protocol version with no timeout at all, so a
//! client that connects and sends nothing would hold its connection forever. This acceptor
//! gives every new connection (after the TLS handshake, which axum-server bounds itself) the
//! same idle timeout until its first byte arrives.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

#[derive(Clone)]
pub struct FirstReadTimeout<A> {
    inner: A,
    timeout: Option<Duration>,
}

impl<A> FirstReadTimeout<A> {
    pub fn new(inner: A, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }
}

impl<A, I, S> Accept<I, S> for FirstReadTimeout<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Unpin + Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = FirstRead<A::Stream>;
    type Service = A::Service;
    type Future =
        Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send + 'static>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let timeout = self.timeout;
        Box::pin(async move {
            let (inner, service) = accepted.await?;
            let deadline = timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            Ok((FirstRead { inner, deadline }, service))
        })
    }
}

/// A stream whose reads fail with `TimedOut` if nothing arrives before the deadline; after the
/// first read completes it is the plain stream.
pub struct FirstRead<S> {
    inner: S,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstRead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(deadline) = &mut this.deadline else {
            return read;
        };
        if read.is_ready() {
            this.deadline = None;
        } else if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the idle timeout",
            )));
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstRead<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
