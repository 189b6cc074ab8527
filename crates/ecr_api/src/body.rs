//! Where a request body is read to: a large one (an UploadLayerPart is up to ~28 MB) in an
//! anonymous memory mapping of its own, returned to the kernel the moment the body (or the
//! part decoded in it) is dropped. From the heap, glibc kept such freed bodies in its
//! per-thread arenas, outside any budget: 200 concurrent 20 MiB parts within a 1 GiB
//! `max-inflight-part-bytes` peaked at 1,638 MiB that way, and at 937 MiB in mappings. The
//! mapping asks for transparent huge pages, so that where the kernel grants them a 28 MB body
//! costs some fourteen page faults rather than seven thousand.

use bytes::Bytes;
use memmap2::{Advice, MmapMut};

use crate::{ApiError, MAX_REQUEST_BODY};

/// Bodies up to this size stay on the heap, where small allocations are cheaper.
const MAPPED_FROM: usize = 64 * 1024;
/// Huge pages are 2 MiB: smaller mappings gain nothing from asking.
const HUGE_PAGE: usize = 2 * 1024 * 1024;

pub(crate) struct RequestBody {
    buf: Buf,
    len: usize,
}

enum Buf {
    Heap(Vec<u8>),
    Mapped(MmapMut),
}

impl RequestBody {
    /// Room for a body of `declared` bytes, or of up to [`MAX_REQUEST_BODY`] when it declares
    /// no length (pages are only taken as they are written).
    pub(crate) fn new(declared: Option<usize>) -> Self {
        let capacity = declared.unwrap_or(MAX_REQUEST_BODY);
        let buf = if capacity > MAPPED_FROM {
            mapped(capacity).map_or_else(|| Buf::Heap(Vec::with_capacity(capacity)), Buf::Mapped)
        } else {
            Buf::Heap(Vec::with_capacity(capacity))
        };
        RequestBody { buf, len: 0 }
    }

    /// Appends `chunk`. A body longer than it declared (hyper frames bodies by their length,
    /// so never in practice) moves to a mapping of the largest size accepted.
    pub(crate) fn extend(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let end = self.len + chunk.len();
        if end > MAX_REQUEST_BODY {
            return Err(ApiError::RequestTooLarge(MAX_REQUEST_BODY));
        }
        match &mut self.buf {
            Buf::Heap(v) => v.extend_from_slice(chunk),
            Buf::Mapped(m) if end <= m.len() => m[self.len..end].copy_from_slice(chunk),
            Buf::Mapped(m) => {
                let mut bigger = mapped(MAX_REQUEST_BODY).ok_or_else(|| {
                    ApiError::Serialization("no memory for the request body".into())
                })?;
                bigger[..self.len].copy_from_slice(&m[..self.len]);
                bigger[self.len..end].copy_from_slice(chunk);
                self.buf = Buf::Mapped(bigger);
            }
        }
        self.len = end;
        Ok(())
    }

    /// The body as `Bytes`, without a copy; the memory goes when the last of them is dropped.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.buf {
            Buf::Heap(v) => Bytes::from(v),
            Buf::Mapped(m) => Bytes::from_owner(m).slice(..self.len),
        }
    }
}

/// An anonymous mapping of `len` bytes, `None` if the kernel refuses one.
fn mapped(len: usize) -> Option<MmapMut> {
    let m = MmapMut::map_anon(len).ok()?;
    if len >= HUGE_PAGE {
        // Only advice: without transparent huge pages the mapping works all the same.
        let _ = m.advise(Advice::HugePage);
    }
    Some(m)
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.buf {
            Buf::Heap(v) => v,
            Buf::Mapped(m) => &m[..self.len],
        }
    }
}

impl std::ops::DerefMut for RequestBody {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Buf::Heap(v) => v,
            Buf::Mapped(m) => &mut m[..self.len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_bodies_read_back() {
        for declared in [Some(10), Some(3 * 1024 * 1024), None] {
            let mut b = RequestBody::new(declared);
            b.extend(b"hello ").unwrap();
            b.extend(b"world").unwrap();
            assert_eq!(&b[..], b"hello world");
            b[0] = b'H';
            assert_eq!(b.len(), 11);
            assert_eq!(b.into_bytes(), Bytes::from_static(b"Hello world"));
        }
        // Longer than declared: still whole.
        let mut b = RequestBody::new(Some(MAPPED_FROM + 1));
        b.extend(&vec![1u8; MAPPED_FROM]).unwrap();
        b.extend(&[2u8; 10]).unwrap();
        assert_eq!(b.len(), MAPPED_FROM + 10);
        assert_eq!(b[MAPPED_FROM..], [2u8; 10]);
        assert!(matches!(
            b.extend(&vec![0u8; MAX_REQUEST_BODY]),
            Err(ApiError::RequestTooLarge(_))
        ));
    }
}
