//! Garbage collection and consistency checks.
//!
//! What is collected: uploads idle past their expiry (rows and staged bytes); blob links no
//! image of their repository references, made longer ago than the grace period; blobs no
//! repository links; and files on disk the metadata does not know, older than the grace
//! period (left by a crash between writing and recording). The grace period is what keeps a
//! blob uploaded but not yet named by a PutImage from being collected.
//!
//! Safety against a concurrent push: every removal is conditional in the metadata store
//! ("unlink if still unreferenced", "delete if still unlinked"), PutImage re-checks its blob
//! links inside its transaction, and blob files are only deleted with the storage's GC fence
//! held exclusive, which every commit from file to metadata holds shared — across processes
//! too, so `berth gc` beside a running server is safe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use model::Digest;

use crate::{Registry, Result, now_millis};

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// How long an unreferenced blob or an unknown file is left alone.
    pub grace: Duration,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub expired_uploads: usize,
    pub unlinked_blobs: usize,
    pub deleted_blobs: usize,
    pub freed_bytes: u64,
    pub orphan_blob_files: usize,
    pub orphan_upload_files: usize,
}

/// One problem `fsck` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsckProblem {
    /// The metadata names a blob the blob store does not hold.
    MissingBlob(Digest),
    SizeMismatch {
        digest: Digest,
        recorded: u64,
        stored: u64,
    },
    /// The stored bytes do not hash to the blob's name: corrupted on disk.
    Corrupt { digest: Digest, actual: Digest },
    /// A blob file the metadata does not know (harmless; GC removes it after the grace period).
    UnknownFile(Digest),
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// How long a background job's lease lasts unless renewed; its holder renews it every third of
/// that while the job runs, so a node killed in the middle frees the job within this time.
const LEASE_MILLIS: i64 = 60_000;

impl Registry {
    /// Runs `job` if this node (`holder`) gets the lease `name` in the metadata store, so that
    /// of the nodes sharing it one runs the job at a time; `None` if another node holds it.
    pub async fn run_leased<T>(
        &self,
        name: &str,
        holder: &str,
        job: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        self.run_leased_for(
            name,
            holder,
            Duration::from_millis(LEASE_MILLIS as u64),
            job,
        )
        .await
    }

    /// [`Self::run_leased`] with a lease of `ttl`: a job that runs often in short rounds (event
    /// delivery, every half second) takes a short lease, so that a node killed in a round holds
    /// up the other nodes' deliveries for seconds, not a minute.
    pub async fn run_leased_for<T>(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        job: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        let lease_millis = millis(ttl).max(1);
        let meta = self.storage.meta.clone();
        let now = now_millis();
        if !meta
            .take_lease(name, holder, now, now + lease_millis)
            .await?
        {
            return Ok(None);
        }
        let renewal = tokio::spawn({
            let (meta, name, holder) = (meta.clone(), name.to_owned(), holder.to_owned());
            async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    let now = now_millis();
                    match meta
                        .take_lease(&name, &holder, now, now + lease_millis)
                        .await
                    {
                        Ok(true) => {}
                        // Every step of a job is safe to run twice at once (its removals are
                        // conditional); the lease only keeps nodes from doing the work twice.
                        Ok(false) => tracing::warn!(lease = %name, "lost the lease"),
                        Err(e) => {
                            tracing::warn!(lease = %name, error = %e, "cannot renew the lease")
                        }
                    }
                }
            }
        });
        let out = job.await;
        renewal.abort();
        meta.release_lease(name, holder).await?;
        out.map(Some)
    }

    pub async fn collect_garbage(&self, opts: &GcOptions) -> Result<GcReport> {
        let meta = &self.storage.meta;
        let blobs = &self.storage.blobs;
        let now = now_millis();
        let cutoff = now - millis(opts.grace);
        let mut report = GcReport::default();

        for id in meta
            .idle_uploads(now - self.limits.upload_expiry_millis)
            .await?
        {
            report.expired_uploads += 1;
            if !opts.dry_run {
                // The staging state names the upload's S3 multipart upload, to abort.
                let staging = meta.get_upload(id).await?.map(|u| u.staging);
                meta.delete_upload(id).await?;
                blobs
                    .delete_upload(id, staging.as_deref().unwrap_or_default())
                    .await?;
            }
        }
        for (repo, digest) in meta.unreferenced_links(cutoff).await? {
            if opts.dry_run || meta.unlink_if_unreferenced(repo, &digest).await? {
                report.unlinked_blobs += 1;
            }
        }

        let _exclusive = self.storage.gc_fence.exclusive().await?;
        let candidates = meta.unlinked_blobs(cutoff).await?;
        // After a dry-run "unlink", blobs it would unlink would then be unlinked too; the
        // report counts only what is unlinked now.
        for (digest, size) in candidates {
            if opts.dry_run || meta.delete_blob_if_unlinked(&digest).await? {
                if !opts.dry_run {
                    self.failpoint("gc.after_forget");
                    blobs.delete(&digest).await?;
                }
                report.deleted_blobs += 1;
                report.freed_bytes += size;
            }
        }
        let known: HashSet<Digest> = meta
            .all_blobs()
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let old_enough =
            |t: SystemTime| SystemTime::now().duration_since(t).unwrap_or_default() > opts.grace;
        for (digest, size, modified) in blobs.list_blobs().await? {
            if !known.contains(&digest) && old_enough(modified) {
                report.orphan_blob_files += 1;
                report.freed_bytes += size;
                if !opts.dry_run {
                    blobs.delete(&digest).await?;
                }
            }
        }
        // Idle since before the end of time: every open upload.
        let open: HashSet<_> = meta.idle_uploads(i64::MAX).await?.into_iter().collect();
        for (id, modified) in blobs.list_uploads().await? {
            if !open.contains(&id) && old_enough(modified) {
                report.orphan_upload_files += 1;
                if !opts.dry_run {
                    blobs.delete_upload(id, &[]).await?;
                }
            }
        }
        Ok(report)
    }

    /// Re-hashes every blob and checks the metadata against the blob store.
    pub async fn fsck(&self) -> Result<Vec<FsckProblem>> {
        let meta = &self.storage.meta;
        let blobs = &self.storage.blobs;
        let mut problems = Vec::new();
        let recorded = meta.all_blobs().await?;
        let known: HashSet<Digest> = recorded.iter().map(|(d, _)| d.clone()).collect();
        for (digest, size) in recorded {
            let Some(stored) = blobs.stat(&digest).await? else {
                problems.push(FsckProblem::MissingBlob(digest));
                continue;
            };
            if stored != size {
                problems.push(FsckProblem::SizeMismatch {
                    digest,
                    recorded: size,
                    stored,
                });
                continue;
            }
            let body = blobs.open(&digest, None).await?.body;
            let actual = crate::verify::digest_of(body, digest.algorithm()).await?;
            if actual != digest {
                problems.push(FsckProblem::Corrupt { digest, actual });
            }
        }
        for (digest, _, _) in blobs.list_blobs().await? {
            if !known.contains(&digest) {
                problems.push(FsckProblem::UnknownFile(digest));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    /// Of two runs of one job at once (two nodes, or a node and `berth gc`), one runs it and the
    /// other is told another holds the lease; once the first ends, the job is free again.
    #[tokio::test]
    async fn a_leased_job_runs_on_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage::Storage::open_embedded(dir.path()).await.unwrap();
        let registry = Registry::new(storage, "us-east-1".into(), Limits::default());
        let (started, release) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let first = registry.run_leased("gc", "node-1", async {
            started.notify_one();
            release.notified().await;
            Ok(1)
        });
        let second = async {
            started.notified().await;
            let got = registry.run_leased("gc", "node-2", async { Ok(2) }).await;
            release.notify_one();
            got
        };
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first.unwrap(), Some(1));
        assert_eq!(second.unwrap(), None, "another node holds the lease");
        let third = registry.run_leased("gc", "node-2", async { Ok(3) }).await;
        assert_eq!(third.unwrap(), Some(3), "released at the job's end");
    }
}
