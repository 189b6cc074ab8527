//! Writing an upload part with `O_DIRECT` (Linux): the bytes go from an aligned buffer to the
//! device, never through the page cache. On the VMs berth is measured on, copying a part into
//! fresh page-cache pages cost more CPU than both SHA-256 passes over it (some 2.5 CPU-seconds
//! per GiB, against 0.1 for direct writes); a staged part is not read again before the upload
//! completes, so caching it buys nothing.
//!
//! The part is copied into an aligned block while it is observed (hashed); a full block is
//! written on a blocking thread while a second one fills, so hashing and writing overlap. The
//! second blocks are a process-wide budget ([`OVERLAP`]): a part that finds none spare writes
//! each full block before it fills it again, so memory grows by one block per concurrent part,
//! not two, past the budget. A part that does not start on an alignment boundary first
//! re-reads the staged bytes of its first block; one that does not end on one is written
//! padded with zeros and the file is cut back to its real length. `fdatasync` at the end still makes the part (and the
//! file's size) durable: `O_DIRECT` alone guarantees neither.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use super::ByteStream;
use crate::StorageError;

/// Offsets and lengths of direct writes are multiples of this (the largest logical block size
/// in common use).
const ALIGN: usize = 4096;
/// Bytes per write: what each part being written holds in memory, once or (within
/// [`OVERLAP`]) twice; 1 MiB writes already run at the disk's speed.
const BLOCK: usize = 1024 * 1024;
/// Blocks kept for reuse (fresh pages cost a fault each).
const POOL: usize = 4;
/// Parts that may hold a second block at once, to fill it while the first is written. A few
/// concurrent parts already keep the disk busy without overlap; past this, each further part
/// costs one block. Taken without waiting, so a slow client holding one delays nobody.
const OVERLAP: usize = 4;

/// A heap buffer of `BLOCK` bytes starting on an `ALIGN` boundary (moving the `Vec` does not
/// move its heap memory).
pub(crate) struct Block {
    raw: Vec<u8>,
    start: usize,
    filled: usize,
}

impl Block {
    /// No memory: what a part holds while its only block is being written. Never reused.
    const EMPTY: Block = Block {
        raw: Vec::new(),
        start: 0,
        filled: 0,
    };

    fn new() -> Self {
        let raw = vec![0u8; BLOCK + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "a byte buffer can always be aligned");
        Block {
            raw,
            start,
            filled: 0,
        }
    }

    fn spare(&mut self) -> &mut [u8] {
        &mut self.raw[self.start + self.filled..self.start + BLOCK]
    }

    /// The filled bytes padded with zeros to a multiple of `ALIGN`.
    fn padded(&mut self) -> &[u8] {
        let end = self.filled.next_multiple_of(ALIGN);
        self.raw[self.start + self.filled..self.start + end].fill(0);
        &self.raw[self.start..self.start + end]
    }
}

/// Blocks kept between parts, and the budget of second blocks.
pub(crate) struct BlockPool {
    idle: Mutex<Vec<Block>>,
    /// Second blocks that may still be taken.
    overlap: AtomicUsize,
}

impl Default for BlockPool {
    fn default() -> Self {
        Self::with_overlap(OVERLAP)
    }
}

/// A part's claim on a second block; handed back on drop.
struct Overlap<'a>(&'a AtomicUsize);

impl Drop for Overlap<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

impl BlockPool {
    pub(crate) fn with_overlap(parts: usize) -> Self {
        BlockPool {
            idle: Mutex::default(),
            overlap: AtomicUsize::new(parts),
        }
    }

    #[cfg(test)]
    pub(crate) fn spare_overlap(&self) -> usize {
        self.overlap.load(Ordering::Acquire)
    }

    /// A claim on a second block, if the budget has one spare.
    fn overlap(&self) -> Option<Overlap<'_>> {
        self.overlap
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|_| Overlap(&self.overlap))
    }

    fn take(&self) -> Block {
        let reused = self.idle.lock().ok().and_then(|mut p| p.pop());
        let mut b = reused.unwrap_or_else(Block::new);
        b.filled = 0;
        b
    }

    fn give(&self, b: Block) {
        if let Ok(mut p) = self.idle.lock()
            && p.len() < POOL
            && !b.raw.is_empty()
        {
            p.push(b);
        }
    }
}

/// Opens `path` for direct writes; `None` where the file system does not do `O_DIRECT`
/// (tmpfs, some FUSE and network file systems): the caller writes through the page cache.
pub(crate) async fn open(path: &Path) -> Result<Option<File>, StorageError> {
    let path = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
    })
    .await
    .map_err(|e| StorageError::Other(Box::new(e)))?;
    match opened {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Other(Box::new(e)))??)
}

/// Writes `data` at `offset` of the staged file `path` (already cut to `offset` bytes) through
/// `direct`, an `O_DIRECT` handle on it, and makes it durable. Returns the bytes written.
pub(crate) async fn write_part(
    pool: &Arc<BlockPool>,
    path: &Path,
    direct: File,
    offset: u64,
    mut data: ByteStream,
    observe: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
) -> Result<u64, StorageError> {
    let direct = Arc::new(direct);
    // Writes start at the block boundary at or before `offset`: the staged bytes between them
    // go first.
    let mut pos = offset - offset % ALIGN as u64;
    let mut cur = pool.take();
    let head = (offset - pos) as usize;
    if head > 0 {
        let path = path.to_path_buf();
        let mut buf = cur;
        buf = blocking(move || {
            use std::os::unix::fs::FileExt;
            let start = buf.start;
            File::open(path)?.read_exact_at(&mut buf.raw[start..start + head], pos)?;
            buf.filled = head;
            Ok(buf)
        })
        .await?;
        cur = buf;
    }
    let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<Block>>> = None;
    // Held from the first full block that found one spare to the end of the part.
    let mut overlap = None;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| StorageError::SourceFailed(e.to_string()))?;
            observe(&chunk);
            written += chunk.len() as u64;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let spare = cur.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                cur.filled += n;
                rest = &rest[n..];
                if cur.filled == BLOCK {
                    if overlap.is_none() {
                        overlap = pool.overlap();
                    }
                    // The previous block must be on disk before its buffer is reused.
                    let next = match in_flight.take() {
                        Some(w) => w.await.map_err(|e| StorageError::Other(Box::new(e)))??,
                        None if overlap.is_some() => pool.take(),
                        None => {
                            // No second block: this one is written before it fills again.
                            let (file, at) = (direct.clone(), pos);
                            let full = std::mem::replace(&mut cur, Block::EMPTY);
                            cur = blocking(move || write_block(&file, full, at)).await?;
                            cur.filled = 0;
                            pos += BLOCK as u64;
                            continue;
                        }
                    };
                    let (full, file, at) = (std::mem::replace(&mut cur, next), direct.clone(), pos);
                    cur.filled = 0;
                    pos += BLOCK as u64;
                    in_flight = Some(tokio::task::spawn_blocking(move || {
                        write_block(&file, full, at)
                    }));
                }
            }
        }
        if let Some(w) = in_flight.take() {
            pool.give(w.await.map_err(|e| StorageError::Other(Box::new(e)))??);
        }
        let end = pos + cur.filled as u64;
        let (file, last) = (direct.clone(), std::mem::replace(&mut cur, pool.take()));
        let last = blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut last = last;
            if last.filled > 0 {
                file.write_all_at(last.padded(), pos)?;
                if last.filled % ALIGN != 0 {
                    file.set_len(end)?; // cut the padding
                }
            }
            file.sync_data()?;
            Ok(last)
        })
        .await?;
        pool.give(last);
        Ok(written)
    }
    .await;
    // On an error, a write may still be running: let it finish before the caller reuses the
    // file (the next part cuts whatever it left).
    if let Some(w) = in_flight.take() {
        let _ = w.await;
    }
    drop(overlap);
    pool.give(cur);
    result
}

/// Writes a full block at `at` (on a blocking thread) and hands it back for reuse.
fn write_block(file: &File, mut full: Block, at: u64) -> std::io::Result<Block> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(full.padded(), at)?;
    Ok(full)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use model::UploadId;

    use crate::blob::BlobStore;
    use crate::blob::filesystem::FilesystemBlobStore;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Parts of every alignment and size, in chunks that straddle blocks, end up as the plain
    /// concatenation, whether the file system takes O_DIRECT (the temporary directory's
    /// usually does) or not, and whether a part may fill a second block while one is written
    /// or must write each block before refilling it; a part written again after one never
    /// acknowledged replaces it.
    #[tokio::test]
    async fn parts_at_any_offset() {
        for overlap in [0, 1, super::OVERLAP] {
            let dir = tempfile::tempdir().unwrap();
            let store = FilesystemBlobStore::open(dir.path())
                .await
                .unwrap()
                .with_overlap(overlap);
            parts_at_any_offset_in(&store, dir.path()).await;
            assert_eq!(
                store.spare_overlap(),
                overlap,
                "the budget comes back whole"
            );
        }
    }

    async fn parts_at_any_offset_in(store: &FilesystemBlobStore, dir: &std::path::Path) {
        let id = UploadId::new_random();
        let sizes = [
            1usize,
            4095,
            4097,
            super::BLOCK + 3,
            2 * super::BLOCK,
            3 * super::BLOCK + 4097,
            10,
            super::BLOCK - 1,
            0,
            5000,
        ];
        let mut expected = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let part = bytes(len, i as u8);
            let offset = expected.len() as u64;
            // A part that is written but never acknowledged first, then the real one.
            for attempt in [bytes(len + 7000, 99), part.clone()] {
                let mut seen = Vec::new();
                let (n, _) = store
                    .write_part(id, offset, &[], stream_of(&attempt), &mut |c| {
                        seen.extend_from_slice(c)
                    })
                    .await
                    .unwrap();
                assert_eq!(n as usize, attempt.len());
                assert_eq!(seen, attempt);
            }
            expected.extend_from_slice(&part);
            let staged = std::fs::read(dir.join("uploads").join(id.to_string())).unwrap();
            assert_eq!(staged.len(), expected.len(), "after part {i}");
            assert!(staged == expected, "content after part {i}");
        }
    }

    fn stream_of(data: &[u8]) -> crate::blob::ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> = data
            .chunks(1_000_003)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    /// More parts started at once than the budget has second blocks, racing for it on two
    /// threads: each is written whole, and no claim is lost. (How many run without a second
    /// block depends on scheduling; `parts_at_any_offset` with a budget of 0 drives that path
    /// every time.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parts_racing_for_second_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(FilesystemBlobStore::open(dir.path()).await.unwrap());
        let parts: Vec<(UploadId, Vec<u8>)> = (0..super::OVERLAP + 3)
            .map(|i| {
                (
                    UploadId::new_random(),
                    bytes(4 * super::BLOCK + 100 * i, i as u8),
                )
            })
            .collect();
        let writers: Vec<_> = parts
            .iter()
            .map(|(id, data)| {
                let (store, id, data) = (store.clone(), *id, data.clone());
                tokio::spawn(async move {
                    store
                        .write_part(id, 0, &[], stream_of(&data), &mut |_| {})
                        .await
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        for (id, data) in &parts {
            let staged = std::fs::read(dir.path().join("uploads").join(id.to_string())).unwrap();
            assert!(&staged == data, "upload {id}");
        }
        assert_eq!(store.spare_overlap(), super::OVERLAP);
    }
}
