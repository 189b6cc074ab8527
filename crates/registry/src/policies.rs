//! SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy and the registry policy
//! operations. Policies are validated when set (`policy.rs`) and stored as given.

use std::sync::Arc;

use model::RepositoryName;
use storage::RepositoryRecord;

use crate::policy::{Decision, Policy, Request};
use crate::{Principal, Registry, RegistryError, RepositoryRef, Result};

pub(crate) fn invalid_policy(what: &str, reason: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid {what} policy provided: {reason}'"
    ))
}

/// A repository's policy text with where it belongs, as the policy operations answer.
#[derive(Debug, Clone)]
pub struct RepositoryPolicy {
    pub registry_id: String,
    pub name: RepositoryName,
    pub text: String,
}

impl Registry {
    /// Sets a repository's policy. Unless `force`, a policy that would deny the caller the
    /// right to set the policy again is refused (ECR's lock-out check).
    pub async fn set_repository_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        text: &str,
        force: bool,
    ) -> Result<RepositoryPolicy> {
        let repo = self.repository(who, r, "ecr:SetRepositoryPolicy").await?;
        let policy = Policy::parse_for(repo.service, text, false)
            .map_err(|e| invalid_policy("repository", &e))?;
        let resource_arn =
            repo.service
                .repository_arn(&self.region, &repo.registry_id, repo.name.as_str());
        let identity = self.identities.get(&who.access_key_id);
        let context =
            crate::access::context(who, identity.as_deref(), repo.service, Some(&repo), None);
        let lockout = policy.evaluate(&Request {
            principal_arn: &who.arn,
            principal_account: &who.account_id,
            action: &repo.service.action("ecr:SetRepositoryPolicy"),
            resource_arn: &resource_arn,
            context: &context,
        });
        if lockout == Decision::ExplicitDeny && !force {
            return Err(invalid_policy(
                "repository",
                "it would prevent the caller from setting the policy again; pass force to set it anyway",
            ));
        }
        let set = self
            .storage
            .meta
            .set_repository_policy(repo.id, Some(text))
            .await;
        self.forget_repository(&repo);
        set?;
        Ok(RepositoryPolicy {
            registry_id: repo.registry_id,
            name: repo.name,
            text: text.to_owned(),
        })
    }

    fn stored_policy(repo: RepositoryRecord) -> Result<RepositoryPolicy> {
        match repo.policy {
            Some(text) => Ok(RepositoryPolicy {
                registry_id: repo.registry_id,
                name: repo.name,
                text,
            }),
            None => Err(RegistryError::RepositoryPolicyNotFound {
                registry_id: repo.registry_id,
                name: repo.name,
            }),
        }
    }

    pub async fn get_repository_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryPolicy> {
        Self::stored_policy(self.repository(who, r, "ecr:GetRepositoryPolicy").await?)
    }

    /// Removes a repository's policy and answers what it was.
    pub async fn delete_repository_policy(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryPolicy> {
        let repo = self
            .repository(who, r, "ecr:DeleteRepositoryPolicy")
            .await?;
        let id = repo.id;
        let cached = repo.clone();
        let old = Self::stored_policy(repo)?;
        let removed = self.storage.meta.set_repository_policy(id, None).await;
        self.forget_repository(&cached);
        removed?;
        Ok(old)
    }

    /// Sets the caller's registry policy; answers the registry id.
    pub async fn put_registry_policy(&self, who: &Principal, text: &str) -> Result<String> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:PutRegistryPolicy")
            .await?
            .to_owned();
        Policy::parse(text, true).map_err(|e| invalid_policy("registry", &e))?;
        self.storage
            .meta
            .set_registry_policy(&registry_id, Some(text))
            .await?;
        self.registry_policies.forget(&registry_id);
        Ok(registry_id)
    }

    /// The caller's registry policy: (registry id, text).
    pub async fn get_registry_policy(&self, who: &Principal) -> Result<(String, String)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:GetRegistryPolicy")
            .await?
            .to_owned();
        match self.storage.meta.registry_policy(&registry_id).await? {
            Some(text) => Ok((registry_id, text)),
            None => Err(RegistryError::RegistryPolicyNotFound { registry_id }),
        }
    }

    /// Removes the caller's registry policy and answers what it was.
    pub async fn delete_registry_policy(&self, who: &Principal) -> Result<(String, String)> {
        let (registry_id, text) = self.get_registry_policy(who).await?;
        self.authorize_registry(who, Some(&registry_id), "ecr:DeleteRegistryPolicy")
            .await?;
        self.storage
            .meta
            .set_registry_policy(&registry_id, None)
            .await?;
        self.registry_policies.forget(&registry_id);
        Ok((registry_id, text))
    }
}

impl Registry {
    /// The registry's policy, parsed. A stored policy was validated when set; one that no
    /// longer parses grants nothing.
    pub(crate) async fn registry_policy(&self, registry_id: &str) -> Result<Option<Arc<Policy>>> {
        let generation = match self.registry_policies.get(registry_id) {
            Ok(cached) => return Ok(cached),
            Err(generation) => generation,
        };
        let policy = self
            .storage
            .meta
            .registry_policy(registry_id)
            .await?
            .and_then(|text| Policy::parse(&text, true).ok())
            .map(Arc::new);
        self.registry_policies
            .put(registry_id.to_owned(), generation, policy.clone());
        Ok(policy)
    }
}
