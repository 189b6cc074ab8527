//! With verified reads (`--verify-reads`), reading a whole blob re-hashes it on the way out.
//! The last chunk is held back until the digest checks, so a blob corrupted on disk ends short
//! of its `Content-Length` with an error: the client sees a failed transfer, never bad data
//! presented as good. (A ranged read cannot be checked; `berth fsck` covers those bytes.)
//! Off by default: it costs a core per ~1.4 GB/s, rules out zero-copy serving, and OCI clients
//! verify every blob's digest themselves; `berth fsck` is the scrub that finds rot.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use model::{Digest, DigestAlgorithm, DigestHasher};
use storage::ByteStream;

pub(crate) struct Verified {
    inner: ByteStream,
    hasher: Option<DigestHasher>,
    /// The chunk read but not yet passed on.
    held: Option<Bytes>,
    expected: Digest,
}

impl Verified {
    pub(crate) fn new(inner: ByteStream, expected: Digest) -> Self {
        let hasher = DigestHasher::new(expected.algorithm());
        Self {
            inner,
            hasher: Some(hasher),
            held: None,
            expected,
        }
    }
}

impl Stream for Verified {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(h) = &mut this.hasher {
                        h.update(&chunk);
                    }
                    // Pass on the previous chunk; hold this one.
                    if let Some(prev) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(prev)));
                    }
                }
                Poll::Ready(None) => {
                    let Some(h) = this.hasher.take() else {
                        return Poll::Ready(None);
                    };
                    let actual = h.finish();
                    if actual != this.expected {
                        this.held = None;
                        tracing::error!(expected = %this.expected, %actual, "blob corrupted on disk; the transfer is aborted (run berth fsck)");
                        return Poll::Ready(Some(Err(std::io::Error::other(format!(
                            "blob {} is corrupted",
                            this.expected
                        )))));
                    }
                    return Poll::Ready(this.held.take().map(Ok));
                }
                other => return other,
            }
        }
    }
}

/// The digest (of `algorithm`) of everything `stream` yields.
pub(crate) async fn digest_of(
    mut stream: ByteStream,
    algorithm: DigestAlgorithm,
) -> Result<Digest, storage::StorageError> {
    use futures_util::StreamExt;
    let mut h = DigestHasher::new(algorithm);
    while let Some(chunk) = stream.next().await {
        h.update(&chunk?);
    }
    Ok(h.finish())
}
