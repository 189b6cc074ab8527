//! Pull-through cache: rules that map a repository prefix of a private registry to an upstream
//! OCI registry (CreatePullThroughCacheRule and its siblings), and the pull path that fills a
//! cache repository from the upstream on first pull (`fill.rs` for blobs).
//!
//! Rules live in the metadata store as one registry setting holding the registry's rules (at
//! most 50, as ECR allows), so both engines keep them without a table of their own.

mod fill;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::{Digest, DigestAlgorithm, ImageTag, Reference, RepositoryName};
use serde::{Deserialize, Serialize};
use storage::{ImageRecord, ImageReferences, Millis, RepositoryRecord, StorageError, TagWrite};

use crate::cache::TtlCache;
use crate::pagination::{Page, PageToken, finish_page};
use crate::{
    CreateRepository, Principal, Registry, RegistryError, RepositoryRef, Result, Service, manifest,
};

pub use fill::PullThroughBlob;
pub use upstream::{Upstream, UpstreamBlob, UpstreamError, UpstreamManifest, UpstreamTarget};

/// Pull-through cache rules per registry (ECR's quota).
pub const MAX_RULES: usize = 50;

/// ECR's refresh interval for cached tags: a tag is checked upstream at most once a day.
pub const DEFAULT_REFRESH_MILLIS: Millis = 24 * 3600 * 1000;

/// Manifests of an index nested deeper than this are not fetched (an index of indexes is
/// legal, but none of the registries berth mirrors serves one deeper than two levels).
const MAX_INDEX_DEPTH: u32 = 2;

/// The registry setting holding a registry's rules.
const RULES_SETTING: &str = "pull-through-cache/rules";

/// The repository setting recording when a tag was last checked upstream.
fn checked_setting(tag: &ImageTag) -> String {
    format!("pull-through-cache/checked/{tag}")
}

/// How the pull-through cache behaves (from berth's configuration).
pub struct PullThroughConfig {
    pub upstream: Arc<dyn Upstream>,
    /// A cached tag is checked upstream at most this often.
    pub refresh_millis: Millis,
    /// Whether `http://` upstreams other than loopback are allowed.
    pub allow_http: bool,
}

pub(crate) struct PullThrough {
    config: PullThroughConfig,
    /// Rules by registry id: every manifest miss and tag read in a private registry looks
    /// them up.
    rules: TtlCache<Arc<Vec<PullThroughCacheRule>>>,
    /// Blob fills in progress on this node, by digest: a second first pull of the blob waits
    /// for the first instead of fetching it again.
    fills: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl PullThrough {
    pub(crate) fn new(config: PullThroughConfig) -> Self {
        Self {
            config,
            rules: TtlCache::new(std::time::Duration::from_secs(5)),
            fills: Arc::default(),
        }
    }
}

/// A pull-through cache rule as stored and as the operations answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullThroughCacheRule {
    pub registry_id: String,
    /// Without a trailing `/`; `ROOT` for every repository of the registry.
    pub ecr_repository_prefix: String,
    /// As given in the request.
    pub upstream_registry_url: String,
    pub upstream_registry: Option<String>,
    /// `ROOT` (the default) or a path prefixed to repository names at the upstream.
    pub upstream_repository_prefix: String,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// CreatePullThroughCacheRule's input.
#[derive(Debug, Clone)]
pub struct CreatePullThroughCacheRule {
    pub registry_id: Option<String>,
    pub ecr_repository_prefix: String,
    pub upstream_registry_url: String,
    pub upstream_registry: Option<String>,
    pub upstream_repository_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
}

/// ValidatePullThroughCacheRule's answer.
#[derive(Debug, Clone)]
pub struct RuleValidation {
    pub rule: PullThroughCacheRule,
    pub failure: Option<String>,
}

/// Why an image could not be fetched from the upstream (BatchGetImage's failure codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    AccessDenied,
    TooManyRequests,
    Unavailable,
}

/// `ecr-public/` and `ecr-public` name the same prefix (ECR: "There is always an assumed `/`
/// applied to the end of the prefix").
fn normalise_prefix(p: &str) -> String {
    p.trim_end_matches('/').to_owned()
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `upstreamRegistryUrl` as `scheme://host[:port]`: a bare host (ECR's form) means https;
/// `http://` is accepted for loopback hosts, or any host when allowed. Anything with a path,
/// query, user info or an odd host is refused.
pub(crate) fn upstream_base_url(url: &str, allow_http: bool) -> Result<String> {
    let unsupported = |why: &str| {
        RegistryError::UnsupportedUpstreamRegistry(format!(
            "The upstream registry URL '{url}' is not supported: {why}"
        ))
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((s, rest)) => (s.to_ascii_lowercase(), rest),
        None => ("https".to_owned(), url),
    };
    if scheme != "https" && scheme != "http" {
        return Err(unsupported("the scheme must be https or http"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
        || authority.len() > 255
    {
        return Err(unsupported(
            "it must be a registry host, optionally with a scheme and port",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(unsupported("the port is not valid"));
    }
    let host_ok = if host.starts_with('[') {
        host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
    } else {
        !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if !host_ok {
        return Err(unsupported("the host is not valid"));
    }
    if scheme == "http" && !allow_http && !is_loopback(host) {
        return Err(unsupported(
            "http is allowed only for loopback hosts unless the server allows http upstreams",
        ));
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

impl PullThroughCacheRule {
    /// The upstream repository for a repository of this rule, or `None` if the rule does not
    /// cover it.
    fn upstream_repository(&self, name: &RepositoryName) -> Option<String> {
        let rest = if self.ecr_repository_prefix == "ROOT" {
            name.as_str()
        } else {
            name.as_str()
                .strip_prefix(self.ecr_repository_prefix.as_str())?
                .strip_prefix('/')?
        };
        if rest.is_empty() {
            return None;
        }
        Some(if self.upstream_repository_prefix == "ROOT" {
            rest.to_owned()
        } else {
            format!(
                "{}/{rest}",
                self.upstream_repository_prefix.trim_end_matches('/')
            )
        })
    }
}

impl Registry {
    fn pull_through(&self) -> Result<&PullThrough> {
        self.pull_through.as_ref().ok_or_else(|| {
            RegistryError::UnsupportedUpstreamRegistry(
                "This berth has no pull-through cache client configured".into(),
            )
        })
    }

    /// The registry's rules, in prefix order.
    async fn rules(&self, registry_id: &str) -> Result<Arc<Vec<PullThroughCacheRule>>> {
        let Some(pt) = &self.pull_through else {
            return Ok(Arc::default());
        };
        let generation = match pt.rules.get(registry_id) {
            Ok(rules) => return Ok(rules),
            Err(g) => g,
        };
        let rules = Arc::new(self.stored_rules(registry_id).await?);
        pt.rules
            .put(registry_id.to_owned(), generation, rules.clone());
        Ok(rules)
    }

    async fn stored_rules(&self, registry_id: &str) -> Result<Vec<PullThroughCacheRule>> {
        let raw = self
            .storage
            .meta
            .registry_setting(Service::Private, registry_id, RULES_SETTING)
            .await?;
        Ok(match raw {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Storage(StorageError::Other(
                    format!("stored pull-through cache rules do not parse: {e}").into(),
                ))
            })?,
            None => Vec::new(),
        })
    }

    async fn save_rules(
        &self,
        registry_id: &str,
        rules: &mut [PullThroughCacheRule],
    ) -> Result<()> {
        rules.sort_by(|a, b| a.ecr_repository_prefix.cmp(&b.ecr_repository_prefix));
        let bytes = serde_json::to_vec(rules).map_err(|e| {
            RegistryError::Storage(StorageError::Other(format!("encoding rules: {e}").into()))
        })?;
        self.storage
            .meta
            .put_registry_settings(
                Service::Private,
                registry_id,
                &[(RULES_SETTING, Some(bytes.as_slice()))],
            )
            .await?;
        if let Some(pt) = &self.pull_through {
            pt.rules.forget(registry_id);
        }
        Ok(())
    }

    /// Authorizes a rule operation (resource `*` of the registry, as ECR's rules are
    /// registry-wide) and answers the registry id.
    async fn authorize_rules<'a>(
        &self,
        who: &'a Principal,
        registry_id: Option<&'a str>,
        action: &str,
    ) -> Result<&'a str> {
        let registry_id = registry_id.unwrap_or(&who.account_id);
        self.authorize(
            who,
            Service::Private,
            registry_id,
            None,
            "repository/*",
            action,
        )
        .await?;
        Ok(registry_id)
    }

    fn check_secret(&self, arn: Option<&str>) -> Result<()> {
        let Some(arn) = arn else { return Ok(()) };
        match self.pull_through()?.config.upstream.check_secret(arn) {
            Ok(()) => Ok(()),
            Err(UpstreamError::SecretNotFound(m)) => Err(RegistryError::SecretNotFound(m)),
            Err(e) => Err(RegistryError::UnableToAccessSecret(e.to_string())),
        }
    }

    /// Serialises rule changes made through this process, so that two concurrent creates do
    /// not both read the list and drop each other's rule (across nodes, see README).
    async fn rules_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.rules_write.lock().await
    }

    pub async fn create_pull_through_cache_rule(
        &self,
        who: &Principal,
        req: CreatePullThroughCacheRule,
    ) -> Result<PullThroughCacheRule> {
        let registry_id = self
            .authorize_rules(
                who,
                req.registry_id.as_deref(),
                "ecr:CreatePullThroughCacheRule",
            )
            .await?
            .to_owned();
        let pt = self.pull_through()?;
        upstream_base_url(&req.upstream_registry_url, pt.config.allow_http)?;
        self.check_secret(req.credential_arn.as_deref())?;
        let prefix = normalise_prefix(&req.ecr_repository_prefix);
        let _guard = self.rules_lock().await;
        let mut rules = self.stored_rules(&registry_id).await?;
        if rules.iter().any(|r| r.ecr_repository_prefix == prefix) {
            return Err(RegistryError::PullThroughCacheRuleAlreadyExists {
                registry_id,
                prefix,
            });
        }
        if rules.len() >= MAX_RULES {
            return Err(RegistryError::LimitExceeded(format!(
                "The maximum number of pull through cache rules ({MAX_RULES}) for the registry with id '{registry_id}' has been reached"
            )));
        }
        let now = self.now();
        let rule = PullThroughCacheRule {
            registry_id: registry_id.clone(),
            ecr_repository_prefix: prefix,
            upstream_registry_url: req.upstream_registry_url,
            upstream_registry: req.upstream_registry,
            upstream_repository_prefix: req
                .upstream_repository_prefix
                .map_or_else(|| "ROOT".to_owned(), |p| normalise_prefix(&p)),
            credential_arn: req.credential_arn,
            custom_role_arn: req.custom_role_arn,
            created_at: now,
            updated_at: now,
        };
        rules.push(rule.clone());
        self.save_rules(&registry_id, &mut rules).await?;
        Ok(rule)
    }

    fn rule_not_found(registry_id: &str, prefix: &str) -> RegistryError {
        RegistryError::PullThroughCacheRuleNotFound {
            registry_id: registry_id.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// DescribePullThroughCacheRules: the named rules (each must exist), or a page of all.
    pub async fn describe_pull_through_cache_rules(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        prefixes: Option<&[String]>,
        page: Page,
    ) -> Result<(Vec<PullThroughCacheRule>, Option<PageToken>)> {
        let registry_id = self
            .authorize_rules(who, registry_id, "ecr:DescribePullThroughCacheRules")
            .await?;
        let rules = self.stored_rules(registry_id).await?;
        let mut chosen: Vec<PullThroughCacheRule> = match prefixes {
            Some(prefixes) => {
                let mut out = Vec::new();
                for p in prefixes {
                    let p = normalise_prefix(p);
                    let rule = rules
                        .iter()
                        .find(|r| r.ecr_repository_prefix == p)
                        .ok_or_else(|| Self::rule_not_found(registry_id, &p))?;
                    if !out.contains(rule) {
                        out.push(rule.clone());
                    }
                }
                out.sort_by(|a, b| a.ecr_repository_prefix.cmp(&b.ecr_repository_prefix));
                out
            }
            None => rules,
        };
        if let Some([after]) = page.after_key::<1>(|_| true)? {
            chosen.retain(|r| r.ecr_repository_prefix.as_str() > after);
        }
        Ok(finish_page(chosen, page.limit, |r| {
            PageToken::new(&[r.ecr_repository_prefix.as_str()])
        }))
    }

    /// UpdatePullThroughCacheRule: sets (or, when `None`, keeps) the credentials and role.
    pub async fn update_pull_through_cache_rule(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        prefix: &str,
        credential_arn: Option<String>,
        custom_role_arn: Option<String>,
    ) -> Result<PullThroughCacheRule> {
        let registry_id = self
            .authorize_rules(who, registry_id, "ecr:UpdatePullThroughCacheRule")
            .await?;
        self.pull_through()?;
        self.check_secret(credential_arn.as_deref())?;
        let prefix = normalise_prefix(prefix);
        let _guard = self.rules_lock().await;
        let mut rules = self.stored_rules(registry_id).await?;
        let rule = rules
            .iter_mut()
            .find(|r| r.ecr_repository_prefix == prefix)
            .ok_or_else(|| Self::rule_not_found(registry_id, &prefix))?;
        if credential_arn.is_some() {
            rule.credential_arn = credential_arn;
        }
        if custom_role_arn.is_some() {
            rule.custom_role_arn = custom_role_arn;
        }
        rule.updated_at = self.now();
        let updated = rule.clone();
        self.save_rules(registry_id, &mut rules).await?;
        Ok(updated)
    }

    /// DeletePullThroughCacheRule: the rule goes; the repositories it filled stay, as in ECR.
    pub async fn delete_pull_through_cache_rule(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        prefix: &str,
    ) -> Result<PullThroughCacheRule> {
        let registry_id = self
            .authorize_rules(who, registry_id, "ecr:DeletePullThroughCacheRule")
            .await?;
        let prefix = normalise_prefix(prefix);
        let _guard = self.rules_lock().await;
        let mut rules = self.stored_rules(registry_id).await?;
        let at = rules
            .iter()
            .position(|r| r.ecr_repository_prefix == prefix)
            .ok_or_else(|| Self::rule_not_found(registry_id, &prefix))?;
        let removed = rules.remove(at);
        self.save_rules(registry_id, &mut rules).await?;
        Ok(removed)
    }

    /// ValidatePullThroughCacheRule: reaches the upstream's `/v2/` with the rule's
    /// credentials and says why not, if not.
    pub async fn validate_pull_through_cache_rule(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        prefix: &str,
    ) -> Result<RuleValidation> {
        let registry_id = self
            .authorize_rules(who, registry_id, "ecr:ValidatePullThroughCacheRule")
            .await?;
        let prefix = normalise_prefix(prefix);
        let rule = self
            .stored_rules(registry_id)
            .await?
            .into_iter()
            .find(|r| r.ecr_repository_prefix == prefix)
            .ok_or_else(|| Self::rule_not_found(registry_id, &prefix))?;
        let pt = self.pull_through()?;
        let failure = match upstream_base_url(&rule.upstream_registry_url, pt.config.allow_http) {
            Err(e) => Some(e.to_string()),
            Ok(base_url) => {
                let target = UpstreamTarget {
                    base_url,
                    repository: String::new(),
                    credential_arn: rule.credential_arn.clone(),
                };
                pt.config
                    .upstream
                    .ping(&target)
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
        };
        Ok(RuleValidation { rule, failure })
    }
}

/// The rule covering a repository and where its images come from upstream.
struct Source {
    target: UpstreamTarget,
}

fn upstream_error(e: UpstreamError) -> RegistryError {
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
    async fn cache_source(&self, r: &RepositoryRef, who: &Principal) -> Result<Option<Source>> {
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
        let base_url = upstream_base_url(&rule.upstream_registry_url, pt.config.allow_http)?;
        Ok(Some(Source {
            target: UpstreamTarget {
                base_url,
                repository,
                credential_arn: rule.credential_arn.clone(),
            },
        }))
    }

    /// Creates a cache repository on its first pull, with default settings.
    // TODO(#16): create it from a PULL_THROUGH_CACHE repository creation template once those
    // exist (the ecr-ops2 work); this is the one place to swap.
    async fn create_cache_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryRecord> {
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
                return Err(upstream_error(e));
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
        let img = self
            .store_upstream(repo, &source, reference, manifest, 0)
            .await?;
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
    /// it (with its tag). Its blobs come later, on their first pull.
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
        meta.put_image(repo.id, &image, &refs, tag)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_take_hosts_and_refuse_http_off_loopback() {
        assert_eq!(
            upstream_base_url("registry-1.docker.io", false).unwrap(),
            "https://registry-1.docker.io"
        );
        assert_eq!(
            upstream_base_url("https://Quay.io/", false).unwrap(),
            "https://quay.io"
        );
        assert_eq!(
            upstream_base_url("http://127.0.0.1:5000", false).unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            upstream_base_url("http://[::1]:5000", false).unwrap(),
            "http://[::1]:5000"
        );
        assert!(upstream_base_url("http://mirror.example", false).is_err());
        assert!(upstream_base_url("http://mirror.example", true).is_ok());
        for bad in [
            "",
            "ftp://x",
            "https://x/path",
            "https://u:p@x",
            "https://x:0",
            "https://x:99999",
            "https://x?y",
            "https://bad_host",
            "https://a..b",
        ] {
            assert!(upstream_base_url(bad, true).is_err(), "{bad}");
        }
    }

    fn rule(prefix: &str, upstream_prefix: &str) -> PullThroughCacheRule {
        PullThroughCacheRule {
            registry_id: "123456789012".into(),
            ecr_repository_prefix: prefix.into(),
            upstream_registry_url: "quay.io".into(),
            upstream_registry: None,
            upstream_repository_prefix: upstream_prefix.into(),
            credential_arn: None,
            custom_role_arn: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn repository_names_map_to_upstream_paths() {
        let name = |s: &str| RepositoryName::parse(s).unwrap();
        let r = rule("hub", "ROOT");
        assert_eq!(
            r.upstream_repository(&name("hub/library/alpine"))
                .as_deref(),
            Some("library/alpine")
        );
        assert_eq!(r.upstream_repository(&name("hubx/alpine")), None);
        assert_eq!(r.upstream_repository(&name("hub")), None);
        let r = rule("hub", "library");
        assert_eq!(
            r.upstream_repository(&name("hub/alpine")).as_deref(),
            Some("library/alpine")
        );
        let r = rule("ROOT", "ROOT");
        assert_eq!(r.upstream_repository(&name("app")).as_deref(), Some("app"));
    }
}
