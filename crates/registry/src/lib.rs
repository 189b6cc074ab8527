//! The registry's use cases: repositories, blob uploads, images and tags, with ECR's rules.
//! The only entry point the protocol front ends call. Knows no HTTP, no SQL and no protocol
//! wire formats: it speaks model types and answers `RegistryError`.

mod access;
mod account_settings;
mod archive;
mod blobs;
mod browse;
mod budget;
mod cache;
mod condition;
mod creation_templates;
mod error;
mod gc;
mod images;
mod lifecycle;
mod manifest;
mod pagination;
mod policies;
mod policy;
#[cfg(test)]
mod policy_cases;
mod public;
mod pull_through;
mod pull_times;
mod quota;
mod referrers;
mod regions;
mod replication;
mod repositories;
mod resource_tags;
mod scanning;
mod shared_setting;
mod uploads;
mod verify;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::RepositoryName;
pub use model::Service;
use storage::{Millis, Storage};

pub use access::{AuditNote, AuditNotes, Connection, KeyAccess, is_mutating};
pub use account_settings::{ACCOUNT_SETTINGS, AccountSetting};
pub use archive::{StatusFilter, StorageClassUpdate};
pub use blobs::{BlobDownload, BlobUnlink};
pub use budget::{
    DEFAULT_WAIT as BODY_MEMORY_WAIT, MemoryBudget, Reservation, default_budget_bytes,
};
pub use condition::format_date;
pub use creation_templates::{
    AppliedFor, CreationTemplate, MAX_CREATION_TEMPLATES, TemplateFields,
};
pub use error::RegistryError;
pub use gc::{FsckProblem, GcOptions, GcReport};
pub use images::{
    BatchDeleteResult, BatchGetResult, ImageFailure, ImageFailureCode, ImageIdInput, ImageIdOutput,
    PutImageRequest,
};
pub use lifecycle::{
    LifecycleAction, LifecyclePolicy, LifecyclePreview, LifecycleReport, PlannedAction,
    StoredLifecyclePolicy,
};
pub use pagination::{Page, PageToken};
pub use policies::RepositoryPolicy;
pub use public::{
    CatalogData, CreatePublicRepository, LOGO_ROUTE, Logo, MAX_LOGO_BYTES, PublicAliases,
    PublicRegistry, PublicRegistryAlias, generated_alias, is_valid_alias,
};
pub use pull_through::{
    CreatePullThroughCacheRule, DEFAULT_REFRESH_MILLIS as DEFAULT_PULL_THROUGH_REFRESH_MILLIS,
    PullThroughBlob, PullThroughCacheRule, PullThroughConfig, RuleValidation, Upstream,
    UpstreamBlob, UpstreamError, UpstreamFailure, UpstreamManifest, UpstreamTarget,
};
pub use pull_times::MAX_EXCLUSIONS as MAX_PULL_TIME_EXCLUSIONS;
pub use quota::{DEFAULT_BURST_SECS as DEFAULT_RATE_BURST_SECS, DEFAULT_RATES, Quotas};
pub use referrers::Referrer;
pub use regions::{MAX_CACHED_REGIONS, Registries};
pub use replication::{
    BlobSource, Destination as ReplicationRuleDestination, ImageReplicationStatus,
    MAX_UNIQUE_DESTINATIONS, ReplicationConfiguration, ReplicationFailure, ReplicationRemote,
    ReplicationRetry, ReplicationRule,
};
pub use repositories::{CreateRepository, EncryptionConfiguration};
pub use scanning::{RegistryScanningConfiguration, RepositoryScanning, ScanningRule};
pub use storage::{
    BlobRange, BlobReader, ByteStream, ImageRecord, ImageState, ImageStatus, ImageSummary,
    MutabilityExclusion, ReplicationDestination, ReplicationStatusRecord, RepositoryBlob,
    RepositoryRecord, RepositoryUsage, ResourceTag, TagStatus,
};
pub use uploads::{CompletionRules, PartData, UploadProgress};

/// How long a restore from the archive takes unless configured (`archive-restore-secs`):
/// short, so that a restored image is soon pullable, yet long enough for clients to see the
/// ACTIVATING status ECR shows during its (up to some 20 minute) restores.
pub const DEFAULT_RESTORE_DELAY_MILLIS: Millis = 10_000;

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::manifest::ParsedManifest;

    /// The manifest check PutImage and a `/v2` manifest PUT make before touching storage.
    pub fn parse_manifest(bytes: &[u8], declared: Option<&str>) -> crate::Result<ParsedManifest> {
        crate::manifest::parse(bytes, declared)
    }
}

/// Limits from the ECR service quotas (ecr-api.md section 5).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Smallest part but the last, checked at completion.
    pub min_part_size: u64,
    /// Largest part the ECR API accepts (the model's `layerPartBlob` maximum).
    pub max_part_size: u64,
    /// The `partSize` InitiateLayerUpload advertises.
    pub advertised_part_size: u64,
    pub max_parts_per_upload: u32,
    pub max_layer_size: u64,
    pub max_tags_per_image: usize,
    pub max_images_per_repository: u64,
    /// Open uploads one repository may have at once (LimitExceededException past it).
    pub max_open_uploads_per_repository: u64,
    /// An upload that receives nothing for this long is gone (UploadNotFoundException).
    pub upload_expiry_millis: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_part_size: 5 * 1024 * 1024,
            max_part_size: 20 * 1024 * 1024,
            advertised_part_size: 10 * 1024 * 1024,
            max_parts_per_upload: 4200,
            max_layer_size: 52_000 * 1024 * 1024,
            max_tags_per_image: 1000,
            max_images_per_repository: 100_000,
            max_open_uploads_per_repository: 1_000,
            upload_expiry_millis: 24 * 3600 * 1000,
        }
    }
}

/// Who is calling. Resolved by the front end from a SigV4 signature or a registry token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key_id: String,
    /// e.g. `arn:aws:iam::123456789012:user/ci`; named in AccessDenied messages.
    pub arn: String,
    /// The caller's account: the registry id an omitted `registryId` means.
    pub account_id: String,
}

/// A repository named in a request: which of the account's registries (private or public),
/// an optional registry id (default: the caller's account) and the name.
///
/// Public repositories share every use case with private ones: the service travels with the
/// reference down to the metadata store, which files an account's public registry under its
/// own key (`public:<account>`, see [`Service::registry_key`]) in the same tables, so the same
/// name may exist in both and no SQL differs. Records handed back carry the account id and
/// the service, never the key.
#[derive(Debug, Clone)]
pub struct RepositoryRef {
    pub service: Service,
    pub registry_id: Option<String>,
    pub name: RepositoryName,
}

impl RepositoryRef {
    /// A repository of a private (ECR) registry.
    pub fn private(registry_id: Option<String>, name: RepositoryName) -> Self {
        Self {
            service: Service::Private,
            registry_id,
            name,
        }
    }

    /// A repository of a public (ECR Public) registry.
    pub fn public(registry_id: Option<String>, name: RepositoryName) -> Self {
        Self {
            service: Service::Public,
            registry_id,
            name,
        }
    }

    /// The repository a `resourceArn` names (TagResource, UntagResource,
    /// ListTagsForResource): `arn:aws:ecr:<region>:<account>:repository/<name>` in this
    /// deployment's region, or `arn:aws:ecr-public::<account>:repository/<name>`. `None` for
    /// anything else, which the front end reports in its own words.
    pub fn from_arn(arn: &str, region: &str) -> Option<Self> {
        let rest = arn.strip_prefix("arn:aws:")?;
        let (service, rest) = if let Some(rest) = rest.strip_prefix("ecr-public::") {
            (Service::Public, rest)
        } else {
            let rest = rest.strip_prefix("ecr:")?.strip_prefix(region)?;
            (Service::Private, rest.strip_prefix(':')?)
        };
        let (account, name) = rest.split_once(":repository/")?;
        if !model::is_registry_id(account) {
            return None;
        }
        let name = RepositoryName::parse(name).ok()?;
        Some(Self {
            service,
            registry_id: Some(account.to_owned()),
            name,
        })
    }
}

pub struct Registry {
    storage: Storage,
    region: String,
    limits: Limits,
    /// Parsed registry policies by registry id: every request is authorized against one.
    registry_policies: cache::TtlCache<Option<Arc<policy::Policy>>>,
    /// Repository records by `registry id/name`: every request looks its repository up.
    repositories: cache::TtlCache<RepositoryRecord>,
    /// Re-hash every whole-blob read (see `verify.rs`); off by default, as clients verify
    /// digests themselves and `berth fsck` scrubs the store.
    verify_reads: bool,
    /// Send downloads to the blob store's presigned URLs where it has them (S3).
    blob_redirect: bool,
    /// Bytes of request bodies (upload parts) the front ends may hold in memory at once.
    memory_budget: MemoryBudget,
    /// Public registry aliases: configured ones and the generated default.
    public_aliases: PublicAliases,
    /// Added to the wall clock wherever a rule reads the time (lifecycle ages): tests age
    /// images by moving it instead of sleeping.
    clock_offset_millis: Millis,
    /// Identity policies and tags of the configured access keys (shared by every region).
    identities: Arc<access::Identities>,
    /// Request-rate quotas per principal (see `quota.rs`), shared by every region: a
    /// principal's rate is counted once whatever region it signs for.
    quotas: Arc<Quotas>,
    /// The pull-through cache's upstream client and settings; `None`: no caching.
    pull_through: Option<pull_through::PullThrough>,
    /// Write ECR's image events to the outbox (only when some webhook will take them: rows
    /// nobody delivers would pile up).
    events: bool,
    /// How long a restore from the archive takes: the image is ACTIVATING meanwhile.
    restore_delay_millis: Millis,
    /// Pulls not yet written (see `pull_times.rs`). Keyed by repository id, so every
    /// region's registry shares one, and one flush writes them all.
    pending_pulls: Arc<pull_times::PendingPulls>,
    /// Each registry's pull-time update exclusions (principal ARNs).
    pull_exclusions: cache::TtlCache<Arc<Vec<String>>>,
    /// Registries outside this deployment that replication delivers to over `/v2`.
    replication_remote: Option<Arc<dyn ReplicationRemote>>,
    /// The regions the deployment serves (`None`: every well-formed region name); set by
    /// [`Registries`].
    served_regions: Option<Arc<Vec<String>>>,
}

impl Registry {
    pub fn new(storage: Storage, region: String, limits: Limits) -> Self {
        Self {
            storage,
            region,
            limits,
            registry_policies: cache::TtlCache::new(Duration::from_secs(5)),
            // Short: a repository deleted by another process lingers here this long.
            repositories: cache::TtlCache::new(Duration::from_secs(1)),
            verify_reads: false,
            blob_redirect: false,
            memory_budget: MemoryBudget::new(default_budget_bytes(), budget::DEFAULT_WAIT),
            public_aliases: PublicAliases::default(),
            clock_offset_millis: 0,
            identities: Arc::default(),
            quotas: Arc::default(),
            pull_through: None,
            events: false,
            restore_delay_millis: DEFAULT_RESTORE_DELAY_MILLIS,
            pending_pulls: Arc::default(),
            // As short as the registry policies': an exclusion made on another node takes
            // effect there within this time.
            pull_exclusions: cache::TtlCache::new(Duration::from_secs(5)),
            replication_remote: None,
            served_regions: None,
        }
    }

    /// Turns on the pull-through cache with this upstream client and settings.
    pub fn with_pull_through(mut self, config: PullThroughConfig) -> Self {
        self.pull_through = Some(pull_through::PullThrough::new(config));
        self
    }

    /// Records ECR's image events ("ECR Image Action") in the outbox with each change.
    pub fn with_events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// The event of `action_type` on `image` in `repo`, if events are recorded.
    pub(crate) fn image_event(
        &self,
        repo: &storage::RepositoryRecord,
        action_type: &str,
        image: &storage::ImageRecord,
    ) -> Option<storage::ImageEvent> {
        self.events.then(|| storage::ImageEvent {
            detail_type: "ECR Image Action".to_owned(),
            action_type: action_type.to_owned(),
            service: repo.service,
            registry_id: repo.registry_id.clone(),
            region: None,
            repository: repo.name.clone(),
            digest: Some(image.digest.clone()),
            manifest_media_type: Some(image.media_type.clone()),
            artifact_media_type: image.artifact_media_type.clone(),
            detail: None,
            at: self.now(),
        })
    }

    /// The metadata store, for the jobs around the registry (event delivery).
    pub fn meta(&self) -> &std::sync::Arc<dyn storage::MetaStore> {
        &self.storage.meta
    }

    /// Moves the registry's clock (see [`Registry::now`]) by `millis`; a test knob.
    pub fn with_clock_offset(mut self, millis: Millis) -> Self {
        self.clock_offset_millis = millis;
        self
    }

    /// The time lifecycle rules measure ages against: the wall clock plus the configured
    /// offset. Push times are stamped with the same clock, so that an image pushed under an
    /// offset is as old as the offset says.
    pub fn now(&self) -> Millis {
        now_millis() + self.clock_offset_millis
    }

    /// Request-rate quotas per principal and operation (default: ECR's rates).
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Arc::new(quotas);
        self
    }

    /// Counts one request of `who` for `action` against its quota.
    fn take_quota(&self, who: &Principal, action: &str) -> Result<()> {
        self.quotas
            .take(&who.arn, action)
            .map_err(|retry_after_secs| RegistryError::RateExceeded { retry_after_secs })
    }

    /// The access keys' identity policies and tags (`[[access-keys]]`); refuses a malformed
    /// policy, naming its key.
    pub fn with_key_access(mut self, keys: Vec<KeyAccess>) -> std::result::Result<Self, String> {
        self.identities = Arc::new(access::Identities::new(keys)?);
        Ok(self)
    }

    /// Checks one key's identity policy parses (for configuration loading).
    pub fn check_key_access(key: &KeyAccess) -> std::result::Result<(), String> {
        access::Identities::new(vec![key.clone()]).map(drop)
    }

    /// The public registries' aliases (see [`PublicAliases`]).
    pub fn with_public_aliases(mut self, aliases: PublicAliases) -> Self {
        self.public_aliases = aliases;
        self
    }

    /// Bounds the bytes of request bodies held in memory at once (see `budget.rs`).
    pub fn with_memory_budget(mut self, budget: MemoryBudget) -> Self {
        self.memory_budget = budget;
        self
    }

    /// Reserves room for `bytes` of a request body before it is read: `Throttled` when the
    /// budget stays full past its wait. Keep the reservation as long as the bytes.
    pub async fn reserve_body_memory(&self, bytes: u64) -> Result<Reservation> {
        self.memory_budget.reserve(bytes).await
    }

    /// Hands clients presigned blob-store URLs for downloads (GetDownloadUrlForLayer, `/v2`
    /// blob GETs) where the blob store can sign them, instead of serving the bytes.
    pub fn with_blob_redirect(mut self, redirect: bool) -> Self {
        self.blob_redirect = redirect;
        self
    }

    /// Re-hashes every whole-blob read on its way out, so a blob corrupted on disk ends in a
    /// failed transfer instead of bad bytes. Such reads cannot be served zero-copy.
    pub fn with_verified_reads(mut self, verify: bool) -> Self {
        self.verify_reads = verify;
        self
    }

    /// Arms crash points for the crash tests (see [`storage::failpoint`] for the names).
    pub fn with_failpoints(self, names: Vec<String>) -> Self {
        storage::failpoint::arm(names);
        self
    }

    fn failpoint(&self, name: &str) {
        storage::failpoint::hit(name);
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// This registry's settings for the registries of `region`, on `meta`: the metadata store
    /// as that region sees it (see [`storage::region::RegionView`]). What the regions share
    /// (the memory budget, quotas, identities, the upstream client and its in-flight fills) is
    /// shared; the caches, keyed by account id, are the region's own. A field added to
    /// [`Registry`] must be carried over here.
    fn in_region(&self, region: &str, meta: Arc<dyn storage::MetaStore>) -> Registry {
        Registry {
            storage: Storage {
                meta,
                ..self.storage.clone()
            },
            region: region.to_owned(),
            limits: self.limits.clone(),
            registry_policies: cache::TtlCache::new(Duration::from_secs(5)),
            repositories: cache::TtlCache::new(Duration::from_secs(1)),
            verify_reads: self.verify_reads,
            blob_redirect: self.blob_redirect,
            memory_budget: self.memory_budget.clone(),
            public_aliases: self.public_aliases.clone(),
            clock_offset_millis: self.clock_offset_millis,
            identities: self.identities.clone(),
            quotas: self.quotas.clone(),
            pull_through: self.pull_through.as_ref().map(|p| p.for_region()),
            events: self.events,
            restore_delay_millis: self.restore_delay_millis,
            pending_pulls: self.pending_pulls.clone(),
            pull_exclusions: cache::TtlCache::new(Duration::from_secs(5)),
            replication_remote: self.replication_remote.clone(),
            served_regions: self.served_regions.clone(),
        }
    }

    /// Whether the deployment serves `region` (requests signed for it, replication into it).
    pub fn serves_region(&self, region: &str) -> bool {
        model::region::is_region_name(region)
            && self
                .served_regions
                .as_ref()
                .is_none_or(|list| list.iter().any(|r| r == region))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks `who` may perform `action` (written `ecr:<Operation>`) on `resource`
    /// (`repository/<name>` or `repository/*`) of the `service` registry of account
    /// `registry_id`, against the repository's policy (if any) and the registry's policy (see
    /// `policy.rs` for the rules). In the public registry the action is
    /// `ecr-public:<Operation>` on `arn:aws:ecr-public::<account>:<resource>`, there is no
    /// registry policy (PutRegistryPolicy is ECR's alone), and pulls are open to anyone, as on
    /// public.ecr.aws.
    async fn authorize(
        &self,
        who: &Principal,
        service: Service,
        registry_id: &str,
        repo: Option<&RepositoryRecord>,
        resource: &str,
        action: &str,
    ) -> Result<()> {
        self.authorize_tagged(who, service, registry_id, repo, resource, action, None)
            .await
    }

    /// GetAuthorizationToken (`ecr:` or `ecr-public:`): an account-wide action (resource `*`)
    /// that only the caller's identity policy can grant, as in AWS ("Amazon ECR requires that
    /// users have permission to make calls to the ecr:GetAuthorizationToken API through an
    /// IAM policy"). A key without an identity policy may.
    pub fn authorize_token(&self, who: &Principal, service: Service) -> Result<()> {
        let action = service.action("ecr:GetAuthorizationToken");
        self.take_quota(who, &action)?;
        let identity = self.identities.get(&who.access_key_id);
        let Some(p) = identity.as_ref().and_then(|i| i.policy.as_ref()) else {
            return Ok(());
        };
        let context = access::context(who, identity.as_deref(), service, None, None);
        let req = policy::Request {
            principal_arn: &who.arn,
            principal_account: &who.account_id,
            action: &action,
            resource_arn: "*",
            context: &context,
        };
        let result = match p.evaluate(&req) {
            policy::Decision::Allow => Ok(()),
            d => Err(RegistryError::AccessDenied {
                principal: who.arn.clone(),
                action: action.to_string(),
                resource: "*".into(),
                explicit: d == policy::Decision::ExplicitDeny,
                identity_based: true,
            }),
        };
        if let Err(e) = &result {
            access::note(
                &self.region,
                who,
                service,
                &action,
                &who.account_id,
                "*",
                Some(e.to_string()),
            );
        }
        result
    }

    /// [`Self::authorize`] for a request that carries tags (CreateRepository, TagResource,
    /// UntagResource): they feed `aws:RequestTag/*` and `aws:TagKeys`.
    #[allow(clippy::too_many_arguments)]
    async fn authorize_tagged(
        &self,
        who: &Principal,
        service: Service,
        registry_id: &str,
        repo: Option<&RepositoryRecord>,
        resource: &str,
        action: &str,
        request_tags: Option<&[(String, Option<String>)]>,
    ) -> Result<()> {
        let resource_arn = service.resource_arn(&self.region, registry_id, resource);
        let action = service.action(action);
        let action = action.as_ref();
        if let Err(e) = self.take_quota(who, action) {
            access::note(
                &self.region,
                who,
                service,
                action,
                registry_id,
                resource,
                None,
            );
            return Err(e);
        }
        if service == Service::Public && public::is_public_read(action) {
            return Ok(());
        }
        let identity = self.identities.get(&who.access_key_id);
        let context = access::context(who, identity.as_deref(), service, repo, request_tags);
        let req = policy::Request {
            principal_arn: &who.arn,
            principal_account: &who.account_id,
            action,
            resource_arn: &resource_arn,
            context: &context,
        };
        // Stored policies were validated when set; one that no longer parses grants nothing.
        let repository_policy = repo
            .and_then(|r| r.policy.as_deref())
            .and_then(|text| policy::Policy::parse_for(service, text, false).ok());
        let registry_policy = match service {
            Service::Private => self.registry_policy(registry_id).await?,
            Service::Public => None,
        };
        let resource_policies: Vec<&policy::Policy> = repository_policy
            .iter()
            .chain(registry_policy.as_deref())
            .collect();
        let identity_policy = identity.as_ref().and_then(|i| i.policy.as_ref());
        let outcome = policy::decide(
            identity_policy,
            &resource_policies,
            &req,
            who.account_id == registry_id,
        );
        if outcome == policy::Outcome::Allow {
            access::note(
                &self.region,
                who,
                service,
                action,
                registry_id,
                resource,
                None,
            );
            return Ok(());
        }
        let explicit = outcome == policy::Outcome::ExplicitDeny;
        // Which side to name: the identity policy if it denied (explicitly, or by not allowing
        // what no resource policy allowed either).
        let identity_decision = identity_policy.map(|p| p.evaluate(&req));
        let identity_based = match identity_decision {
            Some(d) if explicit => d == policy::Decision::ExplicitDeny,
            Some(d) => d != policy::Decision::Allow,
            None => false,
        };
        let denied = RegistryError::AccessDenied {
            principal: who.arn.clone(),
            action: action.to_owned(),
            resource: resource_arn.clone(),
            explicit,
            identity_based,
        };
        access::note(
            &self.region,
            who,
            service,
            action,
            registry_id,
            resource,
            Some(denied.to_string()),
        );
        Err(denied)
    }

    /// The repository a request names, once `who` is cleared for `action` on it. Another
    /// account learns whether it exists only if it may act on it.
    async fn repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        action: &str,
    ) -> Result<RepositoryRecord> {
        self.repository_tagged(who, r, action, None).await
    }

    /// A repository by name, from the cache or the metadata store, without authorizing
    /// anything: for the registry's own decisions (does a push need to create it?).
    async fn find_repository(
        &self,
        service: Service,
        registry_id: &str,
        name: &RepositoryName,
    ) -> Result<Option<RepositoryRecord>> {
        let key = repository_key(service, registry_id, name);
        Ok(match self.repositories.get(&key) {
            Ok(repo) => Some(repo),
            Err(generation) => {
                let found = self
                    .storage
                    .meta
                    .get_repository(service, registry_id, name)
                    .await?;
                // Only what exists is cached: a repository created meanwhile is seen at once.
                if let Some(repo) = &found {
                    self.repositories.put(key, generation, repo.clone());
                }
                found
            }
        })
    }

    /// [`Self::repository`] for a request that carries tags (see [`Self::authorize_tagged`]).
    async fn repository_tagged(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        action: &str,
        request_tags: Option<&[(String, Option<String>)]>,
    ) -> Result<RepositoryRecord> {
        let registry_id = r.registry_id.as_deref().unwrap_or(&who.account_id);
        let resource = format!("repository/{}", r.name);
        match self
            .find_repository(r.service, registry_id, &r.name)
            .await?
        {
            Some(repo) => {
                self.authorize_tagged(
                    who,
                    r.service,
                    registry_id,
                    Some(&repo),
                    &resource,
                    action,
                    request_tags,
                )
                .await?;
                Ok(repo)
            }
            None => {
                self.authorize_tagged(
                    who,
                    r.service,
                    registry_id,
                    None,
                    &resource,
                    action,
                    request_tags,
                )
                .await?;
                Err(RegistryError::RepositoryNotFound {
                    registry_id: registry_id.to_owned(),
                    name: r.name.to_string(),
                })
            }
        }
    }
}

impl Registry {
    /// Drops a repository's cached record; called after every change to one.
    pub(crate) fn forget_repository(&self, repo: &RepositoryRecord) {
        self.repositories
            .forget(&repository_key(repo.service, &repo.registry_id, &repo.name));
    }
}

/// A registry key has no `/`, so this names one repository.
fn repository_key(service: Service, registry_id: &str, name: &RepositoryName) -> String {
    format!("{}/{name}", service.registry_key(registry_id))
}

pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_arns_of_both_services_name_their_repository() {
        let r = RepositoryRef::from_arn(
            "arn:aws:ecr-public::123456789012:repository/team/app",
            "eu-west-1",
        )
        .unwrap();
        assert_eq!(
            (r.service, r.registry_id.as_deref(), r.name.as_str()),
            (Service::Public, Some("123456789012"), "team/app")
        );
        let r = RepositoryRef::from_arn(
            "arn:aws:ecr:eu-west-1:123456789012:repository/app",
            "eu-west-1",
        )
        .unwrap();
        assert_eq!(
            (r.service, r.registry_id.as_deref(), r.name.as_str()),
            (Service::Private, Some("123456789012"), "app")
        );
        for bad in [
            "arn:aws:ecr:us-east-1:123456789012:repository/app",
            "arn:aws:ecr-public:eu-west-1:123456789012:repository/app",
            "arn:aws:ecr:eu-west-1:12345:repository/app",
            "arn:aws:ecr:eu-west-1:123456789012:registry/123456789012",
            "arn:aws:ecr:eu-west-1:123456789012:repository/Bad",
            "arn:aws:s3:::bucket",
            "",
        ] {
            assert!(RepositoryRef::from_arn(bad, "eu-west-1").is_none(), "{bad}");
        }
    }
}
