//! CreateRepository, DescribeRepositories, DeleteRepository, the repository policy operations
//! and the resource tag operations of ECR Public.

use registry::{
    CreatePublicRepository, RepositoryPolicy, RepositoryRecord, RepositoryRef, Service,
};

use super::catalog::{catalog_input, catalog_shape};
use super::{host, repository};
use crate::Ctx;
use crate::error::{ApiError, invalid};
use crate::shapes::ecr_public as p;
use crate::validate;

/// A stored repository as ECR Public's `Repository`.
pub(super) fn repository_shape(ctx: &Ctx<'_>, r: &RepositoryRecord) -> p::Repository {
    p::Repository {
        repository_arn: Some(ctx.registry().repository_arn(r)),
        registry_id: Some(r.registry_id.clone()),
        repository_name: Some(r.name.to_string()),
        repository_uri: Some(ctx.registry().repository_uri(r, host(ctx))),
        created_at: Some(r.created_at as f64 / 1000.0),
    }
}

/// Tags the model has checked (lengths; InvalidTagParameterException), as the registry's.
/// A tag needs both members: the model marks neither required, but a tag without a key
/// names nothing, so ECR Public refuses it.
fn resource_tags(tags: Vec<p::Tag>) -> Result<Vec<registry::ResourceTag>, ApiError> {
    tags.into_iter()
        .map(|t| {
            let null = |m: &str| {
                ApiError::InvalidTagParameter(format!(
                    "Invalid parameter at 'tags.member.{m}' failed to satisfy constraint: 'Member must not be null'"
                ))
            };
            Ok(registry::ResourceTag {
                key: t.key.ok_or_else(|| null("Key"))?,
                value: t.value.ok_or_else(|| null("Value"))?,
            })
        })
        .collect()
}

pub(crate) async fn create_repository(
    ctx: &Ctx<'_>,
    req: p::CreateRepositoryRequest,
) -> Result<p::CreateRepositoryResponse, ApiError> {
    let repo = repository(ctx, None, req.repository_name.as_deref(), false)?;
    let record = ctx
        .registry()
        .create_public_repository(
            &ctx.principal,
            CreatePublicRepository {
                registry_id: None,
                name: repo.name.clone(),
                tags: resource_tags(req.tags.unwrap_or_default())?,
                catalog: req.catalog_data.map(catalog_input),
            },
        )
        .await?;
    // The catalog data as stored (the registry names the logo's type), read back once.
    let (_, data) = ctx
        .registry()
        .repository_catalog_data(&ctx.principal, &repo)
        .await?;
    Ok(p::CreateRepositoryResponse {
        repository: Some(repository_shape(ctx, &record)),
        catalog_data: Some(catalog_shape(ctx, &record, &data.unwrap_or_default())),
    })
}

pub(crate) async fn describe_repositories(
    ctx: &Ctx<'_>,
    req: p::DescribeRepositoriesRequest,
) -> Result<p::DescribeRepositoriesResponse, ApiError> {
    let names = match &req.repository_names {
        Some(names) => {
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
        .describe_repositories_in(
            &ctx.principal,
            Service::Public,
            req.registry_id.as_deref(),
            names.as_deref(),
            page,
        )
        .await?;
    Ok(p::DescribeRepositoriesResponse {
        repositories: Some(repos.iter().map(|r| repository_shape(ctx, r)).collect()),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn delete_repository(
    ctx: &Ctx<'_>,
    req: p::DeleteRepositoryRequest,
) -> Result<p::DeleteRepositoryResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let record = ctx
        .registry()
        .delete_repository(&ctx.principal, &r, req.force.unwrap_or(false))
        .await?;
    Ok(p::DeleteRepositoryResponse {
        repository: Some(repository_shape(ctx, &record)),
    })
}

fn policy_shape(p: RepositoryPolicy) -> (Option<String>, Option<String>, Option<String>) {
    (Some(p.registry_id), Some(p.name.to_string()), Some(p.text))
}

pub(crate) async fn set_repository_policy(
    ctx: &Ctx<'_>,
    req: p::SetRepositoryPolicyRequest,
) -> Result<p::SetRepositoryPolicyResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let text = req.policy_text.unwrap_or_default();
    let (registry_id, repository_name, policy_text) = policy_shape(
        ctx.registry()
            .set_repository_policy(&ctx.principal, &r, &text, req.force.unwrap_or(false))
            .await?,
    );
    Ok(p::SetRepositoryPolicyResponse {
        registry_id,
        repository_name,
        policy_text,
    })
}

pub(crate) async fn get_repository_policy(
    ctx: &Ctx<'_>,
    req: p::GetRepositoryPolicyRequest,
) -> Result<p::GetRepositoryPolicyResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let (registry_id, repository_name, policy_text) = policy_shape(
        ctx.registry()
            .get_repository_policy(&ctx.principal, &r)
            .await?,
    );
    Ok(p::GetRepositoryPolicyResponse {
        registry_id,
        repository_name,
        policy_text,
    })
}

pub(crate) async fn delete_repository_policy(
    ctx: &Ctx<'_>,
    req: p::DeleteRepositoryPolicyRequest,
) -> Result<p::DeleteRepositoryPolicyResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let (registry_id, repository_name, policy_text) = policy_shape(
        ctx.registry()
            .delete_repository_policy(&ctx.principal, &r)
            .await?,
    );
    Ok(p::DeleteRepositoryPolicyResponse {
        registry_id,
        repository_name,
        policy_text,
    })
}

/// The repository an ECR Public ARN names: `arn:aws:ecr-public::<account>:repository/<name>`
/// (no region, as ECR Public's ARNs have none). A private repository's ARN names nothing here.
fn repository_from_arn(ctx: &Ctx<'_>, arn: &str) -> Result<RepositoryRef, ApiError> {
    RepositoryRef::from_arn(arn, ctx.registry().region())
        .filter(|r| r.service == Service::Public)
        .ok_or_else(|| invalid("resourceArn", "Invalid ARN"))
}

fn tag_shapes(tags: Vec<registry::ResourceTag>) -> Vec<p::Tag> {
    tags.into_iter()
        .map(|t| p::Tag {
            key: Some(t.key),
            value: Some(t.value),
        })
        .collect()
}

pub(crate) async fn list_tags_for_resource(
    ctx: &Ctx<'_>,
    req: p::ListTagsForResourceRequest,
) -> Result<p::ListTagsForResourceResponse, ApiError> {
    let r = repository_from_arn(ctx, req.resource_arn.as_deref().unwrap_or_default())?;
    let record = ctx
        .registry()
        .describe_repository(&ctx.principal, &r)
        .await?;
    Ok(p::ListTagsForResourceResponse {
        tags: Some(tag_shapes(record.tags)),
    })
}

pub(crate) async fn tag_resource(
    ctx: &Ctx<'_>,
    req: p::TagResourceRequest,
) -> Result<p::TagResourceResponse, ApiError> {
    let r = repository_from_arn(ctx, req.resource_arn.as_deref().unwrap_or_default())?;
    let tags = resource_tags(req.tags.unwrap_or_default())?;
    ctx.registry()
        .tag_resource(&ctx.principal, &r, &tags)
        .await?;
    Ok(p::TagResourceResponse {})
}

pub(crate) async fn untag_resource(
    ctx: &Ctx<'_>,
    req: p::UntagResourceRequest,
) -> Result<p::UntagResourceResponse, ApiError> {
    let r = repository_from_arn(ctx, req.resource_arn.as_deref().unwrap_or_default())?;
    ctx.registry()
        .untag_resource(
            &ctx.principal,
            &r,
            req.tag_keys.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok(p::UntagResourceResponse {})
}
