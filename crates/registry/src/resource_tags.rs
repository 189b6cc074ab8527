//! TagResource and UntagResource on repositories, private or public (ListTagsForResource is
//! `describe_repository`: the record carries its tags in order).

use storage::{RepositoryRecord, ResourceTag, StorageError};

use crate::repositories::MAX_RESOURCE_TAGS;
use crate::{Principal, Registry, RegistryError, RepositoryRef, Result};

impl Registry {
    /// Adds tags to a repository or replaces the values of keys it has, which keep their
    /// place (ListTagsForResource shows tags in the order they were first given). One
    /// transaction: past [`MAX_RESOURCE_TAGS`] in all (ECR's and ECR Public's quota), nothing
    /// changes and the answer is `TooManyTags`. Answers the repository's tags after the call.
    pub async fn tag_resource(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        tags: &[ResourceTag],
    ) -> Result<Vec<ResourceTag>> {
        let request_tags: Vec<(String, Option<String>)> = tags
            .iter()
            .map(|t| (t.key.clone(), Some(t.value.clone())))
            .collect();
        let repo = self
            .repository_tagged(who, r, "ecr:TagResource", Some(&request_tags))
            .await?;
        let tagged = self
            .storage
            .meta
            .tag_repository(repo.id, tags, MAX_RESOURCE_TAGS)
            .await;
        self.forget_repository(&repo);
        match tagged {
            Err(StorageError::Conflict(_)) => Err(RegistryError::TooManyTags {
                limit: MAX_RESOURCE_TAGS,
            }),
            Err(StorageError::NotFound) => Err(gone(repo)),
            other => Ok(other?),
        }
    }

    /// Removes tags from a repository by key (keys it lacks are ignored), in one transaction.
    pub async fn untag_resource(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        keys: &[String],
    ) -> Result<()> {
        // aws:TagKeys names the keys being removed; there are no values.
        let request_tags: Vec<(String, Option<String>)> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        let repo = self
            .repository_tagged(who, r, "ecr:UntagResource", Some(&request_tags))
            .await?;
        let untagged = self.storage.meta.untag_repository(repo.id, keys).await;
        self.forget_repository(&repo);
        match untagged {
            Err(StorageError::NotFound) => Err(gone(repo)),
            other => Ok(other?),
        }
    }
}

/// A repository deleted between its lookup and the write.
fn gone(repo: RepositoryRecord) -> RegistryError {
    RegistryError::RepositoryNotFound {
        registry_id: repo.registry_id,
        name: repo.name.to_string(),
    }
}
