//! CreateRepository, DescribeRepositories, DeleteRepository.

use model::RepositoryName;
use storage::{MutabilityExclusion, RepositoryId, RepositoryRecord, ResourceTag, StorageError};

use crate::pagination::finish_page;
use crate::{
    Page, PageToken, Principal, Registry, RegistryError, RepositoryRef, Result, Service, now_millis,
};

/// Resource tags per repository (TooManyTagsException past this).
pub const MAX_RESOURCE_TAGS: usize = 50;

#[derive(Debug, Clone)]
pub struct EncryptionConfiguration {
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

/// A validated CreateRepository request (the front end has checked enums and lengths).
#[derive(Debug, Clone)]
pub struct CreateRepository {
    pub registry_id: Option<String>,
    pub name: RepositoryName,
    pub tags: Vec<ResourceTag>,
    pub image_tag_mutability: Option<String>,
    pub mutability_exclusions: Vec<MutabilityExclusion>,
    pub scan_on_push: bool,
    pub encryption: Option<EncryptionConfiguration>,
}

/// Exclusion filters go with the `*_WITH_EXCLUSION` settings and only with them, as ECR
/// requires of CreateRepository and PutImageTagMutability alike.
pub(crate) fn check_exclusions(mutability: &str, exclusions: &[MutabilityExclusion]) -> Result<()> {
    let needs_filters = mutability.ends_with("_WITH_EXCLUSION");
    if needs_filters != exclusions.is_empty() {
        return Ok(());
    }
    Err(RegistryError::InvalidParameter(if needs_filters {
        format!(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Exclusion filters are required when imageTagMutability is {mutability}'"
        )
    } else {
        format!(
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Exclusion filters are only allowed when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not {mutability}'"
        )
    }))
}

/// A repository deleted between its lookup and a change to it is not found, as it would
/// have been a moment earlier.
fn gone_is_not_found(
    result: std::result::Result<(), StorageError>,
    repo: &RepositoryRecord,
) -> Result<()> {
    match result {
        Err(StorageError::NotFound) => Err(RegistryError::RepositoryNotFound {
            registry_id: repo.registry_id.clone(),
            name: repo.name.to_string(),
        }),
        other => Ok(other?),
    }
}

impl Registry {
    /// PutImageTagMutability: replaces a repository's tag mutability and its exclusion
    /// filters. Takes effect on the next push through either API (PutImage, `/v2` manifest
    /// PUT); tags already in place stay where they are.
    pub async fn put_image_tag_mutability(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        mutability: &str,
        exclusions: Vec<MutabilityExclusion>,
    ) -> Result<RepositoryRecord> {
        check_exclusions(mutability, &exclusions)?;
        let mut repo = self.repository(who, r, "ecr:PutImageTagMutability").await?;
        let set = self
            .storage
            .meta
            .set_image_tag_mutability(repo.id, mutability, &exclusions)
            .await;
        self.forget_repository(&repo);
        gone_is_not_found(set, &repo)?;
        mutability.clone_into(&mut repo.image_tag_mutability);
        repo.mutability_exclusions = exclusions;
        Ok(repo)
    }

    /// PutImageScanningConfiguration: a repository's own scan-on-push flag (the registry's
    /// scanning rules may also select it, see `scanning.rs`).
    pub async fn put_scan_on_push(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        scan_on_push: bool,
    ) -> Result<RepositoryRecord> {
        let mut repo = self
            .repository(who, r, "ecr:PutImageScanningConfiguration")
            .await?;
        let set = self
            .storage
            .meta
            .set_scan_on_push(repo.id, scan_on_push)
            .await;
        self.forget_repository(&repo);
        gone_is_not_found(set, &repo)?;
        repo.scan_on_push = scan_on_push;
        Ok(repo)
    }

    pub async fn create_repository(
        &self,
        who: &Principal,
        req: CreateRepository,
    ) -> Result<RepositoryRecord> {
        self.create_repository_with_settings(who, req, &[]).await
    }

    /// [`Registry::create_repository`] with repository settings (a template's lifecycle
    /// policy) stored in the same transaction.
    pub(crate) async fn create_repository_with_settings(
        &self,
        who: &Principal,
        req: CreateRepository,
        settings: &[(&str, &[u8])],
    ) -> Result<RepositoryRecord> {
        if req.tags.len() > MAX_RESOURCE_TAGS {
            return Err(RegistryError::TooManyTags {
                limit: MAX_RESOURCE_TAGS,
            });
        }
        let mutability = req
            .image_tag_mutability
            .unwrap_or_else(|| "MUTABLE".to_owned());
        check_exclusions(&mutability, &req.mutability_exclusions)?;
        let (encryption_type, kms_key) = match req.encryption {
            Some(e) => {
                if e.encryption_type == "AES256" && e.kms_key.is_some() {
                    return Err(RegistryError::InvalidParameter(
                        "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: 'KMS key is only allowed with the KMS or KMS_DSSE encryption types'".into(),
                    ));
                }
                (e.encryption_type, e.kms_key)
            }
            None => ("AES256".to_owned(), None),
        };
        let registry_id = req.registry_id.unwrap_or_else(|| who.account_id.clone());
        let resource = format!("repository/{}", req.name);
        let request_tags: Vec<(String, Option<String>)> = req
            .tags
            .iter()
            .map(|t| (t.key.clone(), Some(t.value.clone())))
            .collect();
        self.authorize_tagged(
            who,
            Service::Private,
            &registry_id,
            None,
            &resource,
            "ecr:CreateRepository",
            Some(&request_tags),
        )
        .await?;
        let record = RepositoryRecord {
            id: RepositoryId(0),
            service: Service::Private,
            registry_id: registry_id.clone(),
            name: req.name.clone(),
            created_at: now_millis(),
            image_tag_mutability: mutability,
            mutability_exclusions: req.mutability_exclusions,
            scan_on_push: req.scan_on_push,
            encryption_type,
            kms_key,
            tags: req.tags,
            policy: None,
        };
        match self
            .storage
            .meta
            .create_repository_with_settings(record, settings)
            .await
        {
            Err(StorageError::Conflict(_)) => Err(RegistryError::RepositoryAlreadyExists {
                registry_id,
                name: req.name,
            }),
            other => Ok(other?),
        }
    }

    /// Named repositories of a private registry (all must exist), or a page of all of them in
    /// name order.
    pub async fn describe_repositories(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        names: Option<&[RepositoryName]>,
        page: Page,
    ) -> Result<(Vec<RepositoryRecord>, Option<PageToken>)> {
        self.describe_repositories_in(who, Service::Private, registry_id, names, page)
            .await
    }

    /// [`Registry::describe_repositories`] in the private or the public registry.
    pub async fn describe_repositories_in(
        &self,
        who: &Principal,
        service: Service,
        registry_id: Option<&str>,
        names: Option<&[RepositoryName]>,
        page: Page,
    ) -> Result<(Vec<RepositoryRecord>, Option<PageToken>)> {
        let registry_id = registry_id.unwrap_or(&who.account_id);
        if let Some(names) = names {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let r = RepositoryRef {
                    service,
                    registry_id: Some(registry_id.to_owned()),
                    name: name.clone(),
                };
                out.push(self.repository(who, &r, "ecr:DescribeRepositories").await?);
            }
            return Ok((out, None));
        }
        self.authorize(
            who,
            service,
            registry_id,
            None,
            "repository/*",
            "ecr:DescribeRepositories",
        )
        .await?;
        let after = page
            .after_key(|[name]| RepositoryName::parse(name).is_ok())?
            .map(|[name]| name);
        let items = self
            .storage
            .meta
            .list_repositories(service, registry_id, after, page.limit + 1)
            .await?;
        Ok(finish_page(items, page.limit, |r| {
            PageToken::new(&[r.name.as_str()])
        }))
    }

    /// Creates the repository with default settings unless it exists (`/v2` create-on-push).
    /// Public repositories are never created this way: ECR Public does not create on push.
    pub async fn create_repository_if_missing(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<()> {
        if r.service == Service::Public {
            return Ok(());
        }
        match self.repository(who, r, "ecr:CreateRepository").await {
            Ok(_) => return Ok(()),
            Err(RegistryError::RepositoryNotFound { .. }) => {}
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
            Ok(_) | Err(RegistryError::RepositoryAlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One repository with its settings and resource tags.
    pub async fn describe_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryRecord> {
        self.repository(who, r, "ecr:ListTagsForResource").await
    }

    /// Deletes a repository; without `force` only when it holds no image. Blobs stay in the
    /// blob store for garbage collection to judge.
    pub async fn delete_repository(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        force: bool,
    ) -> Result<RepositoryRecord> {
        let repo = self.repository(who, r, "ecr:DeleteRepository").await?;
        let deleted = self.storage.meta.delete_repository(repo.id, !force).await;
        self.forget_repository(&repo);
        match deleted {
            Err(StorageError::Conflict(_)) => Err(RegistryError::RepositoryNotEmpty {
                registry_id: repo.registry_id,
                name: repo.name,
            }),
            Err(StorageError::NotFound) => Err(RegistryError::RepositoryNotFound {
                registry_id: repo.registry_id,
                name: repo.name.to_string(),
            }),
            other => {
                other?;
                Ok(repo)
            }
        }
    }
}

impl Registry {
    /// Repository names of the private registry of `registry_id` (default: the caller's) in
    /// lexical order after `last`, at most `n`, and whether more follow (the `/v2/_catalog`
    /// listing).
    pub async fn catalog(
        &self,
        who: &Principal,
        registry_id: Option<&str>,
        last: Option<&str>,
        n: u32,
    ) -> Result<(Vec<RepositoryName>, bool)> {
        let registry_id = self
            .authorize_registry(who, registry_id, "ecr:DescribeRepositories")
            .await?;
        let mut items = self
            .storage
            .meta
            .list_repositories(Service::Private, registry_id, last, n + 1)
            .await?;
        let more = items.len() > n as usize;
        items.truncate(n as usize);
        Ok((items.into_iter().map(|r| r.name).collect(), more))
    }
}
