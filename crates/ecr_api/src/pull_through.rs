//! CreatePullThroughCacheRule, DescribePullThroughCacheRules, UpdatePullThroughCacheRule,
//! DeletePullThroughCacheRule and ValidatePullThroughCacheRule, on the generated shapes (whose
//! checks ran at decode). The rules themselves, and the pull path, live in the registry.

use registry::{CreatePullThroughCacheRule, Page, PageToken, PullThroughCacheRule};

use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr;

/// DescribePullThroughCacheRules' page size when `maxResults` is absent (ECR: "up to 100").
const DEFAULT_PAGE: u32 = 100;

fn secs(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

fn rule_shape(r: PullThroughCacheRule) -> ecr::PullThroughCacheRule {
    ecr::PullThroughCacheRule {
        ecr_repository_prefix: Some(r.ecr_repository_prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: Some(secs(r.created_at)),
        registry_id: Some(r.registry_id),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: Some(r.upstream_repository_prefix),
        upstream_registry: r.upstream_registry,
        updated_at: Some(secs(r.updated_at)),
    }
}

pub(crate) async fn create_pull_through_cache_rule(
    ctx: &Ctx<'_>,
    req: ecr::CreatePullThroughCacheRuleRequest,
) -> Result<ecr::CreatePullThroughCacheRuleResponse, ApiError> {
    let r = ctx
        .registry()
        .create_pull_through_cache_rule(
            &ctx.principal,
            CreatePullThroughCacheRule {
                registry_id: req.registry_id,
                ecr_repository_prefix: req.ecr_repository_prefix.unwrap_or_default(),
                upstream_registry_url: req.upstream_registry_url.unwrap_or_default(),
                upstream_registry: req.upstream_registry,
                upstream_repository_prefix: req.upstream_repository_prefix,
                credential_arn: req.credential_arn,
                custom_role_arn: req.custom_role_arn,
            },
        )
        .await?;
    Ok(ecr::CreatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.ecr_repository_prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: Some(secs(r.created_at)),
        registry_id: Some(r.registry_id),
        upstream_registry: r.upstream_registry,
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: Some(r.upstream_repository_prefix),
    })
}

pub(crate) async fn describe_pull_through_cache_rules(
    ctx: &Ctx<'_>,
    req: ecr::DescribePullThroughCacheRulesRequest,
) -> Result<ecr::DescribePullThroughCacheRulesResponse, ApiError> {
    let page = Page {
        after: req
            .next_token
            .as_deref()
            .map(PageToken::decode)
            .transpose()?,
        limit: req
            .max_results
            .map_or(DEFAULT_PAGE, |n| u32::try_from(n).unwrap_or(DEFAULT_PAGE)),
    };
    let (rules, next) = ctx
        .registry()
        .describe_pull_through_cache_rules(
            &ctx.principal,
            req.registry_id.as_deref(),
            req.ecr_repository_prefixes.as_deref(),
            page,
        )
        .await?;
    Ok(ecr::DescribePullThroughCacheRulesResponse {
        pull_through_cache_rules: Some(rules.into_iter().map(rule_shape).collect()),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn update_pull_through_cache_rule(
    ctx: &Ctx<'_>,
    req: ecr::UpdatePullThroughCacheRuleRequest,
) -> Result<ecr::UpdatePullThroughCacheRuleResponse, ApiError> {
    let r = ctx
        .registry()
        .update_pull_through_cache_rule(
            &ctx.principal,
            req.registry_id.as_deref(),
            &req.ecr_repository_prefix.unwrap_or_default(),
            req.credential_arn,
            req.custom_role_arn,
        )
        .await?;
    Ok(ecr::UpdatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.ecr_repository_prefix),
        registry_id: Some(r.registry_id),
        updated_at: Some(secs(r.updated_at)),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: Some(r.upstream_repository_prefix),
    })
}

pub(crate) async fn delete_pull_through_cache_rule(
    ctx: &Ctx<'_>,
    req: ecr::DeletePullThroughCacheRuleRequest,
) -> Result<ecr::DeletePullThroughCacheRuleResponse, ApiError> {
    let r = ctx
        .registry()
        .delete_pull_through_cache_rule(
            &ctx.principal,
            req.registry_id.as_deref(),
            &req.ecr_repository_prefix.unwrap_or_default(),
        )
        .await?;
    Ok(ecr::DeletePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.ecr_repository_prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: Some(secs(r.created_at)),
        registry_id: Some(r.registry_id),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: Some(r.upstream_repository_prefix),
    })
}

pub(crate) async fn validate_pull_through_cache_rule(
    ctx: &Ctx<'_>,
    req: ecr::ValidatePullThroughCacheRuleRequest,
) -> Result<ecr::ValidatePullThroughCacheRuleResponse, ApiError> {
    let v = ctx
        .registry()
        .validate_pull_through_cache_rule(
            &ctx.principal,
            req.registry_id.as_deref(),
            &req.ecr_repository_prefix.unwrap_or_default(),
        )
        .await?;
    Ok(ecr::ValidatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(v.rule.ecr_repository_prefix),
        registry_id: Some(v.rule.registry_id),
        upstream_registry_url: Some(v.rule.upstream_registry_url),
        credential_arn: v.rule.credential_arn,
        custom_role_arn: v.rule.custom_role_arn,
        upstream_repository_prefix: Some(v.rule.upstream_repository_prefix),
        is_valid: Some(v.failure.is_none()),
        failure: v.failure,
    })
}
