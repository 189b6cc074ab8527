//! The rule operations: CreatePullThroughCacheRule, DescribePullThroughCacheRules,
//! UpdatePullThroughCacheRule, DeletePullThroughCacheRule and ValidatePullThroughCacheRule,
//! with ECR's limits and errors, on rules stored as one registry setting.

use std::sync::Arc;

use super::{
    CreatePullThroughCacheRule, MAX_RULES, PullThrough, PullThroughCacheRule, RULES_SETTING,
    RuleValidation, UpstreamError, UpstreamTarget, first_rule_version,
};
use crate::pagination::{Page, PageToken, finish_page};
use crate::{Principal, Registry, RegistryError, Result};

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
pub(super) fn upstream_base_url(url: &str, allow_http: bool) -> Result<String> {
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

impl Registry {
    pub(super) fn pull_through(&self) -> Result<&PullThrough> {
        self.pull_through.as_ref().ok_or_else(|| {
            RegistryError::UnsupportedUpstreamRegistry(
                "This berth has no pull-through cache client configured".into(),
            )
        })
    }

    /// The registry's rules, in prefix order.
    pub(super) async fn rules(&self, registry_id: &str) -> Result<Arc<Vec<PullThroughCacheRule>>> {
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
        self.setting_value(registry_id, RULES_SETTING).await
    }

    /// Changes the registry's rules (kept sorted by prefix) safely across nodes, see
    /// `modify_setting_list`, then drops this node's cached copy.
    async fn change_rules<R>(
        &self,
        registry_id: &str,
        mut change: impl FnMut(&mut Vec<PullThroughCacheRule>) -> Result<R>,
    ) -> Result<R> {
        let out = self
            .modify_setting_list(registry_id, RULES_SETTING, |rules| {
                let out = change(rules)?;
                rules.sort_by(|a, b| a.ecr_repository_prefix.cmp(&b.ecr_repository_prefix));
                Ok(out)
            })
            .await?;
        if let Some(pt) = &self.pull_through {
            pt.rules.forget(registry_id);
        }
        Ok(out)
    }

    fn check_secret(&self, arn: Option<&str>) -> Result<()> {
        let Some(arn) = arn else { return Ok(()) };
        match self.pull_through()?.config.upstream.check_secret(arn) {
            Ok(()) => Ok(()),
            Err(UpstreamError::SecretNotFound(m)) => Err(RegistryError::SecretNotFound(m)),
            Err(e) => Err(RegistryError::UnableToAccessSecret(e.to_string())),
        }
    }

    pub async fn create_pull_through_cache_rule(
        &self,
        who: &Principal,
        req: CreatePullThroughCacheRule,
    ) -> Result<PullThroughCacheRule> {
        let registry_id = self
            .authorize_registry(
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
            version: first_rule_version(),
        };
        self.change_rules(&registry_id, |rules| {
            if rules
                .iter()
                .any(|r| r.ecr_repository_prefix == rule.ecr_repository_prefix)
            {
                return Err(RegistryError::PullThroughCacheRuleAlreadyExists {
                    registry_id: registry_id.clone(),
                    prefix: rule.ecr_repository_prefix.clone(),
                });
            }
            if rules.len() >= MAX_RULES {
                return Err(RegistryError::LimitExceeded(format!(
                    "The maximum number of pull through cache rules ({MAX_RULES}) for the registry with id '{registry_id}' has been reached"
                )));
            }
            rules.push(rule.clone());
            Ok(())
        })
        .await?;
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
            .authorize_registry(who, registry_id, "ecr:DescribePullThroughCacheRules")
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
            .authorize_registry(who, registry_id, "ecr:UpdatePullThroughCacheRule")
            .await?;
        self.pull_through()?;
        self.check_secret(credential_arn.as_deref())?;
        let prefix = normalise_prefix(prefix);
        let now = self.now();
        self.change_rules(registry_id, |rules| {
            let rule = rules
                .iter_mut()
                .find(|r| r.ecr_repository_prefix == prefix)
                .ok_or_else(|| Self::rule_not_found(registry_id, &prefix))?;
            if credential_arn.is_some() {
                rule.credential_arn = credential_arn.clone();
            }
            if custom_role_arn.is_some() {
                rule.custom_role_arn = custom_role_arn.clone();
            }
            rule.updated_at = now;
            rule.version += 1;
            Ok(rule.clone())
        })
        .await
    }

    /// DeletePullThroughCacheRule: the rule goes; the repositories it filled stay, as in ECR.
    pub async fn delete_pull_through_cache_rule(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        prefix: &str,
    ) -> Result<PullThroughCacheRule> {
        let registry_id = self
            .authorize_registry(who, registry_id, "ecr:DeletePullThroughCacheRule")
            .await?;
        let prefix = normalise_prefix(prefix);
        self.change_rules(registry_id, |rules| {
            let at = rules
                .iter()
                .position(|r| r.ecr_repository_prefix == prefix)
                .ok_or_else(|| Self::rule_not_found(registry_id, &prefix))?;
            Ok(rules.remove(at))
        })
        .await
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
            .authorize_registry(who, registry_id, "ecr:ValidatePullThroughCacheRule")
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
}
