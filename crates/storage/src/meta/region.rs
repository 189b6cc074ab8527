//! One region's view of the metadata store: the private registries of a region other than
//! the home region are filed under `<account>:<region>` (see [`model::region`]). The registry
//! of a region runs on this view and speaks account ids only; everything keyed by repository
//! id, and every store-wide method (GC, leases, the event outbox), passes through unchanged.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use model::region::{regional_key, split_regional_key};
use model::{Digest, ImageTag, RepositoryName, Service, UploadId};

use super::*;
use crate::StorageError;

/// The registry setting, under [`DEPLOYMENT_KEY`], recording the home region.
const HOME_REGION_SETTING: &str = "home-region";
/// The registry key of settings that belong to the deployment rather than to a registry (no
/// account id, `public:` key or regional key looks like it).
const DEPLOYMENT_KEY: &str = "deployment";

/// The home region recorded in `meta`, recording `region` first if none is (the first open of
/// a data directory, or of one written before regions existed: its data is then the
/// configured region's, as it was). Nodes opening a new database at once agree through a
/// compare-and-swap.
pub async fn home_region(meta: &dyn MetaStore, region: &str) -> Result<String, StorageError> {
    let read = || meta.registry_setting(Service::Private, DEPLOYMENT_KEY, HOME_REGION_SETTING);
    if let Some(home) = read().await? {
        return String::from_utf8(home)
            .map_err(|_| StorageError::Other("corrupt home region".into()));
    }
    meta.swap_registry_setting(
        Service::Private,
        DEPLOYMENT_KEY,
        HOME_REGION_SETTING,
        None,
        Some(region.as_bytes()),
    )
    .await?;
    let home = read()
        .await?
        .ok_or_else(|| StorageError::Other("home region not recorded".into()))?;
    String::from_utf8(home).map_err(|_| StorageError::Other("corrupt home region".into()))
}

/// The metadata store as the registries of one region see it.
pub struct RegionView {
    inner: Arc<dyn MetaStore>,
    region: String,
    home: String,
}

impl RegionView {
    pub fn new(inner: Arc<dyn MetaStore>, region: String, home: String) -> Self {
        Self {
            inner,
            region,
            home,
        }
    }

    /// The stored key of `account`'s registry of `service` in this region.
    fn key<'a>(&self, service: Service, account: &'a str) -> Cow<'a, str> {
        match service {
            Service::Private => regional_key(account, &self.region, &self.home),
            Service::Public => Cow::Borrowed(account),
        }
    }

    /// The account a stored key of this region stands for; `None` for another region's.
    fn account<'a>(&self, service: Service, key: &'a str) -> Option<&'a str> {
        if service == Service::Public {
            return Some(key);
        }
        match split_regional_key(key) {
            (account, None) => (self.region == self.home).then_some(account),
            (account, Some(region)) => (region == self.region).then_some(account),
        }
    }

    fn record(&self, mut repo: RepositoryRecord) -> RepositoryRecord {
        if let Some(account) = self.account(repo.service, &repo.registry_id) {
            repo.registry_id = account.to_owned();
        }
        repo
    }

    /// The event as the store files it: its registry's key in its own region (the event's
    /// `region`, else this view's).
    fn event(&self, event: Option<&ImageEvent>) -> Option<ImageEvent> {
        event.map(|e| {
            let registry_id = match (e.service, &e.region) {
                (Service::Private, Some(region)) => {
                    regional_key(&e.registry_id, region, &self.home).into_owned()
                }
                _ => self.key(e.service, &e.registry_id).into_owned(),
            };
            ImageEvent {
                registry_id,
                region: None,
                ..e.clone()
            }
        })
    }
}

/// The (account, region) of an event's registry as the outbox holds it (events are delivered
/// store-wide, not through a region's view): `None` for the home region.
pub fn event_region(event: &ImageEvent) -> (&str, Option<&str>) {
    match event.service {
        Service::Private => split_regional_key(&event.registry_id),
        Service::Public => (&event.registry_id, None),
    }
}

/// (region, account, name) of the rows of [`MetaStore::repositories_with_setting`] as the
/// store-wide list holds them: `None` for the home region. Background jobs that visit every
/// region's repositories group them by region with it.
pub fn repository_region(service: Service, key: &str) -> (Option<&str>, &str) {
    match service {
        Service::Private => {
            let (account, region) = split_regional_key(key);
            (region, account)
        }
        Service::Public => (None, key),
    }
}

#[async_trait]
impl MetaStore for RegionView {
    async fn get_repository(
        &self,
        service: Service,
        registry_id: &str,
        name: &RepositoryName,
    ) -> Result<Option<RepositoryRecord>, StorageError> {
        let key = self.key(service, registry_id);
        Ok(self
            .inner
            .get_repository(service, &key, name)
            .await?
            .map(|r| self.record(r)))
    }
    async fn list_repositories(
        &self,
        service: Service,
        registry_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RepositoryRecord>, StorageError> {
        let key = self.key(service, registry_id);
        let repos = self
            .inner
            .list_repositories(service, &key, after, limit)
            .await?;
        Ok(repos.into_iter().map(|r| self.record(r)).collect())
    }
    async fn registry_policy(&self, registry_id: &str) -> Result<Option<String>, StorageError> {
        let key = self.key(Service::Private, registry_id);
        self.inner.registry_policy(&key).await
    }
    async fn set_registry_policy(
        &self,
        registry_id: &str,
        policy: Option<&str>,
    ) -> Result<(), StorageError> {
        let key = self.key(Service::Private, registry_id);
        self.inner.set_registry_policy(&key, policy).await
    }
    async fn create_repository_with_settings(
        &self,
        mut repo: RepositoryRecord,
        settings: &[(&str, &[u8])],
    ) -> Result<RepositoryRecord, StorageError> {
        repo.registry_id = self.key(repo.service, &repo.registry_id).into_owned();
        let created = self
            .inner
            .create_repository_with_settings(repo, settings)
            .await?;
        Ok(self.record(created))
    }
    async fn repositories_with_setting(
        &self,
        name: &str,
    ) -> Result<Vec<(Service, String, RepositoryName)>, StorageError> {
        let all = self.inner.repositories_with_setting(name).await?;
        Ok(all
            .into_iter()
            .filter_map(|(service, key, name)| {
                let account = self.account(service, &key)?.to_owned();
                Some((service, account, name))
            })
            .collect())
    }
    async fn registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.key(service, registry_id);
        self.inner.registry_setting(service, &key, name).await
    }
    async fn put_registry_settings(
        &self,
        service: Service,
        registry_id: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        let key = self.key(service, registry_id);
        self.inner
            .put_registry_settings(service, &key, changes)
            .await
    }
    async fn swap_registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        let key = self.key(service, registry_id);
        self.inner
            .swap_registry_setting(service, &key, name, expected, new)
            .await
    }
    async fn repositories_holding(
        &self,
        service: Service,
        registry_id: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<RepositoryName>, StorageError> {
        let key = self.key(service, registry_id);
        self.inner
            .repositories_holding(service, &key, digest, limit)
            .await
    }
    async fn put_image_noting(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
        refs: &ImageReferences,
        tag: Option<TagWrite<'_>>,
        max_tags: usize,
        event: Option<&ImageEvent>,
        replication: Option<&ReplicationWork>,
    ) -> Result<PutImageOutcome, StorageError> {
        let event = self.event(event);
        // The replication job reads the rows store-wide: their source names its region.
        let replication = replication.map(|w| ReplicationWork {
            registry_id: self.key(Service::Private, &w.registry_id).into_owned(),
            ..w.clone()
        });
        self.inner
            .put_image_noting(
                repo,
                image,
                refs,
                tag,
                max_tags,
                event.as_ref(),
                replication.as_ref(),
            )
            .await
    }
    async fn delete_tag_noting(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError> {
        let event = self.event(event);
        self.inner
            .delete_tag_noting(repo, tag, event.as_ref())
            .await
    }
    async fn delete_image_noting(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError> {
        let event = self.event(event);
        self.inner
            .delete_image_noting(repo, digest, event.as_ref())
            .await
    }

    // Keyed by repository id, upload id or digest, or store-wide: as they are.
    async fn delete_repository(
        &self,
        id: RepositoryId,
        only_if_empty: bool,
    ) -> Result<(), StorageError> {
        self.inner.delete_repository(id, only_if_empty).await
    }
    async fn set_repository_policy(
        &self,
        id: RepositoryId,
        policy: Option<&str>,
    ) -> Result<(), StorageError> {
        self.inner.set_repository_policy(id, policy).await
    }
    async fn set_image_tag_mutability(
        &self,
        id: RepositoryId,
        mutability: &str,
        exclusions: &[MutabilityExclusion],
    ) -> Result<(), StorageError> {
        self.inner
            .set_image_tag_mutability(id, mutability, exclusions)
            .await
    }
    async fn set_scan_on_push(
        &self,
        id: RepositoryId,
        scan_on_push: bool,
    ) -> Result<(), StorageError> {
        self.inner.set_scan_on_push(id, scan_on_push).await
    }
    async fn tag_repository(
        &self,
        repo: RepositoryId,
        tags: &[ResourceTag],
        max: usize,
    ) -> Result<Vec<ResourceTag>, StorageError> {
        self.inner.tag_repository(repo, tags, max).await
    }
    async fn untag_repository(
        &self,
        repo: RepositoryId,
        keys: &[String],
    ) -> Result<(), StorageError> {
        self.inner.untag_repository(repo, keys).await
    }
    async fn repository_setting(
        &self,
        repo: RepositoryId,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.repository_setting(repo, name).await
    }
    async fn put_repository_settings(
        &self,
        repo: RepositoryId,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        self.inner.put_repository_settings(repo, changes).await
    }
    async fn repository_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<RepositoryBlob>, StorageError> {
        self.inner.repository_blob(repo, digest).await
    }
    async fn link_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        now: Millis,
    ) -> Result<(), StorageError> {
        self.inner.link_blob(repo, digest, now).await
    }
    async fn create_upload(&self, upload: UploadRecord) -> Result<(), StorageError> {
        self.inner.create_upload(upload).await
    }
    async fn get_upload(&self, id: UploadId) -> Result<Option<UploadRecord>, StorageError> {
        self.inner.get_upload(id).await
    }
    async fn record_part(
        &self,
        updated: &UploadRecord,
        expected_received: u64,
    ) -> Result<(), StorageError> {
        self.inner.record_part(updated, expected_received).await
    }
    async fn complete_upload(
        &self,
        id: UploadId,
        repo: RepositoryId,
        digest: &Digest,
        size: u64,
        now: Millis,
    ) -> Result<bool, StorageError> {
        self.inner
            .complete_upload(id, repo, digest, size, now)
            .await
    }
    async fn delete_upload(&self, id: UploadId) -> Result<(), StorageError> {
        self.inner.delete_upload(id).await
    }
    async fn count_uploads(&self, repo: RepositoryId) -> Result<u64, StorageError> {
        self.inner.count_uploads(repo).await
    }
    async fn repository_usage(&self, repo: RepositoryId) -> Result<RepositoryUsage, StorageError> {
        self.inner.repository_usage(repo).await
    }
    async fn claim_upload(
        &self,
        id: UploadId,
        token: &str,
        now: Millis,
        until: Millis,
    ) -> Result<(), StorageError> {
        self.inner.claim_upload(id, token, now, until).await
    }
    async fn release_upload(&self, id: UploadId, token: &str) -> Result<(), StorageError> {
        self.inner.release_upload(id, token).await
    }
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StorageError> {
        self.inner.take_lease(name, holder, now, until).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.inner.release_lease(name, holder).await
    }
    async fn idle_uploads(&self, idle_before: Millis) -> Result<Vec<UploadId>, StorageError> {
        self.inner.idle_uploads(idle_before).await
    }
    async fn unreferenced_links(
        &self,
        linked_before: Millis,
    ) -> Result<Vec<(RepositoryId, Digest)>, StorageError> {
        self.inner.unreferenced_links(linked_before).await
    }
    async fn unlink_if_unreferenced(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        self.inner.unlink_if_unreferenced(repo, digest).await
    }
    async fn unlinked_blobs(
        &self,
        created_before: Millis,
    ) -> Result<Vec<(Digest, u64)>, StorageError> {
        self.inner.unlinked_blobs(created_before).await
    }
    async fn delete_blob_if_unlinked(&self, digest: &Digest) -> Result<bool, StorageError> {
        self.inner.delete_blob_if_unlinked(digest).await
    }
    async fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, StorageError> {
        self.inner.all_blobs().await
    }
    async fn get_image(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<ImageRecord>, StorageError> {
        self.inner.get_image(repo, digest).await
    }
    async fn resolve_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<Digest>, StorageError> {
        self.inner.resolve_tag(repo, tag).await
    }
    async fn image_by_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<ImageRecord>, StorageError> {
        self.inner.image_by_tag(repo, tag).await
    }
    async fn image_tags(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageTag>, StorageError> {
        self.inner.image_tags(repo, digest).await
    }
    async fn parent_indexes(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<Digest>, StorageError> {
        self.inner.parent_indexes(repo, digest).await
    }
    async fn list_tags(
        &self,
        repo: RepositoryId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageTag>, StorageError> {
        self.inner.list_tags(repo, after, limit).await
    }
    async fn list_referrers(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageRecord>, StorageError> {
        self.inner.list_referrers(repo, digest).await
    }
    async fn list_image_ids(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<(Digest, Option<ImageTag>)>, StorageError> {
        self.inner.list_image_ids(repo, status, after, limit).await
    }
    async fn list_images(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageSummary>, StorageError> {
        self.inner.list_images(repo, status, after, limit).await
    }
    async fn record_event(
        &self,
        event: &ImageEvent,
        tag: Option<&str>,
    ) -> Result<(), StorageError> {
        let event = self.event(Some(event)).expect("an event was given");
        self.inner.record_event(&event, tag).await
    }
    async fn due_events(&self, now: Millis, limit: u32) -> Result<Vec<EventRecord>, StorageError> {
        self.inner.due_events(now, limit).await
    }
    async fn image_states_between(
        &self,
        repo: RepositoryId,
        first: &str,
        last: &str,
    ) -> Result<Vec<(Digest, ImageState)>, StorageError> {
        self.inner.image_states_between(repo, first, last).await
    }
    async fn set_storage_class(
        &self,
        repo: RepositoryId,
        digests: &[Digest],
        archive: bool,
        at: Millis,
    ) -> Result<bool, StorageError> {
        self.inner
            .set_storage_class(repo, digests, archive, at)
            .await
    }
    async fn record_pull_times(
        &self,
        pulls: &[(RepositoryId, Digest, Millis)],
    ) -> Result<(), StorageError> {
        self.inner.record_pull_times(pulls).await
    }
    async fn fold_usage(&self, batch: u32) -> Result<u64, StorageError> {
        self.inner.fold_usage(batch).await
    }
    /// Store-wide: the registries' keys are reported as stored (`<account>:<region>` for a
    /// region other than the home region).
    async fn storage_usage(&self, largest: u32) -> Result<StorageUsage, StorageError> {
        self.inner.storage_usage(largest).await
    }
    async fn repository_storage(
        &self,
        repo: RepositoryId,
    ) -> Result<RepositoryUsage, StorageError> {
        self.inner.repository_storage(repo).await
    }
    async fn repositories_storage(
        &self,
        repos: &[RepositoryId],
    ) -> Result<Vec<(RepositoryId, RepositoryUsage)>, StorageError> {
        self.inner.repositories_storage(repos).await
    }
    /// Store-wide: a row's source `registry_id` is its stored key (see
    /// [`model::region::split_regional_key`]).
    async fn due_replications(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ReplicationTask>, StorageError> {
        self.inner.due_replications(now, limit).await
    }
    async fn finish_replication(
        &self,
        id: i64,
        status: &str,
        failure_code: Option<&str>,
        now: Millis,
        event: Option<(&ImageEvent, Option<&str>)>,
    ) -> Result<(), StorageError> {
        let tag = event.and_then(|(_, t)| t);
        let event = self.event(event.map(|(e, _)| e));
        self.inner
            .finish_replication(
                id,
                status,
                failure_code,
                now,
                event.as_ref().map(|e| (e, tag)),
            )
            .await
    }
    async fn retry_replication(
        &self,
        id: i64,
        next_attempt_at: Millis,
        failure_code: Option<&str>,
        now: Millis,
    ) -> Result<(), StorageError> {
        self.inner
            .retry_replication(id, next_attempt_at, failure_code, now)
            .await
    }
    async fn replication_statuses(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ReplicationStatusRecord>, StorageError> {
        self.inner.replication_statuses(repo, digest).await
    }
    async fn delete_event(&self, id: i64) -> Result<(), StorageError> {
        self.inner.delete_event(id).await
    }
    async fn retry_event(
        &self,
        id: i64,
        delivered_to: &[String],
        next_attempt_at: Millis,
        give_up: bool,
    ) -> Result<(), StorageError> {
        self.inner
            .retry_event(id, delivered_to, next_attempt_at, give_up)
            .await
    }
    async fn event_backlog(&self) -> Result<EventBacklog, StorageError> {
        self.inner.event_backlog().await
    }
}
