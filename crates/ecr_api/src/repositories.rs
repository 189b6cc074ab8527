//! CreateRepository, DescribeRepositories, DeleteRepository, and the resource tags
//! (ListTagsForResource, TagResource, UntagResource).

use registry::RepositoryRecord;
use registry::{CreateRepository, EncryptionConfiguration, MutabilityExclusion, ResourceTag};

use crate::Ctx;
use crate::dto;
use crate::error::{ApiError, invalid};
use crate::shapes::ecr;
use crate::validate::{self, required};

/// Converts a stored repository to the model's `Repository`.
pub(crate) fn repository_dto(ctx: &Ctx<'_>, r: &RepositoryRecord) -> dto::Repository {
    let region = ctx.registry().region();
    let host = ctx.registry_host(&r.registry_id);
    dto::Repository {
        repository_arn: format!(
            "arn:aws:ecr:{region}:{}:repository/{}",
            r.registry_id, r.name
        ),
        registry_id: r.registry_id.clone(),
        repository_name: r.name.to_string(),
        repository_uri: format!("{host}/{}", r.name),
        created_at: r.created_at as f64 / 1000.0,
        image_tag_mutability: r.image_tag_mutability.clone(),
        image_tag_mutability_exclusion_filters: r
            .mutability_exclusions
            .iter()
            .map(|e| dto::MutabilityExclusionFilter {
                filter_type: Some(e.filter_type.clone()),
                filter: Some(e.filter.clone()),
            })
            .collect(),
        image_scanning_configuration: dto::ImageScanningConfiguration {
            scan_on_push: r.scan_on_push,
        },
        encryption_configuration: dto::EncryptionConfiguration {
            encryption_type: Some(r.encryption_type.clone()),
            kms_key: r.kms_key.clone(),
        },
    }
}

fn resource_tags(tags: Vec<dto::Tag>) -> Result<Vec<ResourceTag>, ApiError> {
    tags.into_iter()
        .map(|t| resource_tag(t.key, t.value))
        .collect()
}

/// One tag of CreateRepository or TagResource, checked as ECR checks it: both members
/// present, the key 1 to 128 characters and not in the `aws:` namespace (any case), which
/// AWS reserves for its own tags, and the value at most 256 characters.
pub(crate) fn resource_tag(
    key: Option<String>,
    value: Option<String>,
) -> Result<ResourceTag, ApiError> {
    let key = key.ok_or_else(|| invalid("tags.member.Key", "Member must not be null"))?;
    let value = value.ok_or_else(|| invalid("tags.member.Value", "Member must not be null"))?;
    if key.is_empty() || key.chars().count() > 128 {
        return Err(ApiError::InvalidTagParameter(
            "Invalid parameter at 'tags.member.Key' failed to satisfy constraint: 'Member must have length between 1 and 128'".into(),
        ));
    }
    reserved_tag_key(&key)?;
    if value.chars().count() > 256 {
        return Err(ApiError::InvalidTagParameter(
            "Invalid parameter at 'tags.member.Value' failed to satisfy constraint: 'Member must have length less than or equal to 256'".into(),
        ));
    }
    Ok(ResourceTag { key, value })
}

/// Keys beginning `aws:` (in any case) belong to AWS: a caller may neither set nor remove
/// them (InvalidTagParameterException, as AWS's tagging services answer).
fn reserved_tag_key(key: &str) -> Result<(), ApiError> {
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(ApiError::InvalidTagParameter(format!(
            "Tag key '{key}' is not valid: tag keys starting with 'aws:' are reserved for AWS use"
        )));
    }
    Ok(())
}

pub(crate) fn exclusion_filters(
    filters: Vec<dto::MutabilityExclusionFilter>,
) -> Result<Vec<MutabilityExclusion>, ApiError> {
    let field = "imageTagMutabilityExclusionFilters";
    validate::list_len(&filters, field, 1, 5)?;
    filters
        .into_iter()
        .map(|f| {
            let filter_type = required(
                f.filter_type,
                "imageTagMutabilityExclusionFilters.member.filterType",
            )?;
            validate::one_of(
                &filter_type,
                "imageTagMutabilityExclusionFilters.member.filterType",
                &["WILDCARD"],
            )?;
            let filter = required(f.filter, "imageTagMutabilityExclusionFilters.member.filter")?;
            let ok = (1..=128).contains(&filter.len())
                && filter
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
            if !ok {
                return Err(invalid(
                    "imageTagMutabilityExclusionFilters.member.filter",
                    "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'",
                ));
            }
            Ok(MutabilityExclusion {
                filter_type,
                filter,
            })
        })
        .collect()
}

pub(crate) async fn create_repository(
    ctx: &Ctx<'_>,
    req: dto::CreateRepositoryRequest,
) -> Result<dto::RepositoryResponse, ApiError> {
    let name = validate::repository_name(
        &required(req.repository_name, "repositoryName")?,
        "repositoryName",
    )?;
    let registry_id = validate::registry_id(req.registry_id.as_deref())?;
    if let Some(m) = &req.image_tag_mutability {
        validate::one_of(
            m,
            "imageTagMutability",
            &[
                "MUTABLE",
                "IMMUTABLE",
                "IMMUTABLE_WITH_EXCLUSION",
                "MUTABLE_WITH_EXCLUSION",
            ],
        )?;
    }
    let encryption = match req.encryption_configuration {
        None => None,
        Some(e) => {
            let t = required(e.encryption_type, "encryptionConfiguration.encryptionType")?;
            validate::one_of(
                &t,
                "encryptionConfiguration.encryptionType",
                &["AES256", "KMS", "KMS_DSSE"],
            )?;
            if let Some(k) = &e.kms_key
                && (k.is_empty() || k.len() > 2048)
            {
                return Err(invalid(
                    "encryptionConfiguration.kmsKey",
                    "Member must have length between 1 and 2048",
                ));
            }
            Some(EncryptionConfiguration {
                encryption_type: t,
                kms_key: e.kms_key,
            })
        }
    };
    let repo = ctx
        .registry()
        .create_repository(
            &ctx.principal,
            CreateRepository {
                registry_id,
                name,
                tags: resource_tags(req.tags.unwrap_or_default())?,
                image_tag_mutability: req.image_tag_mutability,
                mutability_exclusions: match req.image_tag_mutability_exclusion_filters {
                    Some(f) => exclusion_filters(f)?,
                    None => vec![],
                },
                scan_on_push: req
                    .image_scanning_configuration
                    .is_some_and(|c| c.scan_on_push),
                encryption,
            },
        )
        .await?;
    Ok(dto::RepositoryResponse {
        repository: repository_dto(ctx, &repo),
    })
}

pub(crate) async fn describe_repositories(
    ctx: &Ctx<'_>,
    req: dto::DescribeRepositoriesRequest,
) -> Result<dto::DescribeRepositoriesResponse, ApiError> {
    let registry_id = validate::registry_id(req.registry_id.as_deref())?;
    let names = match &req.repository_names {
        Some(names) => {
            validate::list_len(names, "repositoryNames", 1, 100)?;
            validate::no_paging_with_ids(
                req.next_token.as_deref(),
                req.max_results,
                "repositoryNames",
            )?;
            Some(
                names
                    .iter()
                    .map(|n| validate::repository_name(n, "repositoryNames.member"))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
        None => None,
    };
    let page = validate::page(req.next_token.as_deref(), req.max_results)?;
    let (repos, next) = ctx
        .registry()
        .describe_repositories(
            &ctx.principal,
            registry_id.as_deref(),
            names.as_deref(),
            page,
        )
        .await?;
    Ok(dto::DescribeRepositoriesResponse {
        repositories: repos.iter().map(|r| repository_dto(ctx, r)).collect(),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn delete_repository(
    ctx: &Ctx<'_>,
    req: dto::DeleteRepositoryRequest,
) -> Result<dto::RepositoryResponse, ApiError> {
    let repo_ref = validate::repository(&req)?;
    let repo = ctx
        .registry()
        .delete_repository(&ctx.principal, &repo_ref, req.force.unwrap_or(false))
        .await?;
    Ok(dto::RepositoryResponse {
        repository: repository_dto(ctx, &repo),
    })
}

/// `arn:aws:ecr:<region>:<registry id>:repository/<name>` of this region. An ECR Public
/// ARN, another region's or anything else is `Invalid ARN`.
fn repository_from_arn(ctx: &Ctx<'_>, arn: &str) -> Result<registry::RepositoryRef, ApiError> {
    registry::RepositoryRef::from_arn(arn, ctx.registry().region())
        .filter(|r| r.service == registry::Service::Private)
        .ok_or_else(|| invalid("resourceArn", "Invalid ARN"))
}

pub(crate) async fn list_tags_for_resource(
    ctx: &Ctx<'_>,
    req: dto::ListTagsForResourceRequest,
) -> Result<dto::ListTagsForResourceResponse, ApiError> {
    let arn = required(req.resource_arn, "resourceArn")?;
    let r = repository_from_arn(ctx, &arn)?;
    let repo = ctx
        .registry()
        .describe_repository(&ctx.principal, &r)
        .await?;
    Ok(dto::ListTagsForResourceResponse {
        tags: repo
            .tags
            .into_iter()
            .map(|t| dto::Tag {
                key: Some(t.key),
                value: Some(t.value),
            })
            .collect(),
    })
}

/// TagResource: adds tags or replaces the values of keys the repository has, all or nothing
/// (TooManyTagsException past 50 in all).
pub(crate) async fn tag_resource(
    ctx: &Ctx<'_>,
    req: ecr::TagResourceRequest,
) -> Result<ecr::TagResourceResponse, ApiError> {
    let r = repository_from_arn(ctx, req.resource_arn.as_deref().unwrap_or_default())?;
    let tags = req
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| resource_tag(t.key, t.value))
        .collect::<Result<Vec<_>, _>>()?;
    ctx.registry()
        .tag_resource(&ctx.principal, &r, &tags)
        .await?;
    Ok(ecr::TagResourceResponse {})
}

/// UntagResource: removes tags by key; keys the repository lacks are ignored.
pub(crate) async fn untag_resource(
    ctx: &Ctx<'_>,
    req: ecr::UntagResourceRequest,
) -> Result<ecr::UntagResourceResponse, ApiError> {
    let r = repository_from_arn(ctx, req.resource_arn.as_deref().unwrap_or_default())?;
    let keys = req.tag_keys.unwrap_or_default();
    for k in &keys {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(ApiError::InvalidTagParameter(
                "Invalid parameter at 'tagKeys.member' failed to satisfy constraint: 'Member must have length between 1 and 128'".into(),
            ));
        }
        reserved_tag_key(k)?;
    }
    ctx.registry()
        .untag_resource(&ctx.principal, &r, &keys)
        .await?;
    Ok(ecr::UntagResourceResponse {})
}

pub(crate) async fn put_image_tag_mutability(
    ctx: &Ctx<'_>,
    req: ecr::PutImageTagMutabilityRequest,
) -> Result<ecr::PutImageTagMutabilityResponse, ApiError> {
    let r = validate::repository(&req)?;
    let mutability = required(req.image_tag_mutability, "imageTagMutability")?;
    let exclusions = match req.image_tag_mutability_exclusion_filters {
        Some(f) => exclusion_filters(
            f.into_iter()
                .map(|f| dto::MutabilityExclusionFilter {
                    filter_type: f.filter_type,
                    filter: f.filter,
                })
                .collect(),
        )?,
        None => vec![],
    };
    let repo = ctx
        .registry()
        .put_image_tag_mutability(&ctx.principal, &r, &mutability, exclusions)
        .await?;
    Ok(ecr::PutImageTagMutabilityResponse {
        registry_id: Some(repo.registry_id),
        repository_name: Some(repo.name.to_string()),
        image_tag_mutability: Some(repo.image_tag_mutability),
        image_tag_mutability_exclusion_filters: (!repo.mutability_exclusions.is_empty()).then(
            || {
                repo.mutability_exclusions
                    .into_iter()
                    .map(|e| ecr::ImageTagMutabilityExclusionFilter {
                        filter_type: Some(e.filter_type),
                        filter: Some(e.filter),
                    })
                    .collect()
            },
        ),
    })
}
