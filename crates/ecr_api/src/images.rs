//! PutImage, BatchGetImage, ListImages, DescribeImages, BatchDeleteImage.

use registry::{
    ImageFailure, ImageFailureCode, ImageIdInput, ImageIdOutput, ImageRecord, PutImageRequest,
    RepositoryRef,
};

use crate::Ctx;
use crate::dto;
use crate::error::{ApiError, invalid};
use crate::validate::{self, required};

/// The model's `imageManifest` maximum, in characters.
const MAX_MANIFEST_CHARS: usize = 4_194_304;

fn registry_id(ctx: &Ctx<'_>, r: &RepositoryRef) -> String {
    r.registry_id
        .clone()
        .unwrap_or_else(|| ctx.principal.account_id.clone())
}

fn id_dto(id: &ImageIdOutput) -> dto::ImageIdentifier {
    dto::ImageIdentifier {
        image_digest: Some(id.digest.to_string()),
        image_tag: id.tag.as_ref().map(ToString::to_string),
    }
}

fn image_dto(
    ctx: &Ctx<'_>,
    r: &RepositoryRef,
    id: &ImageIdOutput,
    img: &ImageRecord,
) -> dto::Image {
    dto::Image {
        registry_id: registry_id(ctx, r),
        repository_name: r.name.to_string(),
        image_id: id_dto(id),
        // Stored bytes come from a JSON string (ECR) or were checked to be JSON (/v2): UTF-8.
        image_manifest: String::from_utf8_lossy(&img.manifest).into_owned(),
        image_manifest_media_type: img.media_type.clone(),
    }
}

fn failure_dto(f: &ImageFailure) -> dto::ImageFailure {
    dto::ImageFailure {
        image_id: dto::ImageIdentifier {
            image_digest: f.id.digest.clone(),
            image_tag: f.id.tag.clone(),
        },
        failure_code: match f.code {
            ImageFailureCode::InvalidImageDigest => "InvalidImageDigest",
            ImageFailureCode::InvalidImageTag => "InvalidImageTag",
            ImageFailureCode::ImageTagDoesNotMatchDigest => "ImageTagDoesNotMatchDigest",
            ImageFailureCode::ImageNotFound => "ImageNotFound",
            ImageFailureCode::MissingDigestAndTag => "MissingDigestAndTag",
            ImageFailureCode::ImageReferencedByManifestList => "ImageReferencedByManifestList",
            ImageFailureCode::UpstreamAccessDenied => "UpstreamAccessDenied",
            ImageFailureCode::UpstreamTooManyRequests => "UpstreamTooManyRequests",
            ImageFailureCode::UpstreamUnavailable => "UpstreamUnavailable",
            ImageFailureCode::ImageInaccessible => "ImageInaccessible",
        },
        failure_reason: f.reason.clone(),
    }
}

pub(crate) fn image_ids(ids: &[dto::ImageIdentifier]) -> Result<Vec<ImageIdInput>, ApiError> {
    validate::list_len(ids, "imageIds", 1, 100)?;
    Ok(ids
        .iter()
        .map(|i| ImageIdInput {
            digest: i.image_digest.clone(),
            tag: i.image_tag.clone(),
        })
        .collect())
}

pub(crate) async fn put_image(
    ctx: &Ctx<'_>,
    req: dto::PutImageRequest,
) -> Result<dto::PutImageResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let manifest = required(req.image_manifest, "imageManifest")?;
    let chars = manifest.chars().count();
    if chars == 0 || chars > MAX_MANIFEST_CHARS {
        return Err(invalid(
            "imageManifest",
            "Member must have length between 1 and 4194304",
        ));
    }
    let tag = req
        .image_tag
        .as_deref()
        .map(|t| validate::tag(t, "imageTag"))
        .transpose()?;
    let (image, tag) = ctx
        .registry()
        .put_image(
            &ctx.principal,
            &repo,
            PutImageRequest {
                manifest: manifest.into_bytes(),
                media_type: req.image_manifest_media_type,
                tag,
                digest: req.image_digest,
                allow_sha512: false,
            },
        )
        .await?;
    let id = ImageIdOutput {
        digest: image.digest.clone(),
        tag,
    };
    Ok(dto::PutImageResponse {
        image: image_dto(ctx, &repo, &id, &image),
    })
}

pub(crate) async fn batch_get_image(
    ctx: &Ctx<'_>,
    req: dto::BatchGetImageRequest,
) -> Result<dto::BatchGetImageResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let ids = image_ids(required(req.image_ids.as_deref(), "imageIds")?)?;
    if let Some(types) = &req.accepted_media_types {
        validate::list_len(types, "acceptedMediaTypes", 1, 100)?;
    }
    let res = ctx
        .registry()
        .batch_get_image(
            &ctx.principal,
            &repo,
            &ids,
            req.accepted_media_types.as_deref(),
        )
        .await?;
    Ok(dto::BatchGetImageResponse {
        images: res
            .images
            .iter()
            .map(|(id, img)| image_dto(ctx, &repo, id, img))
            .collect(),
        failures: res.failures.iter().map(failure_dto).collect(),
    })
}

pub(crate) async fn list_images(
    ctx: &Ctx<'_>,
    req: dto::ListImagesRequest,
) -> Result<dto::ListImagesResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let status = validate::tag_status(req.filter.as_ref())?;
    let filter = validate::image_status(req.filter.as_ref())?;
    let page = validate::page(req.next_token.as_deref(), req.max_results)?;
    let (ids, next) = ctx
        .registry()
        .list_images(&ctx.principal, &repo, status, filter, page)
        .await?;
    Ok(dto::ListImagesResponse {
        image_ids: ids.iter().map(id_dto).collect(),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn describe_images(
    ctx: &Ctx<'_>,
    req: dto::DescribeImagesRequest,
) -> Result<dto::DescribeImagesResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let status = validate::tag_status(req.filter.as_ref())?;
    let ids = match &req.image_ids {
        Some(ids) => {
            validate::no_paging_with_ids(req.next_token.as_deref(), req.max_results, "imageIds")?;
            Some(image_ids(ids)?)
        }
        None => None,
    };
    let filter = validate::image_status(req.filter.as_ref())?;
    let page = validate::page(req.next_token.as_deref(), req.max_results)?;
    let (images, next) = ctx
        .registry()
        .describe_images(&ctx.principal, &repo, ids.as_deref(), status, filter, page)
        .await?;
    let registry_id = registry_id(ctx, &repo);
    let now = ctx.registry().now();
    let secs = |t: i64| t as f64 / 1000.0;
    Ok(dto::DescribeImagesResponse {
        image_details: images
            .into_iter()
            .map(|s| dto::ImageDetail {
                registry_id: registry_id.clone(),
                repository_name: repo.name.to_string(),
                image_digest: s.digest.to_string(),
                image_tags: s.tags.iter().map(ToString::to_string).collect(),
                image_size_in_bytes: s.size,
                image_pushed_at: s.pushed_at as f64 / 1000.0,
                image_manifest_media_type: s.media_type,
                artifact_media_type: s.artifact_media_type,
                subject_manifest_digest: s.subject.map(|d| d.to_string()),
                image_status: s.state.status(now).as_str(),
                last_recorded_pull_time: s.state.last_pulled_at.map(secs),
                last_archived_at: s.state.last_archived_at.map(secs),
                // The time a restore completes, once it has.
                last_activated_at: s.state.last_activated_at.filter(|t| *t <= now).map(secs),
            })
            .collect(),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn batch_delete_image(
    ctx: &Ctx<'_>,
    req: dto::BatchDeleteImageRequest,
) -> Result<dto::BatchDeleteImageResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let ids = image_ids(required(req.image_ids.as_deref(), "imageIds")?)?;
    let res = ctx
        .registry()
        .batch_delete_image(&ctx.principal, &repo, &ids)
        .await?;
    Ok(dto::BatchDeleteImageResponse {
        image_ids: res.deleted.iter().map(id_dto).collect(),
        failures: res.failures.iter().map(failure_dto).collect(),
    })
}
