//! The first pull of a blob of a cache repository: the bytes stream from the upstream to the
//! client and into the blob store at once, and the blob is linked into the repository only
//! once all of it is stored and its digest verified. A partial or corrupt download is
//! discarded, never marked complete.
//!
//! Concurrent first pulls of one blob on one node fetch it once: the first holds the blob's
//! fill lock until the blob is committed, the others wait for it and are then served from the
//! store. Nodes do not share these locks: two nodes may each fetch the blob, and the store
//! keeps the first copy committed (committing a digest it holds discards the other).

use std::io;
use std::sync::PoisonError;

use bytes::Bytes;
use futures_util::StreamExt;
use model::{Digest, DigestHasher, ResumableSha256, UploadId};
use storage::{ByteStream, RepositoryId, Storage, StorageError, UploadRecord};
use tokio::sync::mpsc;

use super::manifests::upstream_error;
use super::{UpstreamBlob, UpstreamError};
use crate::{Principal, Registry, RegistryError, RepositoryRef, Result, now_millis};

/// Chunks in flight between the upstream and a slow client: the download goes no faster
/// than the client takes it, and holds at most this many chunks.
const CLIENT_CHUNKS: usize = 8;

/// What a blob read of a cache repository should serve.
pub enum PullThroughBlob {
    /// The blob is in the store and linked into the repository now: serve it as usual.
    Cached,
    /// The blob is streaming from upstream (and being stored meanwhile).
    Streaming(UpstreamBlob),
}

impl Registry {
    /// The pull-through side of a blob read that missed: `None` if the repository is not a
    /// cache (or the upstream does not have the blob).
    pub async fn pull_through_blob(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digest: &Digest,
    ) -> Result<Option<PullThroughBlob>> {
        let Some(source) = self.cache_source(r, who).await? else {
            return Ok(None);
        };
        let repo = self.repository(who, r, "ecr:BatchGetImage").await?;
        let pt = self.pull_through()?;
        let lock = pt
            .fills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(digest.to_string())
            .or_default()
            .clone();
        let guard = lock.lock_owned().await;
        let meta = &self.storage.meta;
        if meta.repository_blob(repo.id, digest).await?.is_some() {
            return Ok(Some(PullThroughBlob::Cached));
        }
        // Another repository (or another node's fill) may hold it already.
        match meta.link_blob(repo.id, digest, now_millis()).await {
            Ok(()) => return Ok(Some(PullThroughBlob::Cached)),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let upstream = match pt.config.upstream.blob(&source.target, digest).await {
            Ok(b) => b,
            Err(UpstreamError::NotFound(_)) => return Ok(None),
            Err(e) => {
                tracing::warn!(repository = %repo.name, %digest, error = %e, "pull-through cache: upstream unreachable for a blob not cached");
                return Err(upstream_error(e));
            }
        };
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(CLIENT_CHUNKS);
        let job = Fill {
            storage: self.storage.clone(),
            repo: repo.id,
            digest: digest.clone(),
            size: upstream.size,
            max_size: self.limits.max_layer_size,
        };
        let fills = pt.fills.clone();
        let key = digest.to_string();
        tokio::spawn(async move {
            let digest = job.digest.clone();
            if let Err(e) = job.run(upstream.body, tx).await {
                tracing::warn!(%digest, error = %e, "pull-through cache: blob not stored");
            }
            fills
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            drop(guard);
        });
        let body: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        Ok(Some(PullThroughBlob::Streaming(UpstreamBlob {
            size: upstream.size,
            body,
        })))
    }
}

struct Fill {
    storage: Storage,
    repo: RepositoryId,
    digest: Digest,
    /// What the upstream announced, checked at the end.
    size: Option<u64>,
    max_size: u64,
}

fn broken(why: String) -> io::Error {
    io::Error::other(why)
}

impl Fill {
    /// Stores the upstream's bytes while handing each chunk to the client, then verifies and
    /// commits. Whatever goes wrong, the client's stream ends in an error, and the staged
    /// bytes are discarded.
    async fn run(self, body: ByteStream, client: mpsc::Sender<io::Result<Bytes>>) -> Result<()> {
        let now = now_millis();
        let id = UploadId::new_random();
        let meta = &self.storage.meta;
        meta.create_upload(UploadRecord {
            id,
            repository: self.repo,
            created_at: now,
            updated_at: now,
            received: 0,
            part_count: 0,
            last_part_size: 0,
            short_part_seen: false,
            hash_state: ResumableSha256::new().save(),
            staging: Vec::new(),
        })
        .await?;
        let result = self.store(id, body, &client).await;
        if let Err(e) = &result {
            let _ = client.send(Err(broken(e.to_string()))).await;
            let _ = meta.delete_upload(id).await;
            // The staging state is in the store's hands; an empty one finds what is left to
            // delete, or leaves it to the orphan sweep of garbage collection.
            let _ = self.storage.blobs.delete_upload(id, &[]).await;
        }
        result
    }

    async fn store(
        &self,
        id: UploadId,
        body: ByteStream,
        client: &mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<()> {
        let tx = client.clone();
        let max = self.max_size;
        let mut seen: u64 = 0;
        let tee: ByteStream = Box::pin(body.then(move |item| {
            let tx = tx.clone();
            let item = match item {
                Ok(b) => {
                    seen += b.len() as u64;
                    if seen > max {
                        Err(broken(format!("the upstream sent more than {max} bytes")))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => Err(e),
            };
            async move {
                let copy = match &item {
                    Ok(b) => Ok(b.clone()),
                    Err(e) => Err(broken(e.to_string())),
                };
                // A client that went away does not stop the fill: the cache still fills.
                let _ = tx.send(copy).await;
                item
            }
        }));
        let mut hasher = DigestHasher::new(self.digest.algorithm());
        let (size, staging) = {
            let mut observe = |b: &[u8]| hasher.update(b);
            self.storage
                .blobs
                .write_part(id, 0, &[], tee, &mut observe)
                .await?
        };
        let computed = hasher.finish();
        let fail = |why: String| RegistryError::UnableToGetUpstreamImage {
            reason: super::UpstreamFailure::Unavailable,
            message: why,
        };
        if computed != self.digest {
            let _ = self.storage.blobs.delete_upload(id, &staging).await;
            return Err(fail(format!(
                "the upstream sent a blob whose digest is {computed}, not {}",
                self.digest
            )));
        }
        if let Some(announced) = self.size
            && announced != size
        {
            let _ = self.storage.blobs.delete_upload(id, &staging).await;
            return Err(fail(format!(
                "the upstream announced {announced} bytes and sent {size}"
            )));
        }
        // Blob first, then metadata, as a completed upload does (see uploads.rs).
        let _completing = self.storage.gc_fence.shared().await?;
        self.storage
            .blobs
            .commit_upload(id, &staging, size, &self.digest)
            .await?;
        self.storage
            .meta
            .complete_upload(id, self.repo, &self.digest, size, now_millis())
            .await?;
        Ok(())
    }
}
