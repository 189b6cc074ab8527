//! Pull-time tracking: `lastRecordedPullTime`, and the principals whose pulls are not recorded
//! (RegisterPullTimeUpdateExclusion, DeregisterPullTimeUpdateExclusion,
//! ListPullTimeUpdateExclusions).
//!
//! A pull costs no database write: it notes the time in this process's memory, where pulls of
//! one image coalesce into one entry (the latest), and [`Registry::flush_pull_times`] writes
//! them in one transaction. The server flushes every few seconds and on shutdown; every node
//! flushes its own pulls, and a write never moves a recorded time backwards, so the order in
//! which nodes flush does not matter. A process killed without a shutdown loses at most one
//! interval's pulls, which ECR's own contract allows ("refreshes the last image pull timestamp
//! at least once every 24 hours").
//!
//! The exclusion list of each registry is one registry setting, read through a short cache so
//! that a pull does not read it from the database either.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use model::Digest;
use serde::{Deserialize, Serialize};
use storage::{Millis, RepositoryId, RepositoryRecord};

use crate::pagination::finish_page;
use crate::{Page, PageToken, Principal, Registry, RegistryError, Result, Service};

const SETTING: &str = "pullTimeUpdateExclusions";
/// The most principals one registry may exclude. ECR documents no figure; this one keeps the
/// list (read by every pull on a cache miss) small.
pub const MAX_EXCLUSIONS: usize = 100;
/// Distinct images noted between two flushes; pulls of further images are dropped (and
/// logged) until the next flush rather than grow memory without bound.
const MAX_PENDING: usize = 100_000;
/// Rows written per transaction by a flush.
const FLUSH_CHUNK: usize = 1000;

/// Pulls noted since the last flush: the latest time per image.
#[derive(Default)]
pub(crate) struct PendingPulls {
    pulls: Mutex<HashMap<(RepositoryId, Digest), Millis>>,
}

impl PendingPulls {
    fn note(&self, repo: RepositoryId, digest: &Digest, at: Millis) {
        // Each change is one map operation: a panic cannot leave it half done.
        let mut pulls = self.pulls.lock().unwrap_or_else(PoisonError::into_inner);
        let full = pulls.len() >= MAX_PENDING;
        match pulls.entry((repo, digest.clone())) {
            Entry::Occupied(mut e) => {
                let t = e.get_mut();
                *t = (*t).max(at);
            }
            Entry::Vacant(e) if !full => {
                e.insert(at);
            }
            Entry::Vacant(_) => tracing::warn!(
                "too many images pulled since the last pull-time flush; a pull time is not recorded"
            ),
        }
    }

    fn take(&self) -> Vec<(RepositoryId, Digest, Millis)> {
        let mut pulls = self.pulls.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *pulls)
            .into_iter()
            .map(|((r, d), t)| (r, d, t))
            .collect()
    }

    /// Puts back pulls a failed flush did not write, keeping later ones noted meanwhile.
    fn put_back(&self, unwritten: &[(RepositoryId, Digest, Millis)]) {
        for (repo, digest, at) in unwritten {
            self.note(*repo, digest, *at);
        }
    }
}

/// One excluded principal, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Exclusion {
    #[serde(rename = "principalArn")]
    principal_arn: String,
    #[serde(rename = "createdAt")]
    created_at: Millis,
}

impl Registry {
    /// Notes a pull of `digest` from `repo` by `who`, to be written by the next flush.
    pub(crate) async fn note_pull(
        &self,
        who: &Principal,
        repo: &RepositoryRecord,
        digest: &Digest,
    ) {
        if repo.service != Service::Private {
            return; // ECR Public records no pull times
        }
        match self.excluded_principals(&repo.registry_id).await {
            Ok(excluded) if excluded.contains(&who.arn) => return,
            Ok(_) => {}
            // Recording a pull the list would have excluded is the lesser harm.
            Err(e) => tracing::warn!(error = %e, "reading the pull-time update exclusions"),
        }
        self.pending_pulls.note(repo.id, digest, self.now());
    }

    /// Writes the pulls noted since the last flush; answers how many images it recorded.
    /// What a failed write did not record is kept for the next flush.
    pub async fn flush_pull_times(&self) -> Result<usize> {
        let pulls = self.pending_pulls.take();
        for (i, chunk) in pulls.chunks(FLUSH_CHUNK).enumerate() {
            if let Err(e) = self.storage.meta.record_pull_times(chunk).await {
                self.pending_pulls.put_back(&pulls[i * FLUSH_CHUNK..]);
                return Err(e.into());
            }
        }
        Ok(pulls.len())
    }

    /// ARNs excluded in a registry, from the cache when it has them.
    async fn excluded_principals(&self, registry_id: &str) -> Result<Arc<Vec<String>>> {
        let generation = match self.pull_exclusions.get(registry_id) {
            Ok(list) => return Ok(list),
            Err(g) => g,
        };
        let list: Arc<Vec<String>> = Arc::new(
            self.stored_exclusions(registry_id)
                .await?
                .into_iter()
                .map(|e| e.principal_arn)
                .collect(),
        );
        self.pull_exclusions
            .put(registry_id.to_owned(), generation, list.clone());
        Ok(list)
    }

    async fn stored_exclusions(&self, registry_id: &str) -> Result<Vec<Exclusion>> {
        self.setting_value(registry_id, SETTING).await
    }

    /// RegisterPullTimeUpdateExclusion: the caller's registry stops recording the pulls of
    /// `principal_arn` (an ARN the front end has checked against the model's pattern).
    pub async fn register_pull_time_exclusion(
        &self,
        who: &Principal,
        principal_arn: &str,
    ) -> Result<(String, Millis)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:RegisterPullTimeUpdateExclusion")
            .await?
            .to_owned();
        let now = self.now();
        let created = self
            .modify_setting_list(&registry_id, SETTING, |all: &mut Vec<Exclusion>| {
                if all.iter().any(|e| e.principal_arn == principal_arn) {
                    return Err(RegistryError::ExclusionAlreadyExists(
                        principal_arn.to_owned(),
                    ));
                }
                if all.len() >= MAX_EXCLUSIONS {
                    return Err(RegistryError::LimitExceeded(format!(
                        "The pull time update exclusion list of the registry with id '{registry_id}' already holds the maximum of {MAX_EXCLUSIONS} principals"
                    )));
                }
                all.push(Exclusion {
                    principal_arn: principal_arn.to_owned(),
                    created_at: now,
                });
                Ok(now)
            })
            .await?;
        self.pull_exclusions.forget(&registry_id);
        Ok((principal_arn.to_owned(), created))
    }

    /// DeregisterPullTimeUpdateExclusion.
    pub async fn deregister_pull_time_exclusion(
        &self,
        who: &Principal,
        principal_arn: &str,
    ) -> Result<String> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:DeregisterPullTimeUpdateExclusion")
            .await?
            .to_owned();
        self.modify_setting_list(&registry_id, SETTING, |all: &mut Vec<Exclusion>| {
            let before = all.len();
            all.retain(|e| e.principal_arn != principal_arn);
            if all.len() == before {
                return Err(RegistryError::ExclusionNotFound(principal_arn.to_owned()));
            }
            Ok(())
        })
        .await?;
        self.pull_exclusions.forget(&registry_id);
        Ok(principal_arn.to_owned())
    }

    /// ListPullTimeUpdateExclusions: the excluded ARNs in lexical order, a page at a time.
    pub async fn list_pull_time_exclusions(
        &self,
        who: &Principal,
        page: Page,
    ) -> Result<(Vec<String>, Option<PageToken>)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:ListPullTimeUpdateExclusions")
            .await?
            .to_owned();
        let after = page.after_key(|[_]| true)?.map(|[a]| a.to_owned());
        let mut all: Vec<String> = self
            .stored_exclusions(&registry_id)
            .await?
            .into_iter()
            .map(|e| e.principal_arn)
            .filter(|a| after.as_deref().is_none_or(|k| a.as_str() > k))
            .collect();
        all.sort();
        all.truncate(page.limit as usize + 1);
        Ok(finish_page(all, page.limit, |a| {
            PageToken::new(&[a.as_str()])
        }))
    }
}
