//! Lifecycle policies: PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, their
//! preview (StartLifecyclePolicyPreview, GetLifecyclePolicyPreview) and their execution, the
//! job every node runs under the `lifecycle` lease.
//!
//! The policy text, when it last ran and the last preview are repository settings, so they go
//! with their repository. Preview and execution both call [`Registry::lifecycle_plan`]: on the
//! same images at the same time they select the same ones.

mod policy;

use model::{Digest, RepositoryName};
use serde::{Deserialize, Serialize};
use storage::{ImageStatus, RepositoryRecord, TagStatus};

pub use policy::{Action as LifecycleAction, LifecyclePolicy};

use storage::Millis;

use crate::{Page, PageToken, Principal, Registry, RegistryError, RepositoryRef, Result, Service};

pub(crate) const POLICY: &str = "lifecyclePolicy";
const LAST_EVALUATED: &str = "lifecycleLastEvaluatedAt";
const PREVIEW: &str = "lifecyclePreview";
/// Images read from storage per listing call while planning.
const PLAN_PAGE: u32 = 1000;

/// A repository's lifecycle policy as the policy operations answer.
#[derive(Debug, Clone)]
pub struct StoredLifecyclePolicy {
    pub registry_id: String,
    pub name: RepositoryName,
    pub text: String,
    pub last_evaluated_at: Option<Millis>,
}

/// One image a policy acts on, as the preview lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Millis,
    pub rule_priority: i64,
    pub archive: bool,
}

impl PlannedAction {
    pub fn action(&self) -> LifecycleAction {
        if self.archive {
            LifecycleAction::Archive
        } else {
            LifecycleAction::Expire
        }
    }
}

/// The last preview of a repository, stored whole when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPreview {
    policy_text: String,
    results: Vec<PlannedAction>,
}

/// What GetLifecyclePolicyPreview answers.
#[derive(Debug, Clone)]
pub struct LifecyclePreview {
    pub registry_id: String,
    pub name: RepositoryName,
    pub policy_text: String,
    /// The page asked for.
    pub results: Vec<PlannedAction>,
    pub next: Option<PageToken>,
    /// Over the whole preview, not the page.
    pub expiring: u64,
    pub archiving: u64,
}

/// What one run of the lifecycle job did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    pub repositories: u64,
    pub expired: u64,
    pub archived: u64,
    /// Selected images that changed between the plan and the action (re-pushed, retagged,
    /// now listed by an index) and were left alone.
    pub skipped: u64,
}

fn not_found(repo: &RepositoryRecord) -> RegistryError {
    RegistryError::LifecyclePolicyNotFound {
        registry_id: repo.registry_id.clone(),
        name: repo.name.clone(),
    }
}

fn millis_setting(v: Option<Vec<u8>>) -> Option<Millis> {
    v.and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
}

impl Registry {
    pub async fn put_lifecycle_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        text: &str,
    ) -> Result<StoredLifecyclePolicy> {
        let repo = self.repository(who, r, "ecr:PutLifecyclePolicy").await?;
        LifecyclePolicy::parse(text)?;
        self.storage
            .meta
            .put_repository_settings(repo.id, &[(POLICY, Some(text.as_bytes()))])
            .await?;
        let last = self
            .storage
            .meta
            .repository_setting(repo.id, LAST_EVALUATED)
            .await?;
        Ok(StoredLifecyclePolicy {
            registry_id: repo.registry_id,
            name: repo.name,
            text: text.to_owned(),
            last_evaluated_at: millis_setting(last),
        })
    }

    async fn stored_lifecycle_policy(
        &self,
        repo: &RepositoryRecord,
    ) -> Result<Option<StoredLifecyclePolicy>> {
        let meta = &self.storage.meta;
        let Some(text) = meta.repository_setting(repo.id, POLICY).await? else {
            return Ok(None);
        };
        Ok(Some(StoredLifecyclePolicy {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            text: String::from_utf8_lossy(&text).into_owned(),
            last_evaluated_at: millis_setting(
                meta.repository_setting(repo.id, LAST_EVALUATED).await?,
            ),
        }))
    }

    pub async fn get_lifecycle_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<StoredLifecyclePolicy> {
        let repo = self.repository(who, r, "ecr:GetLifecyclePolicy").await?;
        self.stored_lifecycle_policy(&repo)
            .await?
            .ok_or_else(|| not_found(&repo))
    }

    pub async fn delete_lifecycle_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<StoredLifecyclePolicy> {
        let repo = self.repository(who, r, "ecr:DeleteLifecyclePolicy").await?;
        let stored = self
            .stored_lifecycle_policy(&repo)
            .await?
            .ok_or_else(|| not_found(&repo))?;
        self.storage
            .meta
            .put_repository_settings(repo.id, &[(POLICY, None), (LAST_EVALUATED, None)])
            .await?;
        Ok(stored)
    }

    /// What `policy` does to the repository's images at `now`, in digest order. Images an
    /// index lists live as long as the index and are never selected (as in ECR, where a
    /// platform image of a multi-arch image goes with its index).
    async fn lifecycle_plan(
        &self,
        repo: &RepositoryRecord,
        policy: &LifecyclePolicy,
        now: Millis,
    ) -> Result<Vec<PlannedAction>> {
        let meta = &self.storage.meta;
        let mut images = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = meta
                .list_images(repo.id, TagStatus::Any, after.as_deref(), PLAN_PAGE)
                .await?;
            let full = page.len() == PLAN_PAGE as usize;
            after = page.last().map(|i| i.digest.to_string());
            let mut page = page;
            self.fill_states(repo.id, &mut page, |s| &s.digest, |s, st| s.state = st)
                .await?;
            for image in page {
                // An image being restored is in neither storage class yet: no rule sees it
                // until it is ACTIVE.
                if image.state.status(now) != ImageStatus::Activating
                    && meta
                        .parent_indexes(repo.id, &image.digest)
                        .await?
                        .is_empty()
                {
                    images.push(image);
                }
            }
            if !full {
                break;
            }
        }
        let tags: Vec<Vec<String>> = images
            .iter()
            .map(|i| i.tags.iter().map(ToString::to_string).collect())
            .collect();
        let candidates: Vec<policy::Candidate> = images
            .iter()
            .zip(&tags)
            .map(|(i, t)| policy::Candidate {
                digest: i.digest.as_str(),
                tags: t,
                pushed_at: i.pushed_at,
                // Never pulled: its push counts (ECR's rule), in `evaluate`. Pulls not yet
                // flushed from memory are not seen.
                last_pulled_at: i.state.last_pulled_at,
                archived_at: i
                    .state
                    .archived
                    .then(|| i.state.last_archived_at.unwrap_or(i.pushed_at)),
            })
            .collect();
        Ok(policy
            .evaluate(&candidates, now)
            .into_iter()
            .map(|s| PlannedAction {
                digest: candidates[s.index].digest.to_owned(),
                tags: tags[s.index].clone(),
                pushed_at: candidates[s.index].pushed_at,
                rule_priority: s.priority,
                archive: s.action == LifecycleAction::Archive,
            })
            .collect())
    }

    /// Evaluates `text` (or the stored policy) now and stores the result as the repository's
    /// preview. The evaluation is done before this answers, so the status is COMPLETE at once.
    pub async fn start_lifecycle_policy_preview(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        text: Option<&str>,
    ) -> Result<(String, RepositoryName, String)> {
        let repo = self
            .repository(who, r, "ecr:StartLifecyclePolicyPreview")
            .await?;
        let text = match text {
            Some(t) => t.to_owned(),
            None => {
                self.stored_lifecycle_policy(&repo)
                    .await?
                    .ok_or_else(|| not_found(&repo))?
                    .text
            }
        };
        let policy = LifecyclePolicy::parse(&text)?;
        let results = self.lifecycle_plan(&repo, &policy, self.now()).await?;
        let stored = serde_json::to_vec(&StoredPreview {
            policy_text: text.clone(),
            results,
        })
        .map_err(|e| RegistryError::Storage(storage::StorageError::Other(e.into())))?;
        self.storage
            .meta
            .put_repository_settings(repo.id, &[(PREVIEW, Some(&stored))])
            .await?;
        Ok((repo.registry_id, repo.name, text))
    }

    /// The repository's last preview: the results `status` keeps of the images `ids` name
    /// (by digest, tag or both), or a page in digest order.
    pub async fn get_lifecycle_policy_preview(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        ids: Option<&[crate::ImageIdInput]>,
        status: TagStatus,
        page: Page,
    ) -> Result<LifecyclePreview> {
        let repo = self
            .repository(who, r, "ecr:GetLifecyclePolicyPreview")
            .await?;
        let stored = self
            .storage
            .meta
            .repository_setting(repo.id, PREVIEW)
            .await?
            .and_then(|b| serde_json::from_slice::<StoredPreview>(&b).ok())
            .ok_or_else(|| RegistryError::LifecyclePolicyPreviewNotFound {
                registry_id: repo.registry_id.clone(),
                name: repo.name.clone(),
            })?;
        let count = |archive: bool| {
            stored
                .results
                .iter()
                .filter(|a| a.archive == archive)
                .count()
        };
        let (expiring, archiving) = (count(false) as u64, count(true) as u64);
        let after = page
            .after_key(|[d]| Digest::parse(d).is_ok())?
            .map(|[d]| d.to_owned());
        let mut kept = stored.results.into_iter().filter(|a| match status {
            TagStatus::Any => true,
            TagStatus::Tagged => !a.tags.is_empty(),
            TagStatus::Untagged => a.tags.is_empty(),
        });
        let (results, next) = match ids {
            Some(ids) => (
                kept.filter(|a| {
                    ids.iter().any(|id| {
                        id.digest.as_deref().is_none_or(|d| d == a.digest)
                            && id.tag.as_ref().is_none_or(|t| a.tags.contains(t))
                    })
                })
                .collect(),
                None,
            ),
            None => {
                let mut rest: Vec<PlannedAction> = kept
                    .by_ref()
                    .filter(|a| after.as_deref().is_none_or(|k| a.digest.as_str() > k))
                    .take(page.limit as usize + 1)
                    .collect();
                let next = (rest.len() > page.limit as usize).then(|| {
                    rest.truncate(page.limit as usize);
                    PageToken::new(&[rest[rest.len() - 1].digest.as_str()])
                });
                (rest, next)
            }
        };
        Ok(LifecyclePreview {
            registry_id: repo.registry_id,
            name: repo.name,
            policy_text: stored.policy_text,
            results,
            next,
            expiring,
            archiving,
        })
    }

    /// Runs every repository's lifecycle policy once: expires (or, `dry_run`, only counts) the
    /// images each selects now. An image is expired only if it is still as planned (same
    /// digest, tags and no index listing it), so a push racing the job is never lost.
    pub async fn run_lifecycle(&self, dry_run: bool) -> Result<LifecycleReport> {
        let meta = &self.storage.meta;
        let mut report = LifecycleReport::default();
        for (service, registry_id, name) in meta.repositories_with_setting(POLICY).await? {
            if service != Service::Private {
                continue;
            }
            let Some(repo) = meta.get_repository(service, &registry_id, &name).await? else {
                continue; // deleted meanwhile
            };
            let Some(stored) = self.stored_lifecycle_policy(&repo).await? else {
                continue;
            };
            // Validated when put; one that no longer parses (a rule berth dropped) is skipped.
            let Ok(policy) = LifecyclePolicy::parse(&stored.text) else {
                tracing::warn!(repository = %repo.name, "stored lifecycle policy no longer parses");
                continue;
            };
            report.repositories += 1;
            let now = self.now();
            let plan = self.lifecycle_plan(&repo, &policy, now).await?;
            for action in plan {
                if dry_run {
                    if action.archive {
                        report.archived += 1;
                    } else {
                        report.expired += 1;
                    }
                    continue;
                }
                let done = if action.archive {
                    self.archive_if_unchanged(&repo, &action, now).await?
                } else {
                    self.expire_if_unchanged(&repo, &action).await?
                };
                match (done, action.archive) {
                    (true, true) => report.archived += 1,
                    (true, false) => report.expired += 1,
                    (false, _) => report.skipped += 1,
                }
            }
            if !dry_run {
                meta.put_repository_settings(
                    repo.id,
                    &[(LAST_EVALUATED, Some(now.to_string().as_bytes()))],
                )
                .await?;
                self.forget_repository(&repo);
            }
        }
        Ok(report)
    }

    /// Moves a planned image to the archive if it is still as planned and still ACTIVE.
    async fn archive_if_unchanged(
        &self,
        repo: &RepositoryRecord,
        action: &PlannedAction,
        now: Millis,
    ) -> Result<bool> {
        let Some(image) = self.unchanged(repo, action).await? else {
            return Ok(false);
        };
        if image.state.status(now) != ImageStatus::Active {
            return Ok(false);
        }
        tracing::info!(repository = %repo.name, digest = %image.digest, rule = action.rule_priority, "lifecycle policy archives image");
        let digests = self.with_children(repo.id, &image).await?;
        Ok(self
            .storage
            .meta
            .set_storage_class(repo.id, &digests, true, now)
            .await?)
    }

    async fn expire_if_unchanged(
        &self,
        repo: &RepositoryRecord,
        action: &PlannedAction,
    ) -> Result<bool> {
        let meta = &self.storage.meta;
        let Some(image) = self.unchanged(repo, action).await? else {
            return Ok(false);
        };
        let digest = image.digest.clone();
        tracing::info!(repository = %repo.name, digest = %digest, rule = action.rule_priority, "lifecycle policy expires image");
        // Reported as ECR reports any image delete: ECR documents no event of its own for a
        // lifecycle expiry.
        let event = self.image_event(repo, "DELETE", &image);
        meta.delete_image_noting(repo.id, &digest, event.as_ref())
            .await
            .map_err(Into::into)
    }

    /// The planned image if it is still as the plan saw it: same push, same tags, and no
    /// index listing it.
    async fn unchanged(
        &self,
        repo: &RepositoryRecord,
        action: &PlannedAction,
    ) -> Result<Option<storage::ImageRecord>> {
        let meta = &self.storage.meta;
        let Ok(digest) = Digest::parse(&action.digest) else {
            return Ok(None);
        };
        let Some(image) = meta.get_image(repo.id, &digest).await? else {
            return Ok(None);
        };
        let tags: Vec<String> = meta
            .image_tags(repo.id, &digest)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        if image.pushed_at != action.pushed_at
            || tags != action.tags
            || !meta.parent_indexes(repo.id, &digest).await?.is_empty()
        {
            return Ok(None);
        }
        Ok(Some(image))
    }
}
