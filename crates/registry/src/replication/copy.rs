//! Carrying out replication rows: read the source image (and an index's children), then write
//! it to the destination, a registry of this deployment or a remote one, and record the
//! outcome with backoff between failed attempts.

use super::RegionLookup;
use futures_util::StreamExt;
use model::{Digest, ImageTag, RepositoryName};
use storage::{
    ImageRecord, ImageReferences, ReplicationDestination, ReplicationTask, StorageError, TagWrite,
};

use crate::creation_templates::AppliedFor;
use crate::repositories::CreateRepository;
use crate::{Principal, Registry, RegistryError, RepositoryRef, Service, UpstreamError, manifest};

/// Children of an index are followed this deep (an index of indexes is rare; deeper is refused
/// as the pull-through cache refuses it).
const MAX_INDEX_DEPTH: usize = 4;
/// The longest wait between two attempts of a row.
const MAX_BACKOFF_MILLIS: u64 = 3_600_000;
/// Destinations (repository and destination pairs) copied to at once in a round.
const PARALLEL_DESTINATIONS: usize = 4;

/// Why a row could not be carried out: the failure code DescribeImageReplicationStatus
/// reports once the row is FAILED, and whether another attempt may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationFailure {
    pub code: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl ReplicationFailure {
    fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retryable: true,
        }
    }
}

impl From<RegistryError> for ReplicationFailure {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::AccessDenied { .. } => {
                Self::permanent("PERMISSION_DENIED", e.to_string())
            }
            RegistryError::ImageTagAlreadyExists { .. } => {
                Self::permanent("DESTINATION_TAG_IMMUTABLE", e.to_string())
            }
            RegistryError::LimitExceeded(_) | RegistryError::TooManyTags { .. } => {
                Self::permanent("DESTINATION_LIMIT_EXCEEDED", e.to_string())
            }
            other => Self::transient("INTERNAL_ERROR", other.to_string()),
        }
    }
}

impl From<StorageError> for ReplicationFailure {
    fn from(e: StorageError) -> Self {
        RegistryError::from(e).into()
    }
}

impl From<UpstreamError> for ReplicationFailure {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::SecretNotFound(m) | UpstreamError::SecretUnusable(m) => {
                Self::permanent("DESTINATION_CREDENTIALS_UNUSABLE", m)
            }
            UpstreamError::Unauthorized(m) => Self::transient("DESTINATION_ACCESS_DENIED", m),
            UpstreamError::NotFound(m) => Self::transient("DESTINATION_REPOSITORY_NOT_FOUND", m),
            UpstreamError::TooManyRequests(m) | UpstreamError::Unavailable(m) => {
                Self::transient("DESTINATION_UNAVAILABLE", m)
            }
        }
    }
}

/// How failed rows are retried.
#[derive(Debug, Clone, Copy)]
pub struct ReplicationRetry {
    /// Attempts of a row before it is FAILED (a permanent failure ends it at once).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; each further one doubles it (at most an hour).
    pub base_millis: u64,
}

/// One image to write: its record and what it references.
struct Replica {
    image: ImageRecord,
    refs: ImageReferences,
}

/// The service principal replication acts as in the destination registry: ECR's
/// service-linked role of the source account, which a destination account's registry policy
/// names (by the account's root) to allow `ecr:ReplicateImage` and `ecr:CreateRepository`.
fn replication_principal(source_account: &str) -> Principal {
    Principal {
        access_key_id: String::new(),
        arn: format!(
            "arn:aws:iam::{source_account}:role/aws-service-role/replication.ecr.amazonaws.com/AWSServiceRoleForECRReplication"
        ),
        account_id: source_account.to_owned(),
    }
}

impl Registry {
    /// Whether some replication row is due (a read, before the job takes its lease).
    pub async fn replication_due(&self) -> crate::Result<bool> {
        Ok(!self
            .storage
            .meta
            .due_replications(crate::now_millis(), 1)
            .await?
            .is_empty())
    }

    /// Carries out the due replication rows (at most `limit`), oldest first; answers how many
    /// it took. Rows of one repository and destination run one after the other, in push
    /// order, so that a tag moved by two pushes ends where the later one put it; rows of
    /// different ones run side by side, [`PARALLEL_DESTINATIONS`] at a time, so that a large
    /// image on its way to a slow remote holds no other destination back.
    ///
    /// `regions` finds the registry of a region (`None`: the home region, whose stored keys
    /// name no region): each row runs in its source's region and writes into its
    /// destination's.
    pub async fn replicate_due(
        &self,
        limit: u32,
        retry: ReplicationRetry,
        regions: RegionLookup<'_>,
    ) -> crate::Result<u64> {
        let due = self
            .storage
            .meta
            .due_replications(crate::now_millis(), limit)
            .await?;
        let taken = due.len() as u64;
        let mut groups: Vec<Vec<ReplicationTask>> = Vec::new();
        for task in due {
            match groups.iter_mut().find(|g| {
                g[0].repository_id == task.repository_id && g[0].destination == task.destination
            }) {
                Some(g) => g.push(task),
                None => groups.push(vec![task]),
            }
        }
        let results: Vec<crate::Result<()>> = futures_util::stream::iter(groups)
            .map(|group| async move {
                for mut task in group {
                    let (account, region) = model::region::split_regional_key(&task.registry_id);
                    let (account, region) = (account.to_owned(), region.map(str::to_owned));
                    task.registry_id = account;
                    match regions(region.as_deref()) {
                        Some(source) => source.replicate_one(&task, retry, regions).await?,
                        // A region no longer served keeps its rows until it is served again.
                        None => tracing::debug!(
                            region = ?region, "replication row of a region not served is left"
                        ),
                    }
                }
                Ok(())
            })
            .buffer_unordered(PARALLEL_DESTINATIONS)
            .collect()
            .await;
        results.into_iter().collect::<crate::Result<Vec<()>>>()?;
        Ok(taken)
    }

    /// ECR's "ECR Replication Action" about a row that ended (`result` SUCCESS or FAILED), in
    /// the destination's account and region, with the tag it carried; `None` if events are
    /// not recorded. The source side writes it with the row's outcome: it is the side that
    /// knows the copy was a replication (a remote destination sees only a `/v2` push).
    fn replication_event(
        &self,
        task: &ReplicationTask,
        result: &str,
    ) -> Option<storage::ImageEvent> {
        self.events.then(|| storage::ImageEvent {
            detail_type: "ECR Replication Action".to_owned(),
            action_type: "REPLICATE".to_owned(),
            service: Service::Private,
            registry_id: task.destination.registry_id.clone(),
            region: Some(task.destination.region.clone()),
            repository: task.repository.clone(),
            digest: Some(task.digest.clone()),
            manifest_media_type: None,
            artifact_media_type: None,
            detail: Some(
                serde_json::json!({
                    "result": result,
                    "source-account": task.registry_id,
                    "source-region": self.region,
                })
                .to_string(),
            ),
            at: self.now(),
        })
    }

    /// Carries out one row and records its outcome.
    async fn replicate_one(
        &self,
        task: &ReplicationTask,
        retry: ReplicationRetry,
        regions: RegionLookup<'_>,
    ) -> crate::Result<()> {
        let meta = &self.storage.meta;
        let outcome = self.replicate(task, regions).await;
        if outcome.is_ok() {
            // The copy is done and not yet recorded: a crash here repeats it on restart.
            self.failpoint("replication.after_copy");
        }
        let now = crate::now_millis();
        match outcome {
            Ok(tag) => {
                tracing::info!(
                    repository = %task.repository, digest = %task.digest,
                    region = %task.destination.region, registry = %task.destination.registry_id,
                    lag_ms = now - task.created_at, "image replicated"
                );
                let event = self.replication_event(task, "SUCCESS");
                let tag = tag.as_ref().map(ImageTag::as_str);
                meta.finish_replication(
                    task.id,
                    "COMPLETE",
                    None,
                    now,
                    event.as_ref().map(|e| (e, tag)),
                )
                .await?;
            }
            Err(f) => {
                let attempts = task.attempts + 1;
                tracing::warn!(
                    repository = %task.repository, digest = %task.digest,
                    region = %task.destination.region, registry = %task.destination.registry_id,
                    code = f.code, attempts, error = %f.message, "replication attempt failed"
                );
                if !f.retryable || attempts >= retry.max_attempts {
                    let event = self.replication_event(task, "FAILED");
                    let tag = task.tag.as_ref().map(ImageTag::as_str);
                    meta.finish_replication(
                        task.id,
                        "FAILED",
                        Some(f.code),
                        now,
                        event.as_ref().map(|e| (e, tag)),
                    )
                    .await?;
                } else {
                    let wait = retry
                        .base_millis
                        .saturating_mul(1u64 << (attempts - 1).min(40))
                        .min(MAX_BACKOFF_MILLIS);
                    meta.retry_replication(task.id, now + wait as i64, Some(f.code), now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Copies one row's image to its destination; answers the tag that went with it.
    async fn replicate(
        &self,
        task: &ReplicationTask,
        regions: RegionLookup<'_>,
    ) -> Result<Option<ImageTag>, ReplicationFailure> {
        let gone = || {
            ReplicationFailure::permanent(
                "SOURCE_IMAGE_NOT_FOUND",
                format!(
                    "the image {} of repository '{}' was deleted before it was replicated",
                    task.digest, task.repository
                ),
            )
        };
        let meta = &self.storage.meta;
        let repo = meta
            .get_repository(Service::Private, &task.registry_id, &task.repository)
            .await?
            .filter(|r| r.id == task.repository_id)
            .ok_or_else(gone)?;
        let replicas = self
            .replicas(repo.id, &task.digest, 0)
            .await?
            .ok_or_else(gone)?;
        // The tag goes along only while it still names this image: a later push that moved
        // it has its own row, which must not be overtaken by this one's retry.
        let tag = match &task.tag {
            Some(t) if meta.resolve_tag(repo.id, t).await?.as_ref() == Some(&task.digest) => {
                Some(t)
            }
            _ => None,
        };
        let dest = &task.destination;
        if let Some(remote) = self.replication_remote.as_ref().filter(|r| r.serves(dest)) {
            self.write_remote_replica(remote.as_ref(), dest, &task.repository, &replicas, tag)
                .await?;
            return Ok(tag.cloned());
        }
        let Some(target) = regions(Some(&dest.region)) else {
            return Err(ReplicationFailure::permanent(
                "DESTINATION_NOT_SERVED",
                format!("this deployment does not serve region '{}'", dest.region),
            ));
        };
        target
            .write_local_replica(&task.registry_id, dest, &task.repository, &replicas, tag)
            .await?;
        Ok(tag.cloned())
    }

    /// The image `digest` of `repo` with, before it, the children of an index (depth first);
    /// `None` if it or a child is gone.
    async fn replicas(
        &self,
        repo: storage::RepositoryId,
        digest: &Digest,
        depth: usize,
    ) -> Result<Option<Vec<Replica>>, ReplicationFailure> {
        let Some(image) = self.storage.meta.get_image(repo, digest).await? else {
            return Ok(None);
        };
        let parsed = manifest::parse(&image.manifest, Some(&image.media_type))
            .map_err(|e| ReplicationFailure::permanent("SOURCE_IMAGE_INVALID", e.to_string()))?;
        let mut out = Vec::new();
        for (child, _) in &parsed.children {
            if depth >= MAX_INDEX_DEPTH {
                return Err(ReplicationFailure::permanent(
                    "SOURCE_IMAGE_INVALID",
                    format!("the index nests manifests deeper than {MAX_INDEX_DEPTH} levels"),
                ));
            }
            match Box::pin(self.replicas(repo, child, depth + 1)).await? {
                Some(mut c) => out.append(&mut c),
                None => return Ok(None),
            }
        }
        out.push(Replica {
            refs: ImageReferences {
                blobs: parsed.blobs,
                children: parsed.children.into_iter().map(|(d, _)| d).collect(),
                blobs_may_follow: false,
            },
            image,
        });
        Ok(Some(out))
    }

    /// Writes `replicas` (children first) into repository `name` of the registry `dest` of
    /// this deployment, for the private registry of account `source`. The one place where
    /// replication writes into a local registry; `self` is the registry of `dest.region`.
    ///
    /// - Another account's registry policy must allow the source account
    ///   `ecr:ReplicateImage` (and `ecr:CreateRepository` for a repository it lacks).
    /// - A missing repository is created from the destination's REPLICATION creation
    ///   template, else with default settings (ECR copies no settings of the source).
    /// - Blobs the destination repository holds are not linked again; the blob store is the
    ///   deployment's, so a blob is never copied, only made available.
    /// - The tag is written under the destination's own mutability rules.
    async fn write_local_replica(
        &self,
        source: &str,
        dest: &ReplicationDestination,
        name: &RepositoryName,
        replicas: &[Replica],
        tag: Option<&ImageTag>,
    ) -> Result<(), ReplicationFailure> {
        debug_assert_eq!(dest.region, self.region);
        let who = replication_principal(source);
        let r = RepositoryRef::private(Some(dest.registry_id.clone()), name.clone());
        let resource = format!("repository/{name}");
        let existing = self
            .find_repository(Service::Private, &dest.registry_id, name)
            .await?;
        self.authorize(
            &who,
            Service::Private,
            &dest.registry_id,
            existing.as_ref(),
            &resource,
            "ecr:ReplicateImage",
        )
        .await?;
        let repo = match existing {
            Some(repo) => repo,
            None => self.create_replica_repository(&who, &r).await?,
        };
        let meta = &self.storage.meta;
        let now = self.now();
        let last = replicas.len() - 1;
        for (i, replica) in replicas.iter().enumerate() {
            for (blob, _) in &replica.refs.blobs {
                if meta.repository_blob(repo.id, blob).await?.is_none() {
                    meta.link_blob(repo.id, blob, now).await?;
                }
            }
            let tag = tag.filter(|_| i == last);
            let held = meta.get_image(repo.id, &replica.image.digest).await?;
            let current = match tag {
                Some(t) => meta.resolve_tag(repo.id, t).await?,
                None => None,
            };
            if held.is_some() && (tag.is_none() || current.as_ref() == Some(&replica.image.digest))
            {
                continue;
            }
            let write = match tag {
                Some(t) if crate::images::tag_is_immutable(&repo, t) => {
                    if current.is_some() {
                        return Err(RegistryError::ImageTagAlreadyExists {
                            name: repo.name.clone(),
                            tag: t.to_string(),
                        }
                        .into());
                    }
                    Some(TagWrite::IfUnchanged(t, None))
                }
                Some(t) => Some(TagWrite::Move(t)),
                None => None,
            };
            let image = ImageRecord {
                pushed_at: now,
                ..replica.image.clone()
            };
            meta.put_image_limited(
                repo.id,
                &image,
                &replica.refs,
                write,
                self.limits.max_tags_per_image,
            )
            .await?;
        }
        self.forget_repository(&repo);
        Ok(())
    }

    /// A destination repository replication creates: from a REPLICATION template, else with
    /// defaults; one created meanwhile by someone else is taken as it is.
    async fn create_replica_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> crate::Result<storage::RepositoryRecord> {
        let registry_id = r.registry_id.clone().unwrap_or_default();
        let created = match self
            .create_repository_from_template(who, r, AppliedFor::Replication)
            .await
        {
            Ok(Some(repo)) => return Ok(repo),
            Ok(None) => {
                let req = CreateRepository {
                    registry_id: Some(registry_id.clone()),
                    name: r.name.clone(),
                    tags: vec![],
                    image_tag_mutability: None,
                    mutability_exclusions: vec![],
                    scan_on_push: false,
                    encryption: None,
                };
                self.create_repository(who, req).await
            }
            Err(e) => Err(e),
        };
        match created {
            Err(RegistryError::RepositoryAlreadyExists { .. }) => self
                .find_repository(Service::Private, &registry_id, &r.name)
                .await?
                .ok_or_else(|| RegistryError::RepositoryNotFound {
                    registry_id,
                    name: r.name.to_string(),
                }),
            other => other,
        }
    }

    /// Pushes `replicas` (children first) to a remote registry over `/v2`: blobs it lacks,
    /// then each manifest by digest, the image last under its tag.
    async fn write_remote_replica(
        &self,
        remote: &dyn crate::ReplicationRemote,
        dest: &ReplicationDestination,
        name: &RepositoryName,
        replicas: &[Replica],
        tag: Option<&ImageTag>,
    ) -> Result<(), ReplicationFailure> {
        let repository = name.as_str();
        let last = replicas.len() - 1;
        for (i, replica) in replicas.iter().enumerate() {
            for (blob, _) in &replica.refs.blobs {
                if remote.has_blob(dest, repository, blob).await? {
                    continue;
                }
                let reader = self.open_blob(blob, None).await?;
                let source = StoredBlob {
                    registry: self,
                    digest: blob,
                };
                remote
                    .put_blob(dest, repository, blob, reader.size, reader.body, &source)
                    .await?;
            }
            let image = &replica.image;
            let reference = match tag.filter(|_| i == last) {
                Some(t) => t.to_string(),
                None => image.digest.to_string(),
            };
            remote
                .put_manifest(
                    dest,
                    repository,
                    &reference,
                    &image.media_type,
                    &image.manifest,
                )
                .await?;
        }
        Ok(())
    }
}

/// A blob of this deployment's store, read again for a remote that asked to have it resent.
struct StoredBlob<'a> {
    registry: &'a Registry,
    digest: &'a Digest,
}

#[async_trait::async_trait]
impl crate::BlobSource for StoredBlob<'_> {
    async fn reopen(&self) -> Result<storage::ByteStream, UpstreamError> {
        // A local failure here ends this attempt like a remote one would: retried later.
        match self.registry.open_blob(self.digest, None).await {
            Ok(reader) => Ok(reader.body),
            Err(e) => Err(UpstreamError::Unavailable(format!(
                "reading blob {} again to resend it: {e}",
                self.digest
            ))),
        }
    }
}
