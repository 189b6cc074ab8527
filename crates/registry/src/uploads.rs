//! InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload: the upload session, whose state
//! (bytes received, part sizes, the saved sha256 state) lives in the metadata store so that
//! any node, or this one after a restart, takes the next part.

use std::sync::Arc;

use bytes::Bytes;
use model::{Digest, DigestAlgorithm, ResumableSha256, UploadId};
use storage::{ByteStream, MetaStore, RepositoryRecord, StorageError, UploadRecord};

use crate::{Principal, Registry, RegistryError, RepositoryRef, Result, now_millis};

/// The bytes of one part: buffered (an ECR part, decoded from base64) or streamed (a `/v2`
/// PATCH body of any size).
pub enum PartData {
    Buffered(Bytes),
    Stream(ByteStream),
}

/// How strict completion is. The ECR API and `/v2` differ: ECR requires parts of at least
/// 5 MiB but the last, refuses an empty upload and reports a blob the repository already holds
/// as `LayerAlreadyExistsException`; the OCI spec allows any chunk size, empty blobs, and
/// re-pushing a blob.
#[derive(Debug, Clone, Copy)]
pub struct CompletionRules {
    pub enforce_min_part_size: bool,
    pub allow_empty: bool,
    pub existing_is_success: bool,
    /// Whether a sha512 digest is accepted (OCI) or only sha256 (ECR).
    pub allow_sha512: bool,
}

impl CompletionRules {
    pub const ECR: Self = Self {
        enforce_min_part_size: true,
        allow_empty: false,
        existing_is_success: false,
        allow_sha512: false,
    };
    pub const OCI: Self = Self {
        enforce_min_part_size: false,
        allow_empty: true,
        existing_is_success: true,
        allow_sha512: true,
    };
}

/// A buffered part goes to the blob store in slices of this size.
const BUFFERED_SLICE: usize = 1024 * 1024;

/// Where an upload stands after a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    pub upload_id: UploadId,
    /// Bytes received so far; the last byte received is `received - 1`.
    pub received: u64,
}

/// How long a claim on an upload lasts unless renewed. Its holder renews it every third of
/// that while its part streams, so a part may take as long as it needs, and the upload of a
/// node that died is free again within this time. Nodes' clocks must agree to well within it.
const CLAIM_MILLIS: i64 = 15_000;

/// How long a part waits for a claim to be released before it is refused.
const CLAIM_GRACE_MILLIS: u64 = 250;

/// The upload a part is being written to, claimed in the metadata store: the staged bytes of
/// an upload are overwritten from a part's offset on, so two racing parts must not both write,
/// on one node or on two. The second is refused at once, as a part that lost the race is.
struct PartClaim {
    meta: Arc<dyn MetaStore>,
    id: UploadId,
    token: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl PartClaim {
    async fn take(
        meta: &Arc<dyn MetaStore>,
        id: UploadId,
    ) -> std::result::Result<Self, StorageError> {
        let token = UploadId::new_random().to_string();
        // A part that ended without being recorded (refused, or its client gone) releases
        // its claim a moment after its answer, so a claim held is given that moment: a part
        // really being written still refuses this one, as it holds its claim much longer.
        let mut waited = 0;
        loop {
            let now = now_millis();
            match meta.claim_upload(id, &token, now, now + CLAIM_MILLIS).await {
                Err(StorageError::Conflict(_)) if waited < CLAIM_GRACE_MILLIS => {
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                    waited += 25;
                }
                other => break other?,
            }
        }
        let renewal = tokio::spawn({
            let (meta, token) = (meta.clone(), token.clone());
            async move {
                let every = std::time::Duration::from_millis(CLAIM_MILLIS as u64 / 3);
                loop {
                    tokio::time::sleep(every).await;
                    let now = now_millis();
                    if let Err(e) = meta.claim_upload(id, &token, now, now + CLAIM_MILLIS).await {
                        // The part goes on; record_part still refuses it if another part
                        // was recorded meanwhile.
                        tracing::warn!(upload = %id, error = %e, "cannot renew the upload's claim");
                    }
                }
            }
        });
        Ok(Self {
            meta: meta.clone(),
            id,
            token,
            renewal,
        })
    }
}

impl Drop for PartClaim {
    fn drop(&mut self) {
        self.renewal.abort();
        let (meta, id, token) = (self.meta.clone(), self.id, std::mem::take(&mut self.token));
        // Released at once so that the next part need not wait for the claim to expire; if
        // the release is lost, it expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = meta.release_upload(id, &token).await {
                    tracing::warn!(upload = %id, error = %e, "cannot release the upload's claim");
                }
            });
        }
    }
}

impl Registry {
    /// Starts an upload session in a repository; answers its id and the part size to use.
    pub async fn initiate_upload(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<(UploadId, u64)> {
        let repo = self.repository(who, r, "ecr:InitiateLayerUpload").await?;
        let cap = self.limits.max_open_uploads_per_repository;
        if self.storage.meta.count_uploads(repo.id).await? >= cap {
            return Err(RegistryError::LimitExceeded(format!(
                "The repository with name '{}' in registry with id '{}' already has the maximum number of open uploads ({cap})",
                repo.name, repo.registry_id
            )));
        }
        let now = now_millis();
        let id = UploadId::new_random();
        self.storage
            .meta
            .create_upload(UploadRecord {
                id,
                repository: repo.id,
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
        Ok((id, self.limits.advertised_part_size))
    }

    /// The upload `id` of repository `repo`, or `UploadNotFound`.
    async fn open_upload(&self, repo: &RepositoryRecord, id: UploadId) -> Result<UploadRecord> {
        match self.storage.meta.get_upload(id).await? {
            Some(u)
                if u.repository == repo.id
                    && now_millis() - u.updated_at < self.limits.upload_expiry_millis =>
            {
                Ok(u)
            }
            _ => Err(RegistryError::UploadNotFound {
                registry_id: repo.registry_id.clone(),
                name: repo.name.clone(),
                upload_id: id.to_string(),
            }),
        }
    }

    /// Where an upload stands (the `/v2` upload status).
    pub async fn upload_progress(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: UploadId,
    ) -> Result<UploadProgress> {
        let repo = self.repository(who, r, "ecr:UploadLayerPart").await?;
        let u = self.open_upload(&repo, id).await?;
        Ok(UploadProgress {
            upload_id: id,
            received: u.received,
        })
    }

    /// Appends one part. `first`, when given, must be the byte after the last one received
    /// (`None` appends wherever the upload stands); `last`, when given, is the inclusive last
    /// byte and must match the data's length.
    pub async fn upload_part(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: UploadId,
        first: Option<u64>,
        last: Option<u64>,
        data: PartData,
    ) -> Result<UploadProgress> {
        let repo = self.repository(who, r, "ecr:UploadLayerPart").await?;
        let upload = self.open_upload(&repo, id).await?;
        let first = first.unwrap_or(upload.received);
        let part_error = |received: u64, reason: String| RegistryError::InvalidLayerPart {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            upload_id: id,
            last_valid_byte_received: received.checked_sub(1),
            reason,
        };
        if first != upload.received {
            return Err(part_error(
                upload.received,
                format!(
                    "The part's first byte {first} is not the byte after the last byte received ({})",
                    upload.received as i128 - 1
                ),
            ));
        }
        let expected_len = match (last, &data) {
            (Some(last), _) if last < first => {
                return Err(part_error(
                    upload.received,
                    format!("The part's last byte {last} is before its first byte {first}"),
                ));
            }
            (Some(last), PartData::Buffered(b)) if last - first + 1 != b.len() as u64 => {
                return Err(part_error(
                    upload.received,
                    format!(
                        "The part's byte range {first}-{last} does not match its length {}",
                        b.len()
                    ),
                ));
            }
            (Some(last), _) => Some(last - first + 1),
            (None, PartData::Buffered(b)) => Some(b.len() as u64),
            (None, PartData::Stream(_)) => None,
        };
        if let (Some(len), PartData::Buffered(_)) = (expected_len, &data)
            && len > self.limits.max_part_size
        {
            return Err(part_error(
                upload.received,
                format!(
                    "The part size {len} exceeds the maximum part size {}",
                    self.limits.max_part_size
                ),
            ));
        }
        if upload.part_count >= self.limits.max_parts_per_upload {
            return Err(RegistryError::LimitExceeded(format!(
                "The upload with id '{id}' has reached the maximum number of layer parts ({})",
                self.limits.max_parts_per_upload
            )));
        }
        let max_layer = self.limits.max_layer_size;
        if expected_len.is_some_and(|len| first + len > max_layer) {
            return Err(RegistryError::LimitExceeded(format!(
                "The layer would exceed the maximum layer size of {max_layer} bytes"
            )));
        }
        let _claim = match PartClaim::take(&self.storage.meta, id).await {
            Ok(claim) => claim,
            Err(StorageError::Conflict(_)) => {
                return Err(part_error(
                    upload.received,
                    "Another part of this upload is being written".into(),
                ));
            }
            Err(StorageError::NotFound) => {
                return Err(RegistryError::UploadNotFound {
                    registry_id: repo.registry_id.clone(),
                    name: repo.name.clone(),
                    upload_id: id.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };

        let mut hasher = ResumableSha256::restore(&upload.hash_state).ok_or_else(|| {
            RegistryError::Storage(StorageError::Other("corrupt upload hash state".into()))
        })?;
        let stream: ByteStream = match data {
            // In slices (no copy), so that the store hashes one while it writes the previous.
            PartData::Buffered(b) => Box::pin(futures_util::stream::iter(
                (0..b.len())
                    .step_by(BUFFERED_SLICE)
                    .map(move |at| Ok(b.slice(at..b.len().min(at + BUFFERED_SLICE)))),
            )),
            PartData::Stream(s) => s,
        };
        let (written, staging) = match self
            .storage
            .blobs
            .write_part(id, first, &upload.staging, stream, &mut |chunk| {
                hasher.update(chunk)
            })
            .await
        {
            Ok(done) => done,
            Err(e) => return Err(self.part_failed(&repo, &upload, e).await),
        };
        self.failpoint("upload_part.after_write");
        if expected_len.is_some_and(|len| len != written) {
            return Err(part_error(
                upload.received,
                format!(
                    "The part's byte range says {} bytes but {written} arrived",
                    expected_len.unwrap_or(0)
                ),
            ));
        }
        if first + written > max_layer {
            return Err(RegistryError::LimitExceeded(format!(
                "The layer would exceed the maximum layer size of {max_layer} bytes"
            )));
        }
        if written == 0 {
            // An empty part changes nothing; it is not counted as a part.
            return Ok(UploadProgress {
                upload_id: id,
                received: upload.received,
            });
        }
        let updated = UploadRecord {
            updated_at: now_millis(),
            received: upload.received + written,
            part_count: upload.part_count + 1,
            last_part_size: written,
            short_part_seen: upload.short_part_seen
                || (upload.part_count > 0 && upload.last_part_size < self.limits.min_part_size),
            hash_state: hasher.save(),
            staging,
            ..upload.clone()
        };
        match self
            .storage
            .meta
            .record_part(&updated, upload.received)
            .await
        {
            Ok(()) => Ok(UploadProgress {
                upload_id: id,
                received: updated.received,
            }),
            Err(StorageError::NotFound) => {
                // Cancelled while this part was written: what it staged goes too.
                let _ = self.storage.blobs.delete_upload(id, &updated.staging).await;
                Err(RegistryError::UploadNotFound {
                    registry_id: repo.registry_id.clone(),
                    name: repo.name.clone(),
                    upload_id: id.to_string(),
                })
            }
            Err(StorageError::Conflict(_)) => {
                let now = self
                    .storage
                    .meta
                    .get_upload(id)
                    .await?
                    .map_or(0, |u| u.received);
                Err(part_error(
                    now,
                    "Another part of this upload was received first".into(),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The error for a part whose bytes could not be staged. An upload cancelled (or expired
    /// and collected) between the part's start and its first write has lost its staging file,
    /// so the write fails; that is `UploadNotFound`, as for any part of a cancelled upload, not
    /// a storage failure. The file the part created is removed again.
    async fn part_failed(
        &self,
        repo: &RepositoryRecord,
        upload: &UploadRecord,
        e: StorageError,
    ) -> RegistryError {
        let id = upload.id;
        match self.storage.meta.get_upload(id).await {
            Ok(None) => {
                let _ = self.storage.blobs.delete_upload(id, &upload.staging).await;
                RegistryError::UploadNotFound {
                    registry_id: repo.registry_id.clone(),
                    name: repo.name.clone(),
                    upload_id: id.to_string(),
                }
            }
            _ => e.into(),
        }
    }

    /// Finishes an upload: verifies the digest the client names against the one computed while
    /// the parts arrived, and makes the blob available in the repository.
    pub async fn complete_upload(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: UploadId,
        digest: &str,
        rules: CompletionRules,
    ) -> Result<Digest> {
        let repo = self.repository(who, r, "ecr:CompleteLayerUpload").await?;
        let upload = self.open_upload(&repo, id).await?;
        if upload.received == 0 && !rules.allow_empty {
            return Err(RegistryError::EmptyUpload { upload_id: id });
        }
        if rules.enforce_min_part_size && upload.short_part_seen {
            return Err(RegistryError::LayerPartTooSmall);
        }
        let hasher = ResumableSha256::restore(&upload.hash_state).ok_or_else(|| {
            RegistryError::Storage(StorageError::Other("corrupt upload hash state".into()))
        })?;
        let sha256 = hasher.finish();
        let invalid = |computed: Digest| RegistryError::InvalidLayer {
            given: digest.to_owned(),
            computed,
        };
        let given = Digest::parse(digest).map_err(|_| invalid(sha256.clone()))?;
        let computed = match given.algorithm() {
            DigestAlgorithm::Sha256 => sha256,
            DigestAlgorithm::Sha512 if rules.allow_sha512 => self.staged_sha512(&upload).await?,
            DigestAlgorithm::Sha512 => return Err(invalid(sha256)),
        };
        if given != computed {
            return Err(invalid(computed));
        }
        let existing = self
            .storage
            .meta
            .repository_blob(repo.id, &computed)
            .await?;
        if existing.is_some() && rules.existing_is_success {
            self.storage.meta.delete_upload(id).await?;
            self.storage
                .blobs
                .delete_upload(id, &upload.staging)
                .await?;
            return Ok(computed);
        }
        if existing.is_some() {
            self.storage.meta.delete_upload(id).await?;
            self.storage
                .blobs
                .delete_upload(id, &upload.staging)
                .await?;
            return Err(RegistryError::LayerAlreadyExists {
                registry_id: repo.registry_id,
                name: repo.name,
                digest: computed,
            });
        }
        // Blob first, then metadata: a crash in between leaves an unreferenced file for GC,
        // never a metadata row pointing at nothing. GC waits for both steps.
        let _completing = self.storage.gc_fence.shared().await?;
        self.storage
            .blobs
            .commit_upload(id, &upload.staging, upload.received, &computed)
            .await?;
        self.failpoint("complete_upload.after_commit");
        self.storage
            .meta
            .complete_upload(id, repo.id, &computed, upload.received, now_millis())
            .await
            .map_err(|e| match e {
                StorageError::NotFound => RegistryError::UploadNotFound {
                    registry_id: repo.registry_id.clone(),
                    name: repo.name.clone(),
                    upload_id: id.to_string(),
                },
                other => other.into(),
            })?;
        Ok(computed)
    }

    /// sha512 of an upload's staged bytes, read back: only sha256 is computed as parts arrive.
    async fn staged_sha512(&self, u: &UploadRecord) -> Result<Digest> {
        let staged = self
            .storage
            .blobs
            .read_upload(u.id, &u.staging, u.received)
            .await?;
        Ok(crate::verify::digest_of(staged, DigestAlgorithm::Sha512).await?)
    }

    /// Abandons an upload and its staged bytes.
    pub async fn cancel_upload(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: UploadId,
    ) -> Result<()> {
        let repo = self.repository(who, r, "ecr:UploadLayerPart").await?;
        let upload = self.open_upload(&repo, id).await?;
        self.storage.meta.delete_upload(id).await?;
        self.storage
            .blobs
            .delete_upload(id, &upload.staging)
            .await?;
        Ok(())
    }
}
