//! Scanning configuration: the registry's scanning rules (GetRegistryScanningConfiguration,
//! PutRegistryScanningConfiguration), what they give each repository
//! (BatchGetRepositoryScanningConfiguration), and the answers of StartImageScan and
//! DescribeImageScanFindings while berth has no vulnerability scanner (a later issue).
//!
//! Rules are stored whole in the registry's settings and applied when read, so a repository
//! created after a rule was set is covered by it at once, as in ECR.

use std::convert::Infallible;

use model::{ImageTag, RepositoryName, wildcard_match};
use serde::{Deserialize, Serialize};
use storage::{ImageRecord, RepositoryRecord};

use crate::images::ImageIdInput;
use crate::{Principal, Registry, RegistryError, RepositoryRef, Result, Service};

/// The registry setting the scanning configuration is stored under, as JSON.
const SETTING: &str = "scanning-configuration";

/// One scanning rule: the repositories its filters match are scanned at its frequency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanningRule {
    pub scan_frequency: String,
    /// WILDCARD filters (the only filter type ECR has), in the order given.
    pub repository_filters: Vec<String>,
}

/// A registry's scanning configuration as PutRegistryScanningConfiguration stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryScanningConfiguration {
    pub scan_type: String,
    pub rules: Vec<ScanningRule>,
}

impl Default for RegistryScanningConfiguration {
    /// A registry that never set one: BASIC scanning and no rules, as ECR answers.
    fn default() -> Self {
        Self {
            scan_type: "BASIC".to_owned(),
            rules: vec![],
        }
    }
}

/// What the registry's rules and the repository's own flag give one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    pub repository: RepositoryRecord,
    pub scan_on_push: bool,
    pub scan_frequency: &'static str,
    /// The filters of the rule that selected the repository and that match its name.
    pub applied_filters: Vec<String>,
}

/// Frequencies in precedence order: a repository two rules select is scanned continuously.
const FREQUENCIES: [&str; 2] = ["CONTINUOUS_SCAN", "SCAN_ON_PUSH"];

impl RegistryScanningConfiguration {
    /// ECR's rules for a configuration: BASIC scanning scans on push only, ENHANCED on push
    /// or continuously; a frequency has one rule (the model allows two rules).
    fn check(&self) -> Result<()> {
        let allowed: &[&str] = match self.scan_type.as_str() {
            "BASIC" => &["SCAN_ON_PUSH"],
            _ => &FREQUENCIES,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            if !allowed.contains(&rule.scan_frequency.as_str()) {
                return Err(RegistryError::InvalidParameter(format!(
                    "Invalid parameter at 'rules.member.scanFrequency' failed to satisfy constraint: 'Scan frequency {} is not supported for scan type {}: use one of [{}]'",
                    rule.scan_frequency,
                    self.scan_type,
                    allowed.join(", ")
                )));
            }
            if self.rules[..i]
                .iter()
                .any(|r| r.scan_frequency == rule.scan_frequency)
            {
                return Err(RegistryError::InvalidParameter(format!(
                    "Invalid parameter at 'rules' failed to satisfy constraint: 'Only one rule may have scan frequency {}'",
                    rule.scan_frequency
                )));
            }
        }
        Ok(())
    }

    /// What this configuration gives a repository. A repository no rule selects keeps its
    /// own scan-on-push flag (CreateRepository, PutImageScanningConfiguration), as
    /// repositories did before registry-level rules existed.
    pub fn apply(&self, repository: RepositoryRecord) -> RepositoryScanning {
        for frequency in FREQUENCIES {
            let matched: Vec<String> = self
                .rules
                .iter()
                .filter(|r| r.scan_frequency == frequency)
                .flat_map(|r| &r.repository_filters)
                .filter(|f| wildcard_match(f, repository.name.as_str()))
                .cloned()
                .collect();
            if !matched.is_empty() {
                return RepositoryScanning {
                    repository,
                    scan_on_push: true,
                    scan_frequency: frequency,
                    applied_filters: matched,
                };
            }
        }
        let scan_on_push = repository.scan_on_push;
        RepositoryScanning {
            repository,
            scan_on_push,
            scan_frequency: if scan_on_push {
                "SCAN_ON_PUSH"
            } else {
                "MANUAL"
            },
            applied_filters: vec![],
        }
    }
}

impl Registry {
    /// The scanning configuration of the caller's private registry.
    pub async fn registry_scanning_configuration(
        &self,
        who: &Principal,
    ) -> Result<(String, RegistryScanningConfiguration)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:GetRegistryScanningConfiguration")
            .await?
            .to_owned();
        let config = self.stored_scanning_configuration(&registry_id).await?;
        Ok((registry_id, config))
    }

    async fn stored_scanning_configuration(
        &self,
        registry_id: &str,
    ) -> Result<RegistryScanningConfiguration> {
        self.setting_value(registry_id, SETTING).await
    }

    /// Replaces the scanning configuration of the caller's private registry.
    pub async fn put_registry_scanning_configuration(
        &self,
        who: &Principal,
        config: RegistryScanningConfiguration,
    ) -> Result<(String, RegistryScanningConfiguration)> {
        config.check()?;
        let registry_id = self
            .authorize_registry(who, None, "ecr:PutRegistryScanningConfiguration")
            .await?
            .to_owned();
        let json = serde_json::to_vec(&config)
            .map_err(|e| RegistryError::InvalidParameter(e.to_string()))?;
        self.storage
            .meta
            .put_registry_settings(
                Service::Private,
                &registry_id,
                &[(SETTING, Some(json.as_slice()))],
            )
            .await?;
        Ok((registry_id, config))
    }

    /// The scanning configuration of each named repository of the caller's registry; the
    /// names of those that do not exist come back apart, as ECR's `failures`.
    pub async fn repository_scanning_configurations(
        &self,
        who: &Principal,
        names: &[RepositoryName],
    ) -> Result<(Vec<RepositoryScanning>, Vec<RepositoryName>)> {
        let config = self.stored_scanning_configuration(&who.account_id).await?;
        let mut found = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in names {
            let r = RepositoryRef {
                service: Service::Private,
                registry_id: None,
                name: name.clone(),
            };
            match self
                .repository(who, &r, "ecr:BatchGetRepositoryScanningConfiguration")
                .await
            {
                Ok(repo) => found.push(config.apply(repo)),
                Err(RegistryError::RepositoryNotFound { .. }) => missing.push(name.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok((found, missing))
    }

    /// StartImageScan. berth has no vulnerability scanner yet, so after the checks ECR makes
    /// (repository, image) it answers as ECR does for an image it cannot scan.
    pub async fn start_image_scan(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: &ImageIdInput,
    ) -> Result<Infallible> {
        self.image_for_scan(who, r, id, "ecr:StartImageScan")
            .await?;
        Err(RegistryError::UnsupportedImageType(
            "The operation is not supported for this image type: this registry has no vulnerability scanner".into(),
        ))
    }

    /// DescribeImageScanFindings: no scan has ever run (see [`Registry::start_image_scan`]),
    /// so an image that exists has no scan to describe.
    pub async fn describe_image_scan_findings(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: &ImageIdInput,
    ) -> Result<Infallible> {
        let (repo, _) = self
            .image_for_scan(who, r, id, "ecr:DescribeImageScanFindings")
            .await?;
        Err(RegistryError::ScanNotFound {
            registry_id: repo.registry_id,
            name: repo.name,
            digest: id.digest.clone(),
            tag: id.tag.clone(),
        })
    }

    /// The image an image id names (its digest, its tag, or both, which must agree).
    async fn image_for_scan(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: &ImageIdInput,
        action: &str,
    ) -> Result<(RepositoryRecord, ImageRecord)> {
        let digest = id
            .digest
            .as_deref()
            .map(model::Digest::parse)
            .transpose()
            .map_err(|_| {
                RegistryError::InvalidParameter(
                    "Invalid parameter at 'imageId.imageDigest' failed to satisfy constraint: 'Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+''".into(),
                )
            })?;
        let tag = id
            .tag
            .as_deref()
            .map(ImageTag::parse)
            .transpose()
            .map_err(|_| {
                RegistryError::InvalidParameter(
                    "Invalid parameter at 'imageId.imageTag' failed to satisfy constraint: 'Invalid request parameters: image tag is not valid'".into(),
                )
            })?;
        if digest.is_none() && tag.is_none() {
            return Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'imageId' failed to satisfy constraint: 'Invalid request parameters: both tag and digest cannot be null'".into(),
            ));
        }
        let repo = self.repository(who, r, action).await?;
        let meta = &self.storage.meta;
        let by_tag = match &tag {
            Some(t) => meta.image_by_tag(repo.id, t).await?,
            None => None,
        };
        let image = match (&digest, by_tag) {
            (Some(d), Some(img)) => Some(img).filter(|img| &img.digest == d),
            (Some(d), None) if tag.is_none() => meta.get_image(repo.id, d).await?,
            (None, img) => img,
            (Some(_), None) => None,
        };
        match image {
            // ECR's ImageArchivedException: "The specified image is archived and cannot be
            // scanned."
            Some(img) if action == "ecr:StartImageScan" && img.state.archived => {
                Err(RegistryError::ImageArchived {
                    registry_id: repo.registry_id,
                    name: repo.name,
                    digest: img.digest,
                    status: "archived",
                })
            }
            Some(img) => Ok((repo, img)),
            None => Err(RegistryError::ImageNotFound {
                registry_id: repo.registry_id,
                name: repo.name,
                digest: id.digest.clone(),
                tag: id.tag.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, scan_on_push: bool) -> RepositoryRecord {
        RepositoryRecord {
            id: storage::RepositoryId(1),
            service: Service::Private,
            registry_id: "123456789012".into(),
            name: RepositoryName::parse(name).unwrap(),
            created_at: 0,
            image_tag_mutability: "MUTABLE".into(),
            mutability_exclusions: vec![],
            scan_on_push,
            encryption_type: "AES256".into(),
            kms_key: None,
            tags: vec![],
            policy: None,
        }
    }

    fn rule(frequency: &str, filters: &[&str]) -> ScanningRule {
        ScanningRule {
            scan_frequency: frequency.into(),
            repository_filters: filters.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn rules_select_repositories_by_wildcard_and_continuous_wins() {
        let config = RegistryScanningConfiguration {
            scan_type: "ENHANCED".into(),
            rules: vec![
                rule("SCAN_ON_PUSH", &["prod/*", "*-svc"]),
                rule("CONTINUOUS_SCAN", &["prod/critical*"]),
            ],
        };
        config.check().unwrap();
        let s = config.apply(repo("prod/web", false));
        assert_eq!((s.scan_frequency, s.scan_on_push), ("SCAN_ON_PUSH", true));
        assert_eq!(s.applied_filters, ["prod/*"]);
        let s = config.apply(repo("prod/critical-db", false));
        assert_eq!(s.scan_frequency, "CONTINUOUS_SCAN");
        assert_eq!(s.applied_filters, ["prod/critical*"]);
        let s = config.apply(repo("dev/app", true));
        assert_eq!((s.scan_frequency, s.scan_on_push), ("SCAN_ON_PUSH", true));
        assert!(s.applied_filters.is_empty());
        let s = config.apply(repo("dev/app", false));
        assert_eq!((s.scan_frequency, s.scan_on_push), ("MANUAL", false));
    }

    #[test]
    fn basic_scanning_scans_on_push_only_and_one_rule_per_frequency() {
        let basic = |rules| RegistryScanningConfiguration {
            scan_type: "BASIC".into(),
            rules,
        };
        assert!(basic(vec![rule("SCAN_ON_PUSH", &["*"])]).check().is_ok());
        assert!(
            basic(vec![rule("CONTINUOUS_SCAN", &["*"])])
                .check()
                .is_err()
        );
        assert!(basic(vec![rule("MANUAL", &["*"])]).check().is_err());
        let twice = RegistryScanningConfiguration {
            scan_type: "ENHANCED".into(),
            rules: vec![rule("SCAN_ON_PUSH", &["a"]), rule("SCAN_ON_PUSH", &["b"])],
        };
        assert!(twice.check().is_err());
    }
}
