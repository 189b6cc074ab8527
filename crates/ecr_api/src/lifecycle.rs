//! PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, StartLifecyclePolicyPreview
//! and GetLifecyclePolicyPreview. The policy's own rules are checked by the registry.

use registry::{LifecycleAction, StoredLifecyclePolicy, TagStatus};

use crate::Ctx;
use crate::dto;
use crate::error::{ApiError, invalid};
use crate::images::image_ids;
use crate::validate::{self, required};

/// The model's `LifecyclePolicyText` length bounds.
const MIN_POLICY_CHARS: usize = 100;
const MAX_POLICY_CHARS: usize = 30_720;

fn policy_text(text: &str) -> Result<&str, ApiError> {
    let n = text.chars().count();
    if !(MIN_POLICY_CHARS..=MAX_POLICY_CHARS).contains(&n) {
        return Err(invalid(
            "lifecyclePolicyText",
            "Member must have length between 100 and 30720",
        ));
    }
    Ok(text)
}

fn response(p: StoredLifecyclePolicy) -> dto::LifecyclePolicyResponse {
    dto::LifecyclePolicyResponse {
        registry_id: p.registry_id,
        repository_name: p.name.to_string(),
        lifecycle_policy_text: p.text,
        last_evaluated_at: p.last_evaluated_at.map(|t| t as f64 / 1000.0),
    }
}

pub(crate) async fn put_lifecycle_policy(
    ctx: &Ctx<'_>,
    req: dto::PutLifecyclePolicyRequest,
) -> Result<dto::LifecyclePolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let text = required(req.lifecycle_policy_text.as_deref(), "lifecyclePolicyText")?;
    let p = ctx
        .registry()
        .put_lifecycle_policy(&ctx.principal, &repo, policy_text(text)?)
        .await?;
    // PutLifecyclePolicy answers no lastEvaluatedAt.
    Ok(dto::LifecyclePolicyResponse {
        last_evaluated_at: None,
        ..response(p)
    })
}

pub(crate) async fn get_lifecycle_policy(
    ctx: &Ctx<'_>,
    req: dto::RepositoryPolicyRequest,
) -> Result<dto::LifecyclePolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    Ok(response(
        ctx.registry()
            .get_lifecycle_policy(&ctx.principal, &repo)
            .await?,
    ))
}

pub(crate) async fn delete_lifecycle_policy(
    ctx: &Ctx<'_>,
    req: dto::RepositoryPolicyRequest,
) -> Result<dto::LifecyclePolicyResponse, ApiError> {
    let repo = validate::repository(&req)?;
    Ok(response(
        ctx.registry()
            .delete_lifecycle_policy(&ctx.principal, &repo)
            .await?,
    ))
}

pub(crate) async fn start_lifecycle_policy_preview(
    ctx: &Ctx<'_>,
    req: dto::PutLifecyclePolicyRequest,
) -> Result<dto::StartLifecyclePolicyPreviewResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let text = req
        .lifecycle_policy_text
        .as_deref()
        .map(policy_text)
        .transpose()?;
    let (registry_id, name, text) = ctx
        .registry()
        .start_lifecycle_policy_preview(&ctx.principal, &repo, text)
        .await?;
    Ok(dto::StartLifecyclePolicyPreviewResponse {
        registry_id,
        repository_name: name.to_string(),
        lifecycle_policy_text: text,
        // The preview is evaluated before the answer: there is never one in progress.
        status: "COMPLETE",
    })
}

pub(crate) async fn get_lifecycle_policy_preview(
    ctx: &Ctx<'_>,
    req: dto::GetLifecyclePolicyPreviewRequest,
) -> Result<dto::GetLifecyclePolicyPreviewResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let status = match req.filter.as_ref().and_then(|f| f.tag_status.as_deref()) {
        None => TagStatus::Any,
        Some(s) => match validate::one_of(s, "filter.tagStatus", &["TAGGED", "UNTAGGED", "ANY"])? {
            "TAGGED" => TagStatus::Tagged,
            "UNTAGGED" => TagStatus::Untagged,
            _ => TagStatus::Any,
        },
    };
    let ids = match &req.image_ids {
        Some(ids) => {
            validate::no_paging_with_ids(req.next_token.as_deref(), req.max_results, "imageIds")?;
            Some(image_ids(ids)?)
        }
        None => None,
    };
    if req.max_results.is_some_and(|n| !(1..=100).contains(&n)) {
        return Err(invalid(
            "maxResults",
            "Member must have value between 1 and 100",
        ));
    }
    let page = validate::page(req.next_token.as_deref(), req.max_results)?;
    let p = ctx
        .registry()
        .get_lifecycle_policy_preview(&ctx.principal, &repo, ids.as_deref(), status, page)
        .await?;
    Ok(dto::GetLifecyclePolicyPreviewResponse {
        registry_id: p.registry_id,
        repository_name: p.name.to_string(),
        lifecycle_policy_text: p.policy_text,
        status: "COMPLETE",
        next_token: p.next.map(|t| t.encode()),
        preview_results: p
            .results
            .into_iter()
            .map(|r| dto::LifecyclePolicyPreviewResult {
                action: match r.action() {
                    LifecycleAction::Expire => dto::LifecyclePolicyRuleAction {
                        kind: "EXPIRE",
                        target_storage_class: None,
                    },
                    LifecycleAction::Archive => dto::LifecyclePolicyRuleAction {
                        kind: "TRANSITION",
                        target_storage_class: Some("ARCHIVE"),
                    },
                },
                image_tags: r.tags,
                image_digest: r.digest,
                image_pushed_at: r.pushed_at as f64 / 1000.0,
                applied_rule_priority: r.rule_priority,
                storage_class: "STANDARD",
            })
            .collect(),
        summary: dto::LifecyclePolicyPreviewSummary {
            expiring_image_total_count: p.expiring,
            transitioning_image_total_counts: (p.archiving > 0).then(|| {
                vec![dto::TransitioningImageTotalCount {
                    target_storage_class: "ARCHIVE",
                    image_total_count: p.archiving,
                }]
            }),
        },
    })
}
