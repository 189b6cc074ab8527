//! Blob availability and downloads, per repository as ECR scopes them.

use model::Digest;
use storage::{BlobRange, BlobReader, RepositoryBlob};

use crate::{Principal, Registry, RegistryError, RepositoryRef, Result};

/// Repositories holding a blob that a mount without `from` considers as its source, at most.
/// A caller denied by this many falls back to an upload, which the spec allows: it bounds
/// what one request can make the registry check.
const MOUNT_CANDIDATES: u32 = 100;

/// What unlinking a blob from a repository (`DELETE /v2/<name>/blobs/<digest>`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobUnlink {
    /// The link is gone; garbage collection reclaims the bytes once no repository links them.
    Unlinked,
    /// The repository does not hold the blob (never did, or it was unlinked already).
    NotLinked,
    /// An image of the repository references the blob: it stays.
    Referenced,
}

/// A blob a caller may download: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDownload {
    pub digest: Digest,
    pub size: u64,
}

impl Registry {
    /// How each digest stands in the repository (`None`: not uploaded to it).
    pub async fn layer_availability(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digests: &[Digest],
    ) -> Result<Vec<Option<RepositoryBlob>>> {
        let repo = self
            .repository(who, r, "ecr:BatchCheckLayerAvailability")
            .await?;
        let mut out = Vec::with_capacity(digests.len());
        for d in digests {
            out.push(self.storage.meta.repository_blob(repo.id, d).await?);
        }
        Ok(out)
    }

    /// Checks that a layer may be downloaded from the repository: uploaded to it and referenced
    /// by one of its images (GetDownloadUrlForLayer's rules).
    pub async fn downloadable_layer(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digest: &Digest,
    ) -> Result<BlobDownload> {
        let repo = self
            .repository(who, r, "ecr:GetDownloadUrlForLayer")
            .await?;
        match self.storage.meta.repository_blob(repo.id, digest).await? {
            None => Err(RegistryError::LayersNotFound {
                registry_id: repo.registry_id,
                name: repo.name,
                digests: vec![digest.clone()],
            }),
            // A layer only archived images use is pulled no more than they are.
            Some(b) if !b.referenced || b.archived_only => Err(RegistryError::LayerInaccessible {
                registry_id: repo.registry_id,
                name: repo.name,
                digest: digest.clone(),
            }),
            Some(b) => Ok(BlobDownload {
                digest: digest.clone(),
                size: b.size,
            }),
        }
    }

    /// Opens a blob the caller has already been cleared to read. With verified reads, a
    /// whole-blob read is checked against the digest as it streams (see `verify.rs`).
    pub async fn open_blob(&self, digest: &Digest, range: Option<BlobRange>) -> Result<BlobReader> {
        let mut reader = self.storage.blobs.open(digest, range).await?;
        if range.is_none() && self.verify_reads {
            reader.body = Box::pin(crate::verify::Verified::new(reader.body, digest.clone()));
        }
        Ok(reader)
    }
}

impl Registry {
    /// A presigned URL from which a client may GET a blob it has already been cleared to read,
    /// valid for `expires_in`; `None` when downloads go through berth (redirects are off, or
    /// the blob store cannot presign).
    pub async fn blob_download_url(
        &self,
        digest: &Digest,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>> {
        if !self.blob_redirect {
            return Ok(None);
        }
        Ok(self.storage.blobs.download_url(digest, expires_in).await?)
    }

    /// A local file holding a blob the caller has already been cleared to read, for serving
    /// it zero-copy; `None` when the backend has no local files or reads are verified (a
    /// verified read must pass through the hasher).
    pub async fn blob_file(&self, digest: &Digest) -> Result<Option<std::fs::File>> {
        if self.verify_reads {
            return Ok(None);
        }
        Ok(self.storage.blobs.open_file(digest).await?)
    }
}

impl Registry {
    /// A blob as repository `r` sees it, or `None` when it was never uploaded to or mounted
    /// into it.
    pub async fn blob_in_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digest: &Digest,
    ) -> Result<Option<RepositoryBlob>> {
        let repo = self
            .repository(who, r, "ecr:BatchCheckLayerAvailability")
            .await?;
        Ok(self.storage.meta.repository_blob(repo.id, digest).await?)
    }

    /// Makes a blob of repository `from` available in `to` without uploading it again.
    /// Answers false (and changes nothing) when `from` does not exist or lacks the blob, so
    /// that the caller can fall back to a normal upload.
    pub async fn mount_blob(
        &self,
        who: &Principal,
        from: &RepositoryRef,
        to: &RepositoryRef,
        digest: &Digest,
    ) -> Result<bool> {
        let target = self.repository(who, to, "ecr:InitiateLayerUpload").await?;
        if !self
            .blob_mounting(target.service, &target.registry_id)
            .await?
        {
            return Ok(false);
        }
        let source = match self
            .repository(who, from, "ecr:GetDownloadUrlForLayer")
            .await
        {
            Ok(s) => s,
            Err(RegistryError::RepositoryNotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if self
            .storage
            .meta
            .repository_blob(source.id, digest)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let _linking = self.storage.gc_fence.shared().await?;
        self.storage
            .meta
            .link_blob(target.id, digest, crate::now_millis())
            .await?;
        Ok(true)
    }
}

impl Registry {
    /// Mounts a blob into `to` from whichever repository of the same registry holds it and
    /// may be read by `who` (a `/v2` mount without `from`, which the OCI spec lets a registry
    /// honour). "May be read" is the `from` mount's rule: `ecr:GetDownloadUrlForLayer` on the
    /// source, so a mount never grants bytes the caller could not already download.
    /// Repositories that deny the caller are skipped, not reported: the caller falls back to
    /// an upload and learns nothing about them. Answers false when no such repository exists.
    ///
    /// The candidates are the repositories that link the blob (one index seek), in name
    /// order, at most [`MOUNT_CANDIDATES`].
    /// With the registry's BLOB_MOUNTING account setting DISABLED, nothing is mounted (the
    /// caller uploads), as ECR does; a blob the target already links is still answered.
    pub async fn mount_blob_from_any(
        &self,
        who: &Principal,
        to: &RepositoryRef,
        digest: &Digest,
    ) -> Result<bool> {
        let target = self.repository(who, to, "ecr:InitiateLayerUpload").await?;
        let meta = &self.storage.meta;
        if meta.repository_blob(target.id, digest).await?.is_some() {
            return Ok(true);
        }
        if !self
            .blob_mounting(target.service, &target.registry_id)
            .await?
        {
            return Ok(false);
        }
        let holders = meta
            .repositories_holding(
                target.service,
                &target.registry_id,
                digest,
                MOUNT_CANDIDATES,
            )
            .await?;
        for name in holders {
            let source = RepositoryRef {
                service: target.service,
                registry_id: Some(target.registry_id.clone()),
                name,
            };
            // A repository the caller may not read is skipped, as one deleted meanwhile is.
            match self
                .repository(who, &source, "ecr:GetDownloadUrlForLayer")
                .await
            {
                Ok(_) => {}
                Err(
                    RegistryError::AccessDenied { .. } | RegistryError::RepositoryNotFound { .. },
                ) => {
                    continue;
                }
                Err(e) => return Err(e),
            }
            let _linking = self.storage.gc_fence.shared().await?;
            return match meta.link_blob(target.id, digest, crate::now_millis()).await {
                Ok(()) => Ok(true),
                // Unlinked everywhere meanwhile and collected: nothing left to mount.
                Err(storage::StorageError::NotFound) => Ok(false),
                Err(e) => Err(e.into()),
            };
        }
        Ok(false)
    }

    /// Unlinks a blob from a repository unless an image of it references the blob; the bytes
    /// stay for other repositories and garbage collection reclaims them once none links them.
    /// Authorised as `ecr:BatchDeleteImage`, the action that removes content from a repository.
    pub async fn unlink_blob(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digest: &Digest,
    ) -> Result<BlobUnlink> {
        let repo = self.repository(who, r, "ecr:BatchDeleteImage").await?;
        let meta = &self.storage.meta;
        match meta.repository_blob(repo.id, digest).await? {
            None => return Ok(BlobUnlink::NotLinked),
            Some(b) if b.referenced => return Ok(BlobUnlink::Referenced),
            Some(_) => {}
        }
        // Conditional, as GC's unlink is: an image put meanwhile keeps its blob.
        if meta.unlink_if_unreferenced(repo.id, digest).await? {
            return Ok(BlobUnlink::Unlinked);
        }
        Ok(match meta.repository_blob(repo.id, digest).await? {
            Some(_) => BlobUnlink::Referenced,
            None => BlobUnlink::NotLinked,
        })
    }
}
