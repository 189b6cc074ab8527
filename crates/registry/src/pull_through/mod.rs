//! Pull-through cache: rules that map a repository prefix of a private registry to an upstream
//! OCI registry (`rules.rs`: CreatePullThroughCacheRule and its siblings), and the pull path
//! that fills a cache repository from the upstream on first pull (`manifests.rs`, and
//! `fill.rs` for blobs). The upstream client itself is the server's (`upstream.rs` here is
//! the trait).
//!
//! Rules live in the metadata store as one registry setting holding the registry's rules (at
//! most 50, as ECR allows), so both engines keep them without a table of their own.

mod fill;
mod manifests;
mod rules;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::RepositoryName;
use serde::{Deserialize, Serialize};
use storage::Millis;

use crate::cache::TtlCache;

pub use fill::PullThroughBlob;
pub use upstream::{Upstream, UpstreamBlob, UpstreamError, UpstreamManifest, UpstreamTarget};

/// Pull-through cache rules per registry (ECR's quota).
pub const MAX_RULES: usize = 50;

/// ECR's refresh interval for cached tags: a tag is checked upstream at most once a day.
pub const DEFAULT_REFRESH_MILLIS: Millis = 24 * 3600 * 1000;

/// The registry setting holding a registry's rules.
const RULES_SETTING: &str = "pull-through-cache/rules";

/// How the pull-through cache behaves (from berth's configuration).
#[derive(Clone)]
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

    /// The cache of another region's registries: the same upstream client and in-flight fills
    /// (a blob is a blob in every region), rules of its own.
    pub(crate) fn for_region(&self) -> Self {
        Self {
            config: self.config.clone(),
            rules: TtlCache::new(std::time::Duration::from_secs(5)),
            fills: self.fills.clone(),
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
    /// 1 when created, one more with each UpdatePullThroughCacheRule: the `rule-version` of
    /// the cache's events (rules stored before it existed read as 1).
    #[serde(default = "first_rule_version")]
    pub version: u64,
}

fn first_rule_version() -> u64 {
    1
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

#[cfg(test)]
mod tests {
    use super::*;

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
            version: 1,
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
