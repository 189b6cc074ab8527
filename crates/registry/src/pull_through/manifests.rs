//! The pull path of a manifest: a miss in a cache repository fetches the manifest (and the
//! child manifests of an index) from the upstream, verifies its digest, creates the
//! repository and stores the image; a cached tag is re-checked upstream at most once per
//! refresh interval, and served as cached when the upstream cannot answer. Each sync that
//! stores an image writes its "ECR Pull Through Cache Action" (SUCCESS) with the image; a
//! failed one writes its FAILED event on its own.

use model::{Digest, DigestAlgorithm, ImageTag, Reference};
use storage::{ImageRecord, ImageReferences, Millis, RepositoryRecord, StorageError, TagWrite};

use super::{UpstreamError, UpstreamFailure, UpstreamManifest, UpstreamTarget, rules};
use crate::{
    AppliedFor, CreateRepository, Principal, Registry, RegistryError, RepositoryRef, Result,
    Service, manifest,
};

/// Manifests of an index nested deeper than this are not fetched (an index of indexes is
/// legal, but none of the registries berth mirrors serves one deeper than two levels).
const MAX_INDEX_DEPTH: u32 = 2;

/// The repository setting recording when a tag was last checked upstream.
fn checked_setting(tag: &ImageTag) -> String {
    format!("pull-through-cache/checked/{tag}")
}

/// The rule covering a repository and where its images come from upstream.
pub(super) struct Source {
    pub(super) target: UpstreamTarget,
    /// What the cache's events report of the rule: its prefix, its upstream URL as given, and
    /// its version.
    rule_prefix: String,
    rule_url: String,
    rule_version: u64,
}

/// EventBridge's `detail-type` of the cache's events.
const SYNC_EVENT: &str = "ECR Pull Through Cache Action";

/// The `failure-code` of a failed sync: ECR's `ImageFailureCode` for the upstream's refusals
/// and failures, `ImageInaccessible` for anything else that kept the image from the cache.
fn failure_code(e: &RegistryError) -> &'static str {
    match e {
        RegistryError::UnableToGetUpstreamImage { reason, .. } => match reason {
            UpstreamFailure::AccessDenied => "UpstreamAccessDenied",
            UpstreamFailure::TooManyRequests => "UpstreamTooManyRequests",
            UpstreamFailure::Unavailable => "UpstreamUnavailable",
        },
        _ => "ImageInaccessible",
    }
}

pub(super) fn upstream_error(e: UpstreamError) -> RegistryError {
    let reason = match &e {
        UpstreamError::Unauthorized(_)
        | UpstreamError::SecretNotFound(_)
        | UpstreamError::SecretUnusable(_) => UpstreamFailure::AccessDenied,
        UpstreamError::TooManyRequests(_) => UpstreamFailure::TooManyRequests,
        UpstreamError::NotFound(_) | UpstreamError::Unavailable(_) => UpstreamFailure::Unavailable,
    };
    RegistryError::UnableToGetUpstreamImage {
        reason,
        message: e.to_string(),
    }
}

impl Registry {
    /// The upstream a private repository mirrors: the rule with the longest prefix covering
    /// its name (`ROOT` covers every name, last).
    pub(super) async fn cache_source(
        &self,
        r: &RepositoryRef,
        who: &Principal,
    ) -> Result<Option<Source>> {
        let Some(pt) = &self.pull_through else {
            return Ok(None);
        };
        if r.service != Service::Private {
            return Ok(None);
        }
        let registry_id = r.registry_id.as_deref().unwrap_or(&who.account_id);
        let rules = self.rules(registry_id).await?;
        let best = rules
            .iter()
            .filter_map(|rule| rule.upstream_repository(&r.name).map(|u| (rule, u)))
            .max_by_key(|(rule, _)| {
                if rule.ecr_repository_prefix == "ROOT" {
                    0
                } else {
                    rule.ecr_repository_prefix.len() + 1
                }
            });
        let Some((rule, repository)) = best else {
            return Ok(None);
        };
        let base_url = rules::upstream_base_url(&rule.upstream_registry_url, pt.config.allow_http)?;
        Ok(Some(Source {
            target: UpstreamTarget {
                base_url,
                repository,
                credential_arn: rule.credential_arn.clone(),
            },
            rule_prefix: rule.ecr_repository_prefix.clone(),
            rule_url: rule.upstream_registry_url.clone(),
            rule_version: rule.version,
        }))
    }

    /// The cache's event about a sync of repository `name` of private registry
    /// `registry_id`: SUCCESS, or FAILED with `failure`; `None` if events are not recorded.
    fn sync_event(
        &self,
        registry_id: &str,
        name: &model::RepositoryName,
        source: &Source,
        digest: Option<&Digest>,
        failure: Option<&RegistryError>,
    ) -> Option<storage::ImageEvent> {
        if !self.events {
            return None;
        }
        let mut detail = serde_json::json!({
            "rule-version": source.rule_version.to_string(),
            "sync-status": if failure.is_some() { "FAILED" } else { "SUCCESS" },
            "ecr-repository-prefix": source.rule_prefix,
            "upstream-registry-url": source.rule_url,
        });
        if let Some(e) = failure {
            detail["failure-code"] = failure_code(e).into();
            detail["failure-reason"] = e.to_string().into();
        }
        Some(storage::ImageEvent {
            detail_type: SYNC_EVENT.to_owned(),
            action_type: String::new(),
            service: Service::Private,
            registry_id: registry_id.to_owned(),
            region: None,
            repository: name.clone(),
            digest: digest.cloned(),
            manifest_media_type: None,
            artifact_media_type: None,
            detail: Some(detail.to_string()),
            at: self.now(),
        })
    }

    /// Records a failed sync of `reference` (its event written on its own: nothing changed).
    /// A failure to record it is logged, not returned: the pull's own error matters more.
    async fn record_sync_failure(
        &self,
        registry_id: &str,
        name: &model::RepositoryName,
        source: &Source,
        reference: &Reference,
        error: &RegistryError,
    ) {
        let (digest, tag) = match reference {
            Reference::Digest(d) => (Some(d), None),
            Reference::Tag(t) => (None, Some(t.as_str())),
        };
        let Some(event) = self.sync_event(registry_id, name, source, digest, Some(error)) else {
            return;
        };
        if let Err(e) = self.storage.meta.record_event(&event, tag).await {
            tracing::error!(repository = %name, error = %e, "pull-through cache: a failed sync's event was not recorded");
        }
    }

    /// Creates a cache repository on its first pull: from the registry's PULL_THROUGH_CACHE
    /// creation template whose prefix covers the name, as ECR does, else with default settings.
    async fn create_cache_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryRecord> {
        match self
            .create_repository_from_template(who, r, AppliedFor::PullThroughCache)
            .await
        {
            Ok(Some(repo)) => return Ok(repo),
            Ok(None) => {}
            Err(RegistryError::RepositoryAlreadyExists { .. }) => {
                return self.repository(who, r, "ecr:BatchGetImage").await;
            }
            Err(e) => return Err(e),
        }
        let req = CreateRepository {
            registry_id: r.registry_id.clone(),
            name: r.name.clone(),
            tags: vec![],
            image_tag_mutability: None,
            mutability_exclusions: vec![],
            scan_on_push: false,
            encryption: None,
        };
        match self.create_repository(who, req).await {
            Ok(repo) => Ok(repo),
            Err(RegistryError::RepositoryAlreadyExists { .. }) => {
                self.repository(who, r, "ecr:BatchGetImage").await
            }
            Err(e) => Err(e),
        }
    }

    /// The pull-through side of a manifest read. `repo` is the repository if it exists and
    /// `local` what it holds under `reference`. Answers the image to serve instead of `local`
    /// (fetched on a miss, or a tag that moved upstream), or `None` to go on with `local`:
    /// the repository is not a cache, the reference is a digest already held, the tag was
    /// checked recently, or the upstream could not say and the cached tag is served.
    pub(crate) async fn pull_through_manifest(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        repo: Option<&RepositoryRecord>,
        local: Option<&ImageRecord>,
        reference: &Reference,
    ) -> Result<Option<ImageRecord>> {
        let Some(source) = self.cache_source(r, who).await? else {
            return Ok(None);
        };
        let pt = self.pull_through()?;
        let now = self.now();
        if let Some(local) = local {
            let (Reference::Tag(tag), Some(repo)) = (reference, repo) else {
                return Ok(None);
            };
            let checked = self
                .storage
                .meta
                .repository_setting(repo.id, &checked_setting(tag))
                .await?
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<Millis>().ok())
                .unwrap_or(0);
            if now - checked < pt.config.refresh_millis {
                return Ok(None);
            }
            return match self.fetch_into(repo, &source, reference, 0).await {
                Ok(img) => {
                    self.mark_checked(repo, tag, now).await?;
                    if img.digest != local.digest {
                        tracing::info!(repository = %repo.name, %tag, from = %local.digest, to = %img.digest, "pull-through cache: tag moved upstream");
                    }
                    Ok(Some(img))
                }
                Err(e) => {
                    tracing::warn!(repository = %repo.name, %tag, error = %e, "pull-through cache: upstream unreachable; serving the cached tag");
                    self.record_sync_failure(&repo.registry_id, &repo.name, &source, reference, &e)
                        .await;
                    Ok(None)
                }
            };
        }
        self.authorize(
            who,
            Service::Private,
            r.registry_id.as_deref().unwrap_or(&who.account_id),
            repo,
            &format!("repository/{}", r.name),
            "ecr:BatchImportUpstreamImage",
        )
        .await?;
        let registry_id = r.registry_id.as_deref().unwrap_or(&who.account_id);
        // Fetched before the repository is created: a name the upstream does not have
        // leaves no empty repository behind.
        let manifest = match pt
            .config
            .upstream
            .manifest(&source.target, &reference.to_string())
            .await
        {
            Ok(m) => m,
            Err(UpstreamError::NotFound(_)) => return Ok(None),
            Err(e) => {
                tracing::warn!(repository = %r.name, %reference, error = %e, "pull-through cache: upstream unreachable");
                let e = upstream_error(e);
                self.record_sync_failure(registry_id, &r.name, &source, reference, &e)
                    .await;
                return Err(e);
            }
        };
        let created;
        let repo = match repo {
            Some(repo) => repo,
            None => {
                created = self.create_cache_repository(who, r).await?;
                &created
            }
        };
        let img = match self
            .store_upstream(repo, &source, reference, manifest, 0)
            .await
        {
            Ok(img) => img,
            Err(e) => {
                self.record_sync_failure(registry_id, &r.name, &source, reference, &e)
                    .await;
                return Err(e);
            }
        };
        if let Reference::Tag(tag) = reference {
            self.mark_checked(repo, tag, now).await?;
        }
        Ok(Some(img))
    }

    async fn mark_checked(
        &self,
        repo: &RepositoryRecord,
        tag: &ImageTag,
        now: Millis,
    ) -> Result<()> {
        let at = now.to_string();
        match self
            .storage
            .meta
            .put_repository_settings(repo.id, &[(&checked_setting(tag), Some(at.as_bytes()))])
            .await
        {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn fetch_into(
        &self,
        repo: &RepositoryRecord,
        source: &Source,
        reference: &Reference,
        depth: u32,
    ) -> Result<ImageRecord> {
        let pt = self.pull_through()?;
        let manifest = pt
            .config
            .upstream
            .manifest(&source.target, &reference.to_string())
            .await
            .map_err(upstream_error)?;
        self.store_upstream(repo, source, reference, manifest, depth)
            .await
    }

    /// Verifies a manifest from upstream, fetches the child manifests of an index, and stores
    /// it (with its tag). Its blobs come later, on their first pull. The image pulled (depth
    /// 0, not an index's children) has its SUCCESS event written with it, if it was new or
    /// its tag moved.
    async fn store_upstream(
        &self,
        repo: &RepositoryRecord,
        source: &Source,
        reference: &Reference,
        m: UpstreamManifest,
        depth: u32,
    ) -> Result<ImageRecord> {
        let parsed = manifest::parse(&m.bytes, m.media_type.as_deref())?;
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => DigestAlgorithm::Sha256,
        };
        let digest = Digest::of(algorithm, &m.bytes);
        let expected = match reference {
            Reference::Digest(d) => Some(d.clone()),
            Reference::Tag(_) => m
                .digest
                .as_deref()
                .and_then(|d| Digest::parse(d).ok())
                .filter(|d| d.algorithm() == DigestAlgorithm::Sha256),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(RegistryError::UnableToGetUpstreamImage {
                reason: UpstreamFailure::Unavailable,
                message: format!(
                    "The upstream served a manifest whose digest is {digest}, not {expected}"
                ),
            });
        }
        let meta = &self.storage.meta;
        let mut size = parsed.size;
        for (child, _) in &parsed.children {
            let existing = meta.get_image(repo.id, child).await?;
            let c = match existing {
                Some(c) => c,
                None if depth < MAX_INDEX_DEPTH => {
                    Box::pin(self.fetch_into(
                        repo,
                        source,
                        &Reference::Digest(child.clone()),
                        depth + 1,
                    ))
                    .await?
                }
                None => {
                    return Err(RegistryError::UnableToGetUpstreamImage {
                        reason: UpstreamFailure::Unavailable,
                        message: format!(
                            "The index nests manifests deeper than {MAX_INDEX_DEPTH} levels"
                        ),
                    });
                }
            };
            size = size.max(c.size);
        }
        let image = ImageRecord {
            digest: digest.clone(),
            manifest: m.bytes,
            media_type: parsed.media_type,
            artifact_media_type: parsed.artifact_media_type,
            subject: parsed.subject,
            size,
            pushed_at: self.now(),
            state: Default::default(),
        };
        let refs = ImageReferences {
            blobs: parsed.blobs,
            children: parsed.children.into_iter().map(|(d, _)| d).collect(),
            blobs_may_follow: true,
        };
        let tag = match reference {
            Reference::Tag(t) => Some(TagWrite::Move(t)),
            Reference::Digest(_) => None,
        };
        let event = if depth == 0 {
            self.sync_event(&repo.registry_id, &repo.name, source, Some(&digest), None)
        } else {
            None
        };
        meta.put_image_noting(
            repo.id,
            &image,
            &refs,
            tag,
            usize::MAX,
            event.as_ref(),
            None,
        )
        .await
        .map_err(|e| match e {
            StorageError::NotFound => RegistryError::RepositoryNotFound {
                registry_id: repo.registry_id.clone(),
                name: repo.name.to_string(),
            },
            other => other.into(),
        })?;
        Ok(meta.get_image(repo.id, &digest).await?.unwrap_or(image))
    }
}
