//! Metadata: repositories, images, tags, per-repository blob links and upload sessions.
//!
//! Every method is one transaction. Rules (immutability, "not empty", limits) belong to the
//! registry; methods that must apply a decision atomically take the state the decision was
//! based on and answer `Conflict` if it changed meanwhile.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod region;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use async_trait::async_trait;
use model::{Digest, ImageTag, RepositoryName, Service, UploadId};

use crate::StorageError;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The database key of a repository. Rows of a deleted repository are never reused by a new
/// repository of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepositoryId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutabilityExclusion {
    pub filter_type: String,
    pub filter: String,
}

/// A repository and its settings, as CreateRepository stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRecord {
    pub id: RepositoryId,
    /// Which of the account's registries holds it (see [`Service::registry_key`] for how the
    /// two are kept apart in the database).
    pub service: Service,
    /// The account id (never the internal key of a public registry).
    pub registry_id: String,
    pub name: RepositoryName,
    pub created_at: Millis,
    pub image_tag_mutability: String,
    pub mutability_exclusions: Vec<MutabilityExclusion>,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags: Vec<ResourceTag>,
    /// The repository policy (SetRepositoryPolicy), as given.
    pub policy: Option<String>,
}

/// Rows of [`sql::REPOSITORIES_WITH_SETTING`] as the trait answers them; a name that no
/// longer parses is a corrupt row.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn repository_keys(
    rows: Vec<(String, String)>,
) -> Result<Vec<(Service, String, RepositoryName)>, StorageError> {
    rows.into_iter()
        .map(|(key, name)| {
            let (service, account) = Service::from_registry_key(&key);
            let name = RepositoryName::parse(&name).map_err(|_| {
                StorageError::Other(format!("corrupt repository name {name:?}").into())
            })?;
            Ok((service, account.to_owned(), name))
        })
        .collect()
}

/// A blob as one repository sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryBlob {
    pub size: u64,
    /// The media type a manifest of this repository gave the blob, once one did.
    pub media_type: Option<String>,
    /// Whether some image of the repository references it (only then is it downloadable).
    pub referenced: bool,
    /// Whether every image that references it is in the archive storage class: a pull of the
    /// layer is then refused like a pull of those images.
    pub archived_only: bool,
}

/// An image's storage class and its last recorded pull (the `image_states` table): what
/// UpdateImageStorageClass, lifecycle transitions and pulls change, apart from the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageState {
    /// In the archive storage class (ARCHIVED): listed, never pulled.
    pub archived: bool,
    /// When it was last archived (kept after a restore, as ECR's `lastArchivedAt`).
    pub last_archived_at: Option<Millis>,
    /// When its last restore completes: ACTIVATING before, ACTIVE from then on.
    pub last_activated_at: Option<Millis>,
    pub last_pulled_at: Option<Millis>,
}

/// ECR's `imageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    Active,
    Archived,
    Activating,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Active => "ACTIVE",
            ImageStatus::Archived => "ARCHIVED",
            ImageStatus::Activating => "ACTIVATING",
        }
    }
}

impl ImageState {
    /// The status at `now`: a restore in progress until its completion time.
    pub fn status(&self, now: Millis) -> ImageStatus {
        if self.archived {
            ImageStatus::Archived
        } else if self.last_activated_at.is_some_and(|t| t > now) {
            ImageStatus::Activating
        } else {
            ImageStatus::Active
        }
    }
}

/// One stored manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub digest: Digest,
    pub manifest: Vec<u8>,
    pub media_type: String,
    pub artifact_media_type: Option<String>,
    pub subject: Option<Digest>,
    /// Config plus layers for an image; the largest child for an index.
    pub size: u64,
    pub pushed_at: Millis,
    /// Read with the image by [`MetaStore::get_image`] and [`MetaStore::image_by_tag`] (so a
    /// pull learns whether it may proceed in the same query); default elsewhere, and ignored
    /// by writes.
    pub state: ImageState,
}

/// The most repositories [`MetaStore::repositories_storage`] reads at once (each is a bound
/// parameter).
pub const MAX_STORAGE_READS: usize = 500;

/// How much a repository holds (see [`MetaStore::repository_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepositoryUsage {
    pub images: u64,
    pub bytes: u64,
}

/// Storage use as `/metrics` reports it: maintained figures (folded plus pending deltas, see
/// [`MetaStore::fold_usage`]), never a walk. A repository's bytes are those of the blobs it
/// links (layers and configs, each once, including layers not yet referenced by an image
/// until garbage collection unlinks them) plus those of its manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUsage {
    /// The repositories that use the most bytes, largest first.
    pub largest: Vec<RepositoryStorage>,
    /// Every registry that has a repository, in key order.
    pub registries: Vec<RegistryStorage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryStorage {
    pub service: Service,
    /// The account id.
    pub registry_id: String,
    pub name: RepositoryName,
    pub images: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryStorage {
    pub service: Service,
    /// The account id.
    pub registry_id: String,
    pub repositories: u64,
    pub images: u64,
    pub bytes: u64,
}

/// What an image points at, recorded with it so deletes and GC know what is in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageReferences {
    /// Blobs (config, layers) with the media type the manifest gives each.
    pub blobs: Vec<(Digest, String)>,
    /// Child manifests of an index.
    pub children: Vec<Digest>,
    /// Whether blobs not yet linked into the repository are accepted: a pull-through cache
    /// stores an upstream manifest at once and fetches its blobs on their first pull.
    pub blobs_may_follow: bool,
}

/// An image as DescribeImages reports it: everything but the manifest bytes, with its tags in
/// lexical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_media_type: Option<String>,
    pub subject: Option<Digest>,
    pub size: u64,
    pub pushed_at: Millis,
    pub tags: Vec<ImageTag>,
    /// Default as listed: the registry reads states for a page with
    /// [`MetaStore::image_states_between`].
    pub state: ImageState,
}

impl ImageSummary {
    pub fn new(image: ImageRecord, tags: Vec<ImageTag>) -> Self {
        Self {
            digest: image.digest,
            media_type: image.media_type,
            artifact_media_type: image.artifact_media_type,
            subject: image.subject,
            size: image.size,
            pushed_at: image.pushed_at,
            tags,
            state: image.state,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// How [`MetaStore::put_image`] writes its tag.
#[derive(Debug, Clone, Copy)]
pub enum TagWrite<'a> {
    /// Point the tag at the image whatever it points at now: a mutable tag, last writer wins.
    Move(&'a ImageTag),
    /// Only if the tag still points where the caller saw it (`None`: nowhere), else
    /// `Conflict`: the caller's immutability decision was based on that state.
    IfUnchanged(&'a ImageTag, Option<&'a Digest>),
}

/// The outcome of [`MetaStore::put_image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutImageOutcome {
    pub image_created: bool,
    pub tag_changed: bool,
}

/// An open upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: UploadId,
    pub repository: RepositoryId,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Bytes acknowledged so far; the next part starts here.
    pub received: u64,
    pub part_count: u32,
    pub last_part_size: u64,
    /// True once a part other than the latest was smaller than the minimum part size.
    pub short_part_seen: bool,
    /// The saved sha256 state after `received` bytes.
    pub hash_state: Vec<u8>,
    /// The blob store's own record of what it staged for the first `received` bytes (for an
    /// object store: its multipart upload and parts), opaque to everything else. Saved with
    /// each part, so that any node can take the next one. Empty for the filesystem store.
    pub staging: Vec<u8>,
}

/// What an event reports about an image, apart from its tag: the store writes one outbox row
/// per tag the change touched (one with no tag for an untagged image), in the transaction of
/// the change itself, so that an event exists if and only if its change was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// EventBridge's `detail-type`: "ECR Image Action", "ECR Replication Action" or
    /// "ECR Pull Through Cache Action".
    pub detail_type: String,
    /// `action-type`: "PUSH", "DELETE" or "REPLICATE"; empty for an event that has none (a
    /// pull-through cache action).
    pub action_type: String,
    pub service: Service,
    /// The account id.
    pub registry_id: String,
    /// The region of the event's registry when it is not that of the registry writing the
    /// event (a replication reports in its destination's region); `None`: the writer's. A
    /// region's view of the store folds it into `registry_id`'s key, so rows read back have
    /// `None`.
    pub region: Option<String>,
    pub repository: RepositoryName,
    /// `None` for an event about no particular image (a failed pull-through sync of a tag).
    pub digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    pub artifact_media_type: Option<String>,
    /// The other `detail` fields of the event, as a JSON object (`None` for an image action,
    /// whose fields are those above).
    pub detail: Option<String>,
    /// When the change was made (the event's `time`).
    pub at: Millis,
}

/// An outbox row waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: i64,
    pub event: ImageEvent,
    pub tag: Option<String>,
    /// Failed delivery rounds so far.
    pub attempts: u32,
    /// Names of the webhooks that already took it.
    pub delivered_to: Vec<String>,
}

/// Counts of the outbox, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventBacklog {
    /// Rows still to be delivered.
    pub pending: u64,
    /// Rows whose delivery was given up after the last retry.
    pub given_up: u64,
}

/// Where a replication rule copies images: a registry named by region and account id (ECR's
/// `ReplicationDestination`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicationDestination {
    pub region: String,
    pub registry_id: String,
}

/// The replication a push asks for: the store writes one outbox row per destination, in the
/// transaction of the push, when the push created the image or moved its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationWork {
    /// The source account.
    pub registry_id: String,
    pub repository: RepositoryName,
    pub destinations: Vec<ReplicationDestination>,
}

/// A replication outbox row that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationTask {
    pub id: i64,
    /// The source account (a private registry).
    pub registry_id: String,
    pub repository_id: RepositoryId,
    pub repository: RepositoryName,
    pub digest: Digest,
    /// The tag the push wrote, if any.
    pub tag: Option<ImageTag>,
    pub destination: ReplicationDestination,
    /// Failed attempts so far.
    pub attempts: u32,
    pub created_at: Millis,
}

/// One destination's replication status of an image (DescribeImageReplicationStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatusRecord {
    pub destination: ReplicationDestination,
    /// `IN_PROGRESS`, `COMPLETE` or `FAILED`.
    pub status: String,
    pub failure_code: Option<String>,
}

#[async_trait]
pub trait MetaStore: Send + Sync {
    // Repositories.
    /// Creates a repository; `Conflict` if the name exists in the registry.
    async fn create_repository(
        &self,
        repo: RepositoryRecord,
    ) -> Result<RepositoryRecord, StorageError> {
        self.create_repository_with_settings(repo, &[]).await
    }
    async fn get_repository(
        &self,
        service: Service,
        registry_id: &str,
        name: &RepositoryName,
    ) -> Result<Option<RepositoryRecord>, StorageError>;
    /// Repositories in name order, those after `after`, at most `limit`. Like the other paged
    /// listings (tags, image ids, images), a page costs its own rows plus one index seek to
    /// `after`, however many entries precede it.
    async fn list_repositories(
        &self,
        service: Service,
        registry_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RepositoryRecord>, StorageError>;
    /// Deletes a repository with its images, tags, blob links and uploads. With
    /// `only_if_empty`, answers `Conflict` if it holds an image.
    async fn delete_repository(
        &self,
        id: RepositoryId,
        only_if_empty: bool,
    ) -> Result<(), StorageError>;

    /// Sets or (with `None`) removes a repository's policy.
    async fn set_repository_policy(
        &self,
        id: RepositoryId,
        policy: Option<&str>,
    ) -> Result<(), StorageError>;
    /// Sets a repository's tag mutability with its exclusion filters (PutImageTagMutability);
    /// `NotFound` if the repository no longer exists.
    async fn set_image_tag_mutability(
        &self,
        id: RepositoryId,
        mutability: &str,
        exclusions: &[MutabilityExclusion],
    ) -> Result<(), StorageError>;
    /// Sets a repository's scan-on-push flag (PutImageScanningConfiguration); `NotFound` if
    /// the repository no longer exists.
    async fn set_scan_on_push(
        &self,
        id: RepositoryId,
        scan_on_push: bool,
    ) -> Result<(), StorageError>;
    async fn registry_policy(&self, registry_id: &str) -> Result<Option<String>, StorageError>;
    /// Sets or (with `None`) removes a registry's policy.
    async fn set_registry_policy(
        &self,
        registry_id: &str,
        policy: Option<&str>,
    ) -> Result<(), StorageError>;

    /// Creates a repository with its first settings (see
    /// [`MetaStore::put_repository_settings`]), in one transaction.
    async fn create_repository_with_settings(
        &self,
        repo: RepositoryRecord,
        settings: &[(&str, &[u8])],
    ) -> Result<RepositoryRecord, StorageError>;

    // Resource tags.
    /// Adds tags to a repository, or replaces the values of keys it has (which keep their
    /// place); new keys follow the others in the order given. `Conflict` (and no change) if
    /// the repository would then have more than `max` tags, counted in the same transaction;
    /// `NotFound` if it no longer exists. Answers the repository's tags after the change.
    async fn tag_repository(
        &self,
        repo: RepositoryId,
        tags: &[ResourceTag],
        max: usize,
    ) -> Result<Vec<ResourceTag>, StorageError>;
    /// Removes the named tags (keys it lacks are ignored), in one transaction; `NotFound` if
    /// the repository no longer exists.
    async fn untag_repository(
        &self,
        repo: RepositoryId,
        keys: &[String],
    ) -> Result<(), StorageError>;

    // Settings: small named values of a repository or registry (catalog data, and later
    // lifecycle policies, scanning configuration, account settings...).
    /// One setting of a repository.
    async fn repository_setting(
        &self,
        repo: RepositoryId,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError>;
    /// Sets (`Some`) or removes (`None`) settings of a repository, all in one transaction;
    /// `NotFound` if the repository no longer exists. Settings go with their repository.
    async fn put_repository_settings(
        &self,
        repo: RepositoryId,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError>;
    /// Every repository that has the setting `name`, as (service, account id, name), in
    /// registry then name order: the repositories a background job (lifecycle) visits.
    async fn repositories_with_setting(
        &self,
        name: &str,
    ) -> Result<Vec<(Service, String, RepositoryName)>, StorageError>;
    /// One setting of a registry.
    async fn registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError>;
    /// Sets (`Some`) or removes (`None`) settings of a registry, all in one transaction.
    async fn put_registry_settings(
        &self,
        service: Service,
        registry_id: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError>;
    /// Compare-and-swap of one registry setting: sets it to `new` (`None` removes it) only if
    /// it still holds `expected` (`None`: absent), and answers whether it did. Several nodes
    /// that read-modify-write one setting (a registry's creation templates, its pull-through
    /// cache rules) retry on `false` instead of overwriting each other.
    async fn swap_registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError>;

    // Blobs.
    async fn repository_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<RepositoryBlob>, StorageError>;
    /// Makes a blob the store already holds available in `repo` (a cross-repository mount);
    /// `NotFound` if no repository holds it.
    async fn link_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        now: Millis,
    ) -> Result<(), StorageError>;

    /// Names of the repositories of a registry that hold a blob, in name order, at most
    /// `limit` (a `/v2` mount without `from` picks its source among them).
    async fn repositories_holding(
        &self,
        service: Service,
        registry_id: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<RepositoryName>, StorageError>;

    // Uploads.
    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError>;
    async fn get_upload(&self, id: UploadId) -> Result<Option<UploadRecord>, StorageError>;
    /// Saves the state after a part, if the upload still has `expected_received` bytes;
    /// otherwise `Conflict` (another part won the race) or `NotFound`. Ends the upload's claim
    /// ([`MetaStore::claim_upload`]).
    async fn record_part(
        &self,
        updated: &UploadRecord,
        expected_received: u64,
    ) -> Result<(), StorageError>;
    /// Ends an upload and links the blob it produced into its repository. Answers whether
    /// the repository already had the blob.
    async fn complete_upload(
        &self,
        id: UploadId,
        repo: RepositoryId,
        digest: &Digest,
        size: u64,
        now: Millis,
    ) -> Result<bool, StorageError>;
    async fn delete_upload(&self, id: UploadId) -> Result<(), StorageError>;
    /// Open uploads of a repository.
    async fn count_uploads(&self, repo: RepositoryId) -> Result<u64, StorageError>;
    /// A repository's images, and the bytes of the distinct blobs they reference (a layer
    /// shared by two images counts once): what the web UI lists beside each repository.
    async fn repository_usage(&self, repo: RepositoryId) -> Result<RepositoryUsage, StorageError>;
    /// Claims an upload for writing a part until `until`, or renews the claim `token` holds;
    /// `Conflict` while another token's claim lasts, `NotFound` if there is no such upload.
    /// Nodes sharing the database thus write one part of an upload at a time.
    async fn claim_upload(
        &self,
        id: UploadId,
        token: &str,
        now: Millis,
        until: Millis,
    ) -> Result<(), StorageError>;
    /// Ends the claim `token` holds (nothing if it no longer holds it).
    async fn release_upload(&self, id: UploadId, token: &str) -> Result<(), StorageError>;

    // Background jobs.
    /// Takes the lease `name` for `holder` until `until` if it is free or expired at `now`, or
    /// renews it if `holder` has it; answers whether `holder` has it now.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StorageError>;
    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError>;

    // Garbage collection and checks.
    /// Uploads that received nothing since `idle_before`.
    async fn idle_uploads(&self, idle_before: Millis) -> Result<Vec<UploadId>, StorageError>;
    /// Blob links made before `linked_before` that no image of their repository references.
    async fn unreferenced_links(
        &self,
        linked_before: Millis,
    ) -> Result<Vec<(RepositoryId, Digest)>, StorageError>;
    /// Removes a blob link if, at this moment, no image of the repository references it.
    async fn unlink_if_unreferenced(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<bool, StorageError>;
    /// Blobs first stored before `created_before` that no repository links.
    async fn unlinked_blobs(
        &self,
        created_before: Millis,
    ) -> Result<Vec<(Digest, u64)>, StorageError>;
    /// Removes a blob's row if, at this moment, no repository links it.
    async fn delete_blob_if_unlinked(&self, digest: &Digest) -> Result<bool, StorageError>;
    /// Every blob the metadata knows, with its size.
    async fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, StorageError>;

    // Images and tags.
    async fn get_image(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<ImageRecord>, StorageError>;
    async fn resolve_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<Digest>, StorageError>;
    /// The image a tag names, in one lookup (a pull by tag does nothing else).
    async fn image_by_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<ImageRecord>, StorageError>;
    async fn image_tags(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageTag>, StorageError>;
    /// Stores an image (if new) with its references, and points `tag` at it. `tag_was` is the
    /// tag's target the caller saw; `Conflict` if it has changed since.
    async fn put_image(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
        refs: &ImageReferences,
        tag: Option<TagWrite<'_>>,
    ) -> Result<PutImageOutcome, StorageError> {
        self.put_image_limited(repo, image, refs, tag, usize::MAX)
            .await
    }
    /// [`MetaStore::put_image`], and `Conflict` if the tag would give the image more than
    /// `max_tags` tags, counted in the same transaction (racing pushes of one image count one
    /// after the other). `NotFound` if the repository was deleted meanwhile.
    async fn put_image_limited(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
        refs: &ImageReferences,
        tag: Option<TagWrite<'_>>,
        max_tags: usize,
    ) -> Result<PutImageOutcome, StorageError> {
        self.put_image_noting(repo, image, refs, tag, max_tags, None, None)
            .await
    }
    /// [`MetaStore::put_image_limited`], writing `event`'s outbox row (for the tag written,
    /// or with no tag) and `replication`'s rows (one per destination) in the same transaction
    /// if the image was created or the tag moved.
    #[allow(clippy::too_many_arguments)]
    async fn put_image_noting(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
        refs: &ImageReferences,
        tag: Option<TagWrite<'_>>,
        max_tags: usize,
        event: Option<&ImageEvent>,
        replication: Option<&ReplicationWork>,
    ) -> Result<PutImageOutcome, StorageError>;
    /// Digests of the indexes in the repository that list `digest` as a child.
    async fn parent_indexes(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<Digest>, StorageError>;
    /// Removes one tag; answers whether it existed.
    async fn delete_tag(&self, repo: RepositoryId, tag: &ImageTag) -> Result<bool, StorageError> {
        self.delete_tag_noting(repo, tag, None).await
    }
    /// [`MetaStore::delete_tag`], writing `event`'s outbox row for the tag (with the digest it
    /// pointed at) in the same transaction if it existed.
    async fn delete_tag_noting(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError>;
    /// Removes an image with all its tags and references; answers whether it existed.
    async fn delete_image(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        self.delete_image_noting(repo, digest, None).await
    }
    /// [`MetaStore::delete_image`], writing `event`'s outbox rows, one per tag the image had
    /// (one with no tag if it had none), in the same transaction if it existed.
    async fn delete_image_noting(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError>;
    /// Tags in lexical order after `after`, at most `limit`.
    async fn list_tags(
        &self,
        repo: RepositoryId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageTag>, StorageError>;
    /// Images whose `subject` is `digest`, in digest order.
    async fn list_referrers(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageRecord>, StorageError>;
    /// (digest, tag) pairs in (digest, tag) order after `after`: one per tag, plus one with no
    /// tag for each untagged image, as ListImages reports them. An untagged image's entry sorts
    /// as if its tag were empty; `status` keeps the entries of tagged or of untagged images.
    async fn list_image_ids(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<(Digest, Option<ImageTag>)>, StorageError>;
    /// Images in digest order after `after`, with their tags, those `status` keeps.
    async fn list_images(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageSummary>, StorageError>;
    // Image states: storage class and pull times.
    /// The states of the repository's images whose digests lie in `first..=last` (a page of a
    /// listing in digest order), in digest order; images without a state row are absent.
    async fn image_states_between(
        &self,
        repo: RepositoryId,
        first: &str,
        last: &str,
    ) -> Result<Vec<(Digest, ImageState)>, StorageError>;
    /// Moves images to the archive (`archive`, stamped `at`) or out of it (ACTIVE from
    /// `at`), in one transaction, each only if it is not already in that class. `digests[0]`
    /// is the image asked for: if it already was in the class (or no longer exists), nothing
    /// is written and the answer is false. The others (an index's children) follow it.
    async fn set_storage_class(
        &self,
        repo: RepositoryId,
        digests: &[Digest],
        archive: bool,
        at: Millis,
    ) -> Result<bool, StorageError>;
    /// Records pulls coalesced in memory, in one transaction: each image's last pull becomes
    /// the later of the stored one and the given one. Images deleted meanwhile are skipped.
    async fn record_pull_times(
        &self,
        pulls: &[(RepositoryId, Digest, Millis)],
    ) -> Result<(), StorageError>;

    // The event outbox.
    /// Writes one event's row on its own, for an event that reports no stored change (a
    /// failed pull-through sync).
    async fn record_event(&self, event: &ImageEvent, tag: Option<&str>)
    -> Result<(), StorageError>;
    /// Rows due for delivery at `now` (not given up), oldest first, at most `limit`.
    async fn due_events(&self, now: Millis, limit: u32) -> Result<Vec<EventRecord>, StorageError>;
    /// Removes a row every webhook took.
    async fn delete_event(&self, id: i64) -> Result<(), StorageError>;
    /// Records a failed delivery round: the webhooks that took it so far, when to try again,
    /// or (`give_up`) that it is no longer tried.
    async fn retry_event(
        &self,
        id: i64,
        delivered_to: &[String],
        next_attempt_at: Millis,
        give_up: bool,
    ) -> Result<(), StorageError>;
    /// How many rows wait, and how many were given up.
    async fn event_backlog(&self) -> Result<EventBacklog, StorageError>;

    // Storage use, maintained by triggers in the transaction of each change.
    /// Folds up to `batch` pending deltas into the repositories' figures, in one transaction;
    /// answers how many it folded (fewer than `batch`: none are left). Readings are the same
    /// before and after: a fold only keeps them cheap.
    async fn fold_usage(&self, batch: u32) -> Result<u64, StorageError>;
    /// The `largest` repositories by bytes, and every registry's totals.
    async fn storage_usage(&self, largest: u32) -> Result<StorageUsage, StorageError>;
    /// One repository's maintained figures (images, and bytes as [`StorageUsage`] counts them).
    async fn repository_storage(&self, repo: RepositoryId)
    -> Result<RepositoryUsage, StorageError>;
    /// [`Self::repository_storage`] of several repositories in one query (a page of the web
    /// UI's repository list), in no particular order; a repository that no longer exists is
    /// left out. At most [`MAX_STORAGE_READS`] ids.
    async fn repositories_storage(
        &self,
        repos: &[RepositoryId],
    ) -> Result<Vec<(RepositoryId, RepositoryUsage)>, StorageError>;

    // Replication work.
    /// IN_PROGRESS rows due at `now`, oldest first, at most `limit`.
    async fn due_replications(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ReplicationTask>, StorageError>;
    /// Ends a row as `COMPLETE` or `FAILED` (with its failure code), and removes the earlier
    /// ended rows of the same image and destination, which it supersedes; writes `event`'s
    /// outbox row (for its tag) in the same transaction, so that the replication event exists
    /// if and only if the outcome DescribeImageReplicationStatus reports was recorded.
    async fn finish_replication(
        &self,
        id: i64,
        status: &str,
        failure_code: Option<&str>,
        now: Millis,
        event: Option<(&ImageEvent, Option<&str>)>,
    ) -> Result<(), StorageError>;
    /// Records a failed attempt of a row that stays IN_PROGRESS until `next_attempt_at`.
    async fn retry_replication(
        &self,
        id: i64,
        next_attempt_at: Millis,
        failure_code: Option<&str>,
        now: Millis,
    ) -> Result<(), StorageError>;
    /// The latest status of an image for each destination it was replicated to, in
    /// destination order.
    async fn replication_statuses(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ReplicationStatusRecord>, StorageError>;
}
