//! Repository creation templates (CreateRepositoryCreationTemplate,
//! DescribeRepositoryCreationTemplates, UpdateRepositoryCreationTemplate,
//! DeleteRepositoryCreationTemplate) and the one function that creates a repository from
//! the template matching its name: `/v2` create-on-push calls it today, the pull-through
//! cache and replication will call it with their own [`AppliedFor`].
//!
//! A registry's templates are few (ECR allows 50) and read together, so they are stored
//! together, as one JSON value in the registry's settings, changed through
//! `modify_setting_list` (a compare-and-swap, retried), so that nodes changing templates at the
//! same time do not lose each other's changes.

use model::RepositoryName;
use serde::{Deserialize, Serialize};
use storage::{Millis, MutabilityExclusion, RepositoryRecord, ResourceTag, StorageError};

use crate::lifecycle::{LifecyclePolicy, POLICY as LIFECYCLE_POLICY};
use crate::policies::invalid_policy;
use crate::policy::Policy;
use crate::repositories::{MAX_RESOURCE_TAGS, check_exclusions};
use crate::{
    CreateRepository, EncryptionConfiguration, Page, PageToken, Principal, Registry, RegistryError,
    RepositoryRef, Result, Service,
};

/// Templates per registry (ECR's quota); LimitExceededException past it.
pub const MAX_CREATION_TEMPLATES: usize = 50;

/// The registry setting the templates are stored under.
const SETTING: &str = "creation-templates";

/// The prefix of the template that applies to every repository no other template matches.
const ROOT: &str = "ROOT";

/// What creates a repository from a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedFor {
    Replication,
    PullThroughCache,
    CreateOnPush,
}

impl AppliedFor {
    pub fn as_str(self) -> &'static str {
        match self {
            AppliedFor::Replication => "REPLICATION",
            AppliedFor::PullThroughCache => "PULL_THROUGH_CACHE",
            AppliedFor::CreateOnPush => "CREATE_ON_PUSH",
        }
    }
}

/// A stored template, with ECR's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationTemplate {
    pub prefix: String,
    pub description: Option<String>,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub resource_tags: Vec<(String, String)>,
    pub image_tag_mutability: String,
    /// WILDCARD exclusion filters (the only type ECR has).
    pub mutability_exclusions: Vec<String>,
    pub repository_policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    pub applied_for: Vec<String>,
    pub custom_role_arn: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The members of a Create or Update request (checked by the front end against the model);
/// on Update, those absent keep their values.
#[derive(Debug, Clone, Default)]
pub struct TemplateFields {
    pub description: Option<String>,
    pub encryption: Option<EncryptionConfiguration>,
    pub resource_tags: Option<Vec<ResourceTag>>,
    pub image_tag_mutability: Option<String>,
    pub mutability_exclusions: Option<Vec<MutabilityExclusion>>,
    pub repository_policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    pub applied_for: Option<Vec<String>>,
    pub custom_role_arn: Option<String>,
}

/// `prod` and `prod/` name the same namespace.
fn normal(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// Whether a template's prefix covers a repository name: `ROOT` covers every name, `prod`
/// covers `prod/...` (ECR: "a prefix of prod would apply to all repositories beginning with
/// prod/").
fn covers(prefix: &str, name: &str) -> bool {
    prefix == ROOT
        || name
            .strip_prefix(normal(prefix))
            .is_some_and(|rest| rest.starts_with('/'))
}

impl CreationTemplate {
    fn apply(&mut self, f: TemplateFields) {
        if let Some(v) = f.description {
            self.description = Some(v).filter(|d| !d.is_empty());
        }
        if let Some(e) = f.encryption {
            self.encryption_type = e.encryption_type;
            self.kms_key = e.kms_key.filter(|k| !k.is_empty());
        }
        if let Some(tags) = f.resource_tags {
            self.resource_tags = tags.into_iter().map(|t| (t.key, t.value)).collect();
        }
        if let Some(m) = f.image_tag_mutability {
            self.image_tag_mutability = m;
            // A new setting without filters has none (MUTABLE, IMMUTABLE).
            self.mutability_exclusions.clear();
        }
        if let Some(ex) = f.mutability_exclusions {
            self.mutability_exclusions = ex.into_iter().map(|e| e.filter).collect();
        }
        if let Some(p) = f.repository_policy {
            self.repository_policy = Some(p).filter(|p| !p.is_empty());
        }
        if let Some(p) = f.lifecycle_policy {
            self.lifecycle_policy = Some(p).filter(|p| !p.is_empty());
        }
        if let Some(mut a) = f.applied_for {
            a.sort();
            a.dedup();
            self.applied_for = a;
        }
        if let Some(r) = f.custom_role_arn {
            self.custom_role_arn = Some(r).filter(|r| !r.is_empty());
        }
    }

    fn exclusions(&self) -> Vec<MutabilityExclusion> {
        self.mutability_exclusions
            .iter()
            .map(|f| MutabilityExclusion {
                filter_type: "WILDCARD".to_owned(),
                filter: f.clone(),
            })
            .collect()
    }

    /// What a repository created from the template would be refused for, checked when the
    /// template is stored so that it never fails at creation.
    fn check(&self) -> Result<()> {
        if self.applied_for.is_empty() {
            return Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'appliedFor' failed to satisfy constraint: 'Member must have length greater than or equal to 1'".into(),
            ));
        }
        check_exclusions(&self.image_tag_mutability, &self.exclusions())?;
        if self.encryption_type == "AES256" && self.kms_key.is_some() {
            return Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: 'KMS key is only allowed with the KMS or KMS_DSSE encryption types'".into(),
            ));
        }
        if self.resource_tags.len() > MAX_RESOURCE_TAGS {
            return Err(RegistryError::TooManyTags {
                limit: MAX_RESOURCE_TAGS,
            });
        }
        if let Some(text) = &self.repository_policy {
            Policy::parse_for(Service::Private, text, false)
                .map_err(|e| invalid_policy("repository", &e))?;
        }
        if let Some(text) = &self.lifecycle_policy {
            LifecyclePolicy::parse(text)?;
        }
        Ok(())
    }
}

fn template_not_found(registry_id: &str, prefix: &str) -> RegistryError {
    RegistryError::TemplateNotFound {
        registry_id: registry_id.to_owned(),
        prefix: prefix.to_owned(),
    }
}

impl Registry {
    async fn stored_templates(&self, registry_id: &str) -> Result<Vec<CreationTemplate>> {
        self.setting_value(registry_id, SETTING).await
    }

    /// CreateRepositoryCreationTemplate.
    pub async fn create_creation_template(
        &self,
        who: &Principal,
        prefix: &str,
        fields: TemplateFields,
    ) -> Result<(String, CreationTemplate)> {
        let now = self.now();
        let mut template = CreationTemplate {
            prefix: prefix.to_owned(),
            description: None,
            encryption_type: "AES256".to_owned(),
            kms_key: None,
            resource_tags: vec![],
            image_tag_mutability: "MUTABLE".to_owned(),
            mutability_exclusions: vec![],
            repository_policy: None,
            lifecycle_policy: None,
            applied_for: vec![],
            custom_role_arn: None,
            created_at: now,
            updated_at: now,
        };
        template.apply(fields);
        template.check()?;
        let registry_id = self
            .authorize_registry(who, None, "ecr:CreateRepositoryCreationTemplate")
            .await?
            .to_owned();
        self.modify_setting_list(&registry_id, SETTING, |all: &mut Vec<CreationTemplate>| {
            if all.iter().any(|t| normal(&t.prefix) == normal(prefix)) {
                return Err(RegistryError::TemplateAlreadyExists {
                    registry_id: registry_id.clone(),
                    prefix: prefix.to_owned(),
                });
            }
            if all.len() >= MAX_CREATION_TEMPLATES {
                return Err(RegistryError::LimitExceeded(format!(
                    "The maximum number of repository creation templates ({MAX_CREATION_TEMPLATES}) in the registry with id '{registry_id}' has been reached"
                )));
            }
            all.push(template.clone());
            all.sort_by(|a, b| a.prefix.cmp(&b.prefix));
            Ok(())
        })
        .await?;
        Ok((registry_id, template))
    }

    /// UpdateRepositoryCreationTemplate: the members given replace the template's.
    pub async fn update_creation_template(
        &self,
        who: &Principal,
        prefix: &str,
        fields: TemplateFields,
    ) -> Result<(String, CreationTemplate)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:UpdateRepositoryCreationTemplate")
            .await?
            .to_owned();
        let now = self.now();
        let changed = self
            .modify_setting_list(&registry_id, SETTING, |all: &mut Vec<CreationTemplate>| {
                let Some(stored) = all.iter_mut().find(|t| normal(&t.prefix) == normal(prefix))
                else {
                    return Err(template_not_found(&registry_id, prefix));
                };
                let mut changed = stored.clone();
                changed.apply(fields.clone());
                changed.check()?;
                changed.updated_at = now;
                *stored = changed.clone();
                Ok(changed)
            })
            .await?;
        Ok((registry_id, changed))
    }

    /// DeleteRepositoryCreationTemplate: answers the template deleted.
    pub async fn delete_creation_template(
        &self,
        who: &Principal,
        prefix: &str,
    ) -> Result<(String, CreationTemplate)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:DeleteRepositoryCreationTemplate")
            .await?
            .to_owned();
        let gone = self
            .modify_setting_list(&registry_id, SETTING, |all: &mut Vec<CreationTemplate>| {
                let Some(i) = all.iter().position(|t| normal(&t.prefix) == normal(prefix)) else {
                    return Err(template_not_found(&registry_id, prefix));
                };
                Ok(all.remove(i))
            })
            .await?;
        Ok((registry_id, gone))
    }

    /// DescribeRepositoryCreationTemplates: the named templates (those that exist), or a page
    /// of all of them in prefix order.
    pub async fn describe_creation_templates(
        &self,
        who: &Principal,
        prefixes: Option<&[String]>,
        page: Page,
    ) -> Result<(String, Vec<CreationTemplate>, Option<PageToken>)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:DescribeRepositoryCreationTemplates")
            .await?
            .to_owned();
        let mut all = self.stored_templates(&registry_id).await?;
        if let Some(prefixes) = prefixes {
            all.retain(|t| prefixes.iter().any(|p| normal(p) == normal(&t.prefix)));
        }
        if let Some([after]) = page.after_key(|[_]| true)? {
            all.retain(|t| t.prefix.as_str() > after);
        }
        let next = (all.len() > page.limit as usize).then(|| {
            all.truncate(page.limit as usize);
            PageToken::new(&[all[all.len() - 1].prefix.as_str()])
        });
        Ok((registry_id, all, next))
    }

    /// The template that applies to a new repository `name` created for `applied_for`: the
    /// one with the longest prefix covering the name, else `ROOT`'s, among those that list
    /// `applied_for`.
    async fn template_for(
        &self,
        registry_id: &str,
        name: &RepositoryName,
        applied_for: AppliedFor,
    ) -> Result<Option<CreationTemplate>> {
        let all = self.stored_templates(registry_id).await?;
        Ok(all
            .into_iter()
            .filter(|t| t.applied_for.iter().any(|a| a == applied_for.as_str()))
            .filter(|t| covers(&t.prefix, name.as_str()))
            .max_by_key(|t| {
                if t.prefix == ROOT {
                    0
                } else {
                    normal(&t.prefix).len() + 1
                }
            }))
    }

    /// Creates repository `r` with the settings of the template that applies to it for
    /// `applied_for` (mutability and exclusions, encryption, tags, repository policy,
    /// lifecycle policy). `None` when no template applies, and nothing is created. The caller
    /// needs `ecr:CreateRepository`, as for CreateRepository. The pull-through cache
    /// (PULL_THROUGH_CACHE) and replication (REPLICATION) call this too.
    pub async fn create_repository_from_template(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        applied_for: AppliedFor,
    ) -> Result<Option<RepositoryRecord>> {
        if r.service == Service::Public {
            return Ok(None);
        }
        let registry_id = r
            .registry_id
            .clone()
            .unwrap_or_else(|| who.account_id.clone());
        let Some(t) = self
            .template_for(&registry_id, &r.name, applied_for)
            .await?
        else {
            return Ok(None);
        };
        let req = CreateRepository {
            registry_id: Some(registry_id),
            name: r.name.clone(),
            tags: t
                .resource_tags
                .iter()
                .map(|(k, v)| ResourceTag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            image_tag_mutability: Some(t.image_tag_mutability.clone()),
            mutability_exclusions: t.exclusions(),
            scan_on_push: false,
            encryption: Some(EncryptionConfiguration {
                encryption_type: t.encryption_type.clone(),
                kms_key: t.kms_key.clone(),
            }),
        };
        // The lifecycle policy is created with the repository, in its transaction.
        let settings: Vec<(&str, &[u8])> = t
            .lifecycle_policy
            .iter()
            .map(|p| (LIFECYCLE_POLICY, p.as_bytes()))
            .collect();
        let mut repo = self
            .create_repository_with_settings(who, req, &settings)
            .await?;
        if let Some(policy) = &t.repository_policy {
            let set = self
                .storage
                .meta
                .set_repository_policy(repo.id, Some(policy))
                .await;
            self.forget_repository(&repo);
            match set {
                // Deleted at once by someone else: it was created, and is gone.
                Err(StorageError::NotFound) => {}
                other => other?,
            }
            repo.policy = Some(policy.clone());
        }
        Ok(Some(repo))
    }

    /// Before a `/v2` push: creates a missing private repository from its CREATE_ON_PUSH
    /// template, or, with `create_by_default` (`--create-on-push`), with default settings when
    /// no template applies. Without either, a push to a missing repository is refused as
    /// before. A repository that exists is left alone, whoever pushes.
    pub async fn create_repository_on_push(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        create_by_default: bool,
    ) -> Result<()> {
        if r.service == Service::Public {
            return Ok(());
        }
        let registry_id = r.registry_id.as_deref().unwrap_or(&who.account_id);
        if self
            .find_repository(r.service, registry_id, &r.name)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let created = match self
            .create_repository_from_template(who, r, AppliedFor::CreateOnPush)
            .await
        {
            Ok(Some(_)) | Err(RegistryError::RepositoryAlreadyExists { .. }) => return Ok(()),
            Ok(None) => false,
            Err(e) => return Err(e),
        };
        if !created && create_by_default {
            self.create_repository_if_missing(who, r).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_namespace_and_root_covers_all() {
        assert!(covers("prod", "prod/app"));
        assert!(covers("prod/", "prod/app"));
        assert!(covers("prod/team", "prod/team/app"));
        assert!(!covers("prod", "production/app"));
        assert!(!covers("prod", "prod"));
        assert!(!covers("prod/team", "prod/app"));
        assert!(covers("ROOT", "anything"));
    }
}
