//! Zero-copy blob bodies on plain-TCP HTTP/1 connections.
//!
//! hyper writes every response body from userspace buffers and has no `sendfile` hook, so a
//! blob served through it is copied twice per byte (file to buffer, buffer to socket). This
//! module gives hyper such a hook without touching its framing: a blob's body is a run of
//! frames whose bytes are a *placeholder*, an allocation nobody reads, and the connection's
//! stream ([`ZeroCopyStream`]), which sees every slice hyper writes, recognises a placeholder
//! by its address and sends that many bytes of the blob's file with `sendfile(2)` instead.
//! hyper still counts the bytes against `Content-Length` and keeps HTTP/1 framing and
//! keep-alive exactly as for any other body.
//!
//! Why this cannot send zeros: placeholder addresses belong to allocations made here, alive
//! as long as any frame of the body is, so no other bytes can be mistaken for them; a body is
//! made of placeholders only for a request that arrived on a [`ZeroCopyStream`] (the server's
//! acceptor adds the [`ZeroCopyConn`] extension there and nowhere else) over HTTP/1 (hyper's
//! HTTP/2 copies body bytes into its own frames); and the server runs hyper's HTTP/1 with
//! vectored writes (`writev(true)`), which queues body slices as they are instead of copying
//! them into its header buffer.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::Version;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The largest frame of a placeholder body: the most one `sendfile` call is asked for.
const FRAME: usize = 1 << 20;

/// The most Linux's `sendfile` moves in one call.
const SENDFILE_MAX: usize = 0x7fff_f000;

/// How far ahead of what has been sent a transfer asks the kernel to read its file, and in
/// windows of how much (see [`Transfer::read_ahead`]).
const READ_AHEAD: u64 = 32 << 20;
const READ_AHEAD_WINDOW: u64 = 8 << 20;

/// Zeroed memory that is never read; its address range names one response's body. (Zeroed
/// allocations this large come straight from the kernel and are never touched, so they cost
/// address space, not memory.)
struct Placeholder(Box<[u8]>);

struct Frames(Arc<Placeholder>);

impl AsRef<[u8]> for Frames {
    fn as_ref(&self) -> &[u8] {
        &self.0.0
    }
}

/// One response body being sent from a file.
struct Transfer {
    start: usize,
    end: usize,
    /// Dead once hyper has dropped every frame of the body: written, or abandoned.
    alive: Weak<Placeholder>,
    file: Arc<File>,
    /// The next byte of `file` to send.
    offset: u64,
    /// The byte of `file` after the last one to send.
    file_end: u64,
    /// The kernel has been asked to read `file` up to here.
    read_ahead: u64,
}

impl Transfer {
    /// Keeps the kernel reading `READ_AHEAD` bytes ahead of `offset`, a window at a time, on a
    /// blocking thread. `sendfile` reads a file that is not in the page cache through the
    /// device's readahead window (128 KiB by default) while the sender waits; a new blob is
    /// never cached (parts are written with `O_DIRECT`), and a pull often follows its push.
    /// A window found cached is skipped.
    fn read_ahead(&mut self) {
        if self.read_ahead >= self.file_end || self.read_ahead >= self.offset + READ_AHEAD {
            return;
        }
        let from = self.read_ahead;
        let len = READ_AHEAD_WINDOW.min(self.file_end - from);
        self.read_ahead += len;
        // Most pulls are of cached blobs: when the window's last byte is in the page cache
        // (a read that must not wait succeeds), so is the window, nearly always.
        let mut byte = [0u8; 1];
        let mut probe = [std::io::IoSliceMut::new(&mut byte)];
        if rustix::io::preadv2(
            &*self.file,
            &mut probe,
            from + len - 1,
            rustix::io::ReadWriteFlags::NOWAIT,
        )
        .is_ok()
        {
            return;
        }
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            // Best effort: a failure changes nothing but how soon the bytes are read.
            let _ = rustix::fs::fadvise(
                &*file,
                from,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::WillNeed,
            );
        });
    }
}

/// The zero-copy side of one connection, shared by its stream and, as a request extension,
/// by the handlers of its requests.
#[derive(Clone, Default)]
pub struct ZeroCopyConn {
    transfers: Arc<Mutex<Vec<Transfer>>>,
}

impl ZeroCopyConn {
    pub fn new() -> Self {
        Self::default()
    }

    fn transfers(&self) -> MutexGuard<'_, Vec<Transfer>> {
        // A panic elsewhere cannot leave the list half-updated: every change is one push or
        // one retain.
        self.transfers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// This connection, if a response to a request of `version` may be sent zero-copy.
    pub fn for_version(conn: Option<&Self>, version: Version) -> Option<&Self> {
        conn.filter(|_| version == Version::HTTP_11 || version == Version::HTTP_10)
    }

    /// A body of `len` bytes that this connection's stream sends from `file`, starting at
    /// byte `offset`, with `sendfile`.
    pub fn body(&self, file: File, offset: u64, len: u64) -> Body {
        if len == 0 {
            return Body::empty();
        }
        let size = len.min(FRAME as u64) as usize;
        let placeholder = Arc::new(Placeholder(vec![0u8; size].into_boxed_slice()));
        let start = placeholder.0.as_ptr() as usize;
        {
            let mut transfers = self.transfers();
            transfers.retain(|t| t.alive.strong_count() > 0);
            transfers.push(Transfer {
                start,
                end: start + size,
                alive: Arc::downgrade(&placeholder),
                file: Arc::new(file),
                offset,
                file_end: offset + len,
                read_ahead: offset,
            });
        }
        let whole = Bytes::from_owner(Frames(placeholder));
        let frames = (0..len.div_ceil(size as u64)).map(move |i| {
            let n = (len - i * size as u64).min(size as u64) as usize;
            Ok::<_, Infallible>(whole.slice(..n))
        });
        Body::from_stream(futures_util::stream::iter(frames))
    }
}

/// A plain TCP connection whose writes turn placeholder slices into `sendfile` calls.
pub struct ZeroCopyStream {
    tcp: TcpStream,
    conn: ZeroCopyConn,
}

impl ZeroCopyStream {
    pub fn new(tcp: TcpStream, conn: ZeroCopyConn) -> Self {
        Self { tcp, conn }
    }

    /// The index of the first slice that is a placeholder, if any.
    fn first_placeholder(&self, bufs: &[IoSlice<'_>]) -> Option<usize> {
        let mut transfers = self.conn.transfers();
        if transfers.is_empty() {
            return None;
        }
        transfers.retain(|t| t.alive.strong_count() > 0);
        bufs.iter().position(|b| {
            let at = b.as_ptr() as usize;
            !b.is_empty() && transfers.iter().any(|t| (t.start..t.end).contains(&at))
        })
    }

    /// Sends the file bytes `buf` (a placeholder slice) stands for.
    fn poll_send_file(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let at = buf.as_ptr() as usize;
        let mut transfers = self.conn.transfers();
        let Some(t) = transfers
            .iter_mut()
            .find(|t| (t.start..t.end).contains(&at))
        else {
            return Poll::Ready(Err(io::Error::other("zero-copy transfer vanished")));
        };
        let count = buf.len().min(SENDFILE_MAX);
        t.read_ahead();
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, &*t.file, Some(&mut t.offset), count)
                    .map_err(io::Error::from)
            });
            match sent {
                // 0 means the file ended early (truncated under us): hyper turns it into a
                // write error and closes the connection, short of Content-Length.
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.first_placeholder(&[IoSlice::new(buf)]) == Some(0) {
            return self.poll_send_file(cx, buf);
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    /// Writes the slices up to the first placeholder with one `writev`, or, when the first
    /// slice is a placeholder, sends its file bytes. hyper calls again for the rest.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Leading empty slices would make a zero-length write hyper reads as a dead socket.
        let bufs = &bufs[bufs.iter().take_while(|b| b.is_empty()).count()..];
        match self.first_placeholder(bufs) {
            Some(0) => self.poll_send_file(cx, &bufs[0]),
            Some(plain) => Pin::new(&mut self.tcp).poll_write_vectored(cx, &bufs[..plain]),
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
