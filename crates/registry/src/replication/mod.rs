//! Replication (ECR's PutReplicationConfiguration, DescribeRegistry's rules and
//! DescribeImageReplicationStatus): a private registry's rules copy each image pushed to a
//! matching repository to other registries.
//!
//! - The configuration is one registry setting, replaced as a whole, as ECR does.
//! - A push that a rule matches writes one row per destination in the push's own transaction
//!   (`MetaStore::put_image_noting`), so that no committed push loses its replication and no
//!   refused push has any. The server's job (`berth::replication`) runs [`Registry::replicate_due`]
//!   under a lease: any node may, and a killed node's rows are taken up after its lease ends.
//! - A destination is `(region, registryId)`. One configured as a remote
//!   ([`ReplicationRemote`], `[[replication-remotes]]`) is another registry reached over `/v2`;
//!   any other must be a registry of this deployment (`copy.rs`,
//!   [`Registry::write_local_replica`]).
//! - Each destination's outcome, COMPLETE or FAILED, is recorded with its "ECR Replication
//!   Action" event in one transaction (`MetaStore::finish_replication`), when events are on.
//! - Deletes are not replicated, and replicas are not replicated further (ECR's behaviour;
//!   it also keeps two registries that replicate to each other from looping).

mod copy;
mod remote;

use model::{Digest, ImageTag, RepositoryName};
use serde::{Deserialize, Serialize};
use storage::{ReplicationDestination, ReplicationStatusRecord, ReplicationWork, RepositoryRecord};

use crate::{Principal, Registry, RegistryError, RepositoryRef, Result, Service};

pub use copy::{ReplicationFailure, ReplicationRetry};

/// Finds the registry of a region of this deployment (`None`: the home region); `None` for a
/// region it does not serve. Replication runs each row in its source's region and writes into
/// its destination's.
pub type RegionLookup<'a> =
    &'a (dyn Fn(Option<&str>) -> Option<std::sync::Arc<Registry>> + Send + Sync);
pub use remote::{BlobSource, ReplicationRemote};

/// The registry setting holding a registry's replication configuration (JSON).
const SETTING: &str = "replication-configuration";

/// ECR's quota of unique destinations over all rules (ecr-api.md section 5: unconfirmed).
pub const MAX_UNIQUE_DESTINATIONS: usize = 25;

/// A registry's replication configuration, as PutReplicationConfiguration takes it and
/// DescribeRegistry answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfiguration {
    pub rules: Vec<ReplicationRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    pub destinations: Vec<Destination>,
    /// `None`: the rule covers every repository. Every filter is `PREFIX_MATCH` (the model's
    /// only type, checked before this).
    pub repository_filters: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Destination {
    pub region: String,
    pub registry_id: String,
}

impl From<&Destination> for ReplicationDestination {
    fn from(d: &Destination) -> Self {
        ReplicationDestination {
            region: d.region.clone(),
            registry_id: d.registry_id.clone(),
        }
    }
}

impl ReplicationRule {
    fn covers(&self, name: &RepositoryName) -> bool {
        self.repository_filters
            .as_ref()
            .is_none_or(|fs| fs.iter().any(|f| name.as_str().starts_with(f.as_str())))
    }
}

impl ReplicationConfiguration {
    /// The destinations a push to `name` goes to: those of every rule that covers it, each
    /// once, in order.
    pub fn destinations_for(&self, name: &RepositoryName) -> Vec<ReplicationDestination> {
        let mut out: Vec<ReplicationDestination> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.covers(name)) {
            for d in &rule.destinations {
                let d = ReplicationDestination::from(d);
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }
}

fn invalid(what: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: '{what}'"
    ))
}

/// An image's replication status per destination (DescribeImageReplicationStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReplicationStatus {
    pub digest: Digest,
    pub tag: Option<ImageTag>,
    pub statuses: Vec<ReplicationStatusRecord>,
}

impl Registry {
    /// Serves replication destinations that are not registries of this deployment through
    /// `remote` (`[[replication-remotes]]`).
    pub fn with_replication_remote(
        mut self,
        remote: Option<std::sync::Arc<dyn ReplicationRemote>>,
    ) -> Self {
        self.replication_remote = remote;
        self
    }

    /// Whether this deployment can deliver to `d`: a configured remote, or a registry of a
    /// region it serves (another account, or any account in another region).
    fn check_destination(&self, d: &Destination, source: &str) -> Result<()> {
        let dest = ReplicationDestination::from(d);
        if self
            .replication_remote
            .as_ref()
            .is_some_and(|r| r.serves(&dest))
        {
            return Ok(());
        }
        if !self.serves_region(&d.region) {
            return Err(invalid(&format!(
                "Replication destination region '{}' is not served by this deployment, and no [[replication-remotes]] entry names region '{}' with registry '{}'",
                d.region, d.region, d.registry_id
            )));
        }
        if d.registry_id == source && d.region == self.region {
            return Err(invalid(
                "Replication destination cannot be the same as the source registry",
            ));
        }
        Ok(())
    }

    /// PutReplicationConfiguration: replaces the caller's registry's configuration. The
    /// model's constraints were checked by the front end; these are ECR's own rules and
    /// berth's limits on where it can deliver. Nothing is stored when one fails.
    pub async fn put_replication_configuration(
        &self,
        who: &Principal,
        config: ReplicationConfiguration,
    ) -> Result<ReplicationConfiguration> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:PutReplicationConfiguration")
            .await?
            .to_owned();
        let mut unique: Vec<&Destination> = Vec::new();
        for rule in &config.rules {
            for d in &rule.destinations {
                self.check_destination(d, &registry_id)?;
                if !unique.contains(&d) {
                    unique.push(d);
                }
            }
        }
        if unique.len() > MAX_UNIQUE_DESTINATIONS {
            return Err(invalid(&format!(
                "Number of unique replication destinations must be less than or equal to {MAX_UNIQUE_DESTINATIONS}"
            )));
        }
        let bytes = serde_json::to_vec(&config).expect("plain data serializes");
        self.storage
            .meta
            .put_registry_settings(Service::Private, &registry_id, &[(SETTING, Some(&bytes))])
            .await?;
        Ok(config)
    }

    /// The stored configuration of a private registry (empty if none was put).
    pub(crate) async fn replication_configuration(
        &self,
        registry_id: &str,
    ) -> Result<ReplicationConfiguration> {
        // Written by this module after its checks; unreadable bytes replicate nothing.
        self.setting_value(registry_id, SETTING).await
    }

    /// DescribeRegistry's `replicationConfiguration` for the caller's registry, once cleared
    /// by [`Registry::describe_registry`].
    pub async fn describe_replication_configuration(
        &self,
        who: &Principal,
    ) -> Result<ReplicationConfiguration> {
        self.replication_configuration(&who.account_id).await
    }

    /// The replication a push to `repo` asks for, if any rule covers it. ECR Public has no
    /// replication.
    pub(crate) async fn replication_work(
        &self,
        repo: &RepositoryRecord,
    ) -> Result<Option<ReplicationWork>> {
        if repo.service != Service::Private {
            return Ok(None);
        }
        let config = self.replication_configuration(&repo.registry_id).await?;
        let destinations = config.destinations_for(&repo.name);
        Ok((!destinations.is_empty()).then(|| ReplicationWork {
            registry_id: repo.registry_id.clone(),
            repository: repo.name.clone(),
            destinations,
        }))
    }

    /// DescribeImageReplicationStatus: the latest status of the image (by digest or tag) at
    /// each destination it was replicated to.
    pub async fn describe_image_replication_status(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        digest: Option<&str>,
        tag: Option<&str>,
    ) -> Result<ImageReplicationStatus> {
        let repo = self
            .repository(who, r, "ecr:DescribeImageReplicationStatus")
            .await?;
        let not_found = || RegistryError::ImageNotFound {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            digest: digest.map(str::to_owned),
            tag: tag.map(str::to_owned),
        };
        let meta = &self.storage.meta;
        let parsed_tag = match tag {
            Some(t) => Some(ImageTag::parse(t).map_err(|_| not_found())?),
            None => None,
        };
        let by_tag = match &parsed_tag {
            Some(t) => Some(meta.resolve_tag(repo.id, t).await?.ok_or_else(not_found)?),
            None => None,
        };
        let digest = match (digest, by_tag) {
            (Some(d), by_tag) => {
                let d = Digest::parse(d).map_err(|_| {
                    RegistryError::InvalidParameter(
                        "Invalid parameter at 'imageId.imageDigest' failed to satisfy constraint: 'Member must satisfy regular expression pattern: [a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into(),
                    )
                })?;
                if by_tag.is_some_and(|t| t != d) || meta.get_image(repo.id, &d).await?.is_none() {
                    return Err(not_found());
                }
                d
            }
            (None, Some(d)) => d,
            (None, None) => {
                return Err(RegistryError::InvalidParameter(
                    "Invalid parameter at 'imageId' failed to satisfy constraint: 'Member must have either imageDigest or imageTag'".into(),
                ));
            }
        };
        let statuses = meta.replication_statuses(repo.id, &digest).await?;
        Ok(ImageReplicationStatus {
            digest,
            tag: parsed_tag,
            statuses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(region: &str, id: &str) -> Destination {
        Destination {
            region: region.into(),
            registry_id: id.into(),
        }
    }

    #[test]
    fn rules_cover_repositories_by_prefix_and_destinations_come_once() {
        let config = ReplicationConfiguration {
            rules: vec![
                ReplicationRule {
                    destinations: vec![dest("eu-west-1", "111111111111")],
                    repository_filters: Some(vec!["prod".into(), "team/".into()]),
                },
                ReplicationRule {
                    destinations: vec![
                        dest("eu-west-1", "111111111111"),
                        dest("eu-west-1", "222222222222"),
                    ],
                    repository_filters: None,
                },
            ],
        };
        let name = |s: &str| RepositoryName::parse(s).unwrap();
        let regions = |n: &str| {
            config
                .destinations_for(&name(n))
                .into_iter()
                .map(|d| d.registry_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(regions("production/app"), ["111111111111", "222222222222"]);
        assert_eq!(regions("team/app"), ["111111111111", "222222222222"]);
        assert_eq!(regions("other"), ["111111111111", "222222222222"]);
        let only_filtered = ReplicationConfiguration {
            rules: vec![config.rules[0].clone()],
        };
        assert!(
            only_filtered
                .destinations_for(&name("teams/app"))
                .is_empty()
        );
        assert_eq!(only_filtered.destinations_for(&name("prod")).len(), 1);
    }
}
