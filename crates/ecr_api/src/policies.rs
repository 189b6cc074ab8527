//! SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy, PutRegistryPolicy,
//! GetRegistryPolicy, DeleteRegistryPolicy.

use registry::RepositoryPolicy;

use crate::Ctx;
use crate::dto;
use crate::error::{ApiError, invalid};
use crate::validate::{self, required};

const MAX_POLICY_CHARS: usize = 10_240;

fn policy_text(text: Option<String>) -> Result<String, ApiError> {
    let text = required(text, "policyText")?;
    if text.chars().count() > MAX_POLICY_CHARS {
        return Err(invalid(
            "policyText",
            "Member must have length less than or equal to 10240",
        ));
    }
    Ok(text)
}

fn repository_policy(p: RepositoryPolicy) -> dto::RepositoryPolicyResponse {
    dto::RepositoryPolicyResponse {
        registry_id: p.registry_id,
        repository_name: p.name.to_string(),
        policy_text: p.text,
    }
}

pub(crate) async fn set_repository_policy(
    ctx: &Ctx<'_>,
    req: dto::SetRepositoryPolicyRequest,
) -> Result<dto::RepositoryPolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let text = policy_text(req.policy_text)?;
    let p = ctx
        .registry()
        .set_repository_policy(&ctx.principal, &repo, &text, req.force.unwrap_or(false))
        .await?;
    Ok(repository_policy(p))
}

pub(crate) async fn get_repository_policy(
    ctx: &Ctx<'_>,
    req: dto::RepositoryPolicyRequest,
) -> Result<dto::RepositoryPolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    Ok(repository_policy(
        ctx.registry()
            .get_repository_policy(&ctx.principal, &repo)
            .await?,
    ))
}

pub(crate) async fn delete_repository_policy(
    ctx: &Ctx<'_>,
    req: dto::RepositoryPolicyRequest,
) -> Result<dto::RepositoryPolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    Ok(repository_policy(
        ctx.registry()
            .delete_repository_policy(&ctx.principal, &repo)
            .await?,
    ))
}

pub(crate) async fn put_registry_policy(
    ctx: &Ctx<'_>,
    req: dto::PutRegistryPolicyRequest,
) -> Result<dto::RegistryPolicyResponse, ApiError> {
    let text = policy_text(req.policy_text)?;
    let registry_id = ctx
        .registry()
        .put_registry_policy(&ctx.principal, &text)
        .await?;
    Ok(dto::RegistryPolicyResponse {
        registry_id,
        policy_text: text,
    })
}

pub(crate) async fn get_registry_policy(
    ctx: &Ctx<'_>,
    _req: dto::Empty,
) -> Result<dto::RegistryPolicyResponse, ApiError> {
    let (registry_id, policy_text) = ctx.registry().get_registry_policy(&ctx.principal).await?;
    Ok(dto::RegistryPolicyResponse {
        registry_id,
        policy_text,
    })
}

pub(crate) async fn delete_registry_policy(
    ctx: &Ctx<'_>,
    _req: dto::Empty,
) -> Result<dto::RegistryPolicyResponse, ApiError> {
    let (registry_id, policy_text) = ctx
        .registry()
        .delete_registry_policy(&ctx.principal)
        .await?;
    Ok(dto::RegistryPolicyResponse {
        registry_id,
        policy_text,
    })
}
