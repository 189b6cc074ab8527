//! UpdateImageStorageClass, and the pull-time update exclusions (RegisterPullTimeUpdateExclusion,
//! DeregisterPullTimeUpdateExclusion, ListPullTimeUpdateExclusions).

use registry::{ImageIdInput, Page, PageToken};

use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr;
use crate::validate::{self, required};

/// ListPullTimeUpdateExclusions' page size when `maxResults` is absent.
const DEFAULT_PAGE: u32 = 100;

pub(crate) async fn update_image_storage_class(
    ctx: &Ctx<'_>,
    req: ecr::UpdateImageStorageClassRequest,
) -> Result<ecr::UpdateImageStorageClassResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let id = required(req.image_id, "imageId")?;
    // The generated checks allow only STANDARD and ARCHIVE.
    let archive = required(req.target_storage_class, "targetStorageClass")? == "ARCHIVE";
    let done = ctx
        .registry()
        .update_image_storage_class(
            &ctx.principal,
            &repo,
            &ImageIdInput {
                digest: id.image_digest,
                tag: id.image_tag,
            },
            archive,
        )
        .await?;
    Ok(ecr::UpdateImageStorageClassResponse {
        registry_id: Some(done.registry_id),
        repository_name: Some(done.name.to_string()),
        image_id: Some(ecr::ImageIdentifier {
            image_digest: Some(done.id.digest.to_string()),
            image_tag: done.id.tag.map(|t| t.to_string()),
        }),
        image_status: Some(done.status.as_str().to_owned()),
    })
}

pub(crate) async fn register_pull_time_update_exclusion(
    ctx: &Ctx<'_>,
    req: ecr::RegisterPullTimeUpdateExclusionRequest,
) -> Result<ecr::RegisterPullTimeUpdateExclusionResponse, ApiError> {
    let arn = required(req.principal_arn, "principalArn")?;
    let (arn, created_at) = ctx
        .registry()
        .register_pull_time_exclusion(&ctx.principal, &arn)
        .await?;
    Ok(ecr::RegisterPullTimeUpdateExclusionResponse {
        principal_arn: Some(arn),
        created_at: Some(created_at as f64 / 1000.0),
    })
}

pub(crate) async fn deregister_pull_time_update_exclusion(
    ctx: &Ctx<'_>,
    req: ecr::DeregisterPullTimeUpdateExclusionRequest,
) -> Result<ecr::DeregisterPullTimeUpdateExclusionResponse, ApiError> {
    let arn = required(req.principal_arn, "principalArn")?;
    let arn = ctx
        .registry()
        .deregister_pull_time_exclusion(&ctx.principal, &arn)
        .await?;
    Ok(ecr::DeregisterPullTimeUpdateExclusionResponse {
        principal_arn: Some(arn),
    })
}

pub(crate) async fn list_pull_time_update_exclusions(
    ctx: &Ctx<'_>,
    req: ecr::ListPullTimeUpdateExclusionsRequest,
) -> Result<ecr::ListPullTimeUpdateExclusionsResponse, ApiError> {
    // The generated checks bound maxResults to 1-1000.
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
    let (arns, next) = ctx
        .registry()
        .list_pull_time_exclusions(&ctx.principal, page)
        .await?;
    Ok(ecr::ListPullTimeUpdateExclusionsResponse {
        pull_time_update_exclusions: Some(arns),
        next_token: next.map(|t| t.encode()),
    })
}
