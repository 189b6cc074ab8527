//! PutImage, DescribeImages, DescribeImageTags, BatchDeleteImage of ECR Public: the registry's
//! image use cases, in Public's shapes (no BatchGetImage or ListImages: pulls go through `/v2`).

use registry::{
    ImageFailure, ImageFailureCode, ImageIdInput, ImageIdOutput, ImageSummary, Page, PageToken,
    PutImageRequest, TagStatus,
};

use super::{account_of, repository};
use crate::Ctx;
use crate::error::{ApiError, invalid};
use crate::shapes::ecr_public as p;
use crate::validate;

fn id_shape(id: &ImageIdOutput) -> p::ImageIdentifier {
    p::ImageIdentifier {
        image_digest: Some(id.digest.to_string()),
        image_tag: id.tag.as_ref().map(ToString::to_string),
    }
}

fn failure_shape(f: &ImageFailure) -> p::ImageFailure {
    let code = match f.code {
        ImageFailureCode::InvalidImageDigest => p::ImageFailureCode::InvalidImageDigest,
        ImageFailureCode::InvalidImageTag => p::ImageFailureCode::InvalidImageTag,
        ImageFailureCode::ImageTagDoesNotMatchDigest => {
            p::ImageFailureCode::ImageTagDoesNotMatchDigest
        }
        ImageFailureCode::ImageNotFound => p::ImageFailureCode::ImageNotFound,
        ImageFailureCode::MissingDigestAndTag => p::ImageFailureCode::MissingDigestAndTag,
        ImageFailureCode::ImageReferencedByManifestList => {
            p::ImageFailureCode::ImageReferencedByManifestList
        }
        // Public repositories are never pull-through caches (ECR Public has no such rules);
        // ECR Public's model has no upstream codes.
        ImageFailureCode::UpstreamAccessDenied
        | ImageFailureCode::UpstreamTooManyRequests
        | ImageFailureCode::UpstreamUnavailable => p::ImageFailureCode::ImageNotFound,
        // ECR Public has no archive: UpdateImageStorageClass is private ECR's alone.
        ImageFailureCode::ImageInaccessible => p::ImageFailureCode::ImageNotFound,
    };
    p::ImageFailure {
        image_id: Some(p::ImageIdentifier {
            image_digest: f.id.digest.clone(),
            image_tag: f.id.tag.clone(),
        }),
        failure_code: Some(code.as_str().to_owned()),
        failure_reason: Some(f.reason.clone()),
    }
}

fn image_ids(ids: &[p::ImageIdentifier]) -> Vec<ImageIdInput> {
    ids.iter()
        .map(|i| ImageIdInput {
            digest: i.image_digest.clone(),
            tag: i.image_tag.clone(),
        })
        .collect()
}

fn page(next_token: Option<&str>, max_results: Option<i64>) -> Result<Page, ApiError> {
    validate::page(next_token, max_results)
}

pub(crate) async fn put_image(
    ctx: &Ctx<'_>,
    req: p::PutImageRequest,
) -> Result<p::PutImageResponse, ApiError> {
    let repo = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        true,
    )?;
    let manifest = req.image_manifest.unwrap_or_default();
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
    Ok(p::PutImageResponse {
        image: Some(p::Image {
            registry_id: Some(account_of(ctx, &repo)),
            repository_name: Some(repo.name.to_string()),
            image_id: Some(id_shape(&id)),
            image_manifest: Some(String::from_utf8_lossy(&image.manifest).into_owned()),
            image_manifest_media_type: Some(image.media_type.clone()),
        }),
    })
}

fn detail(registry_id: &str, name: &str, s: ImageSummary) -> p::ImageDetail {
    p::ImageDetail {
        registry_id: Some(registry_id.to_owned()),
        repository_name: Some(name.to_owned()),
        image_digest: Some(s.digest.to_string()),
        image_tags: (!s.tags.is_empty()).then(|| s.tags.iter().map(ToString::to_string).collect()),
        image_size_in_bytes: Some(s.size as i64),
        image_pushed_at: Some(s.pushed_at as f64 / 1000.0),
        image_manifest_media_type: Some(s.media_type),
        artifact_media_type: s.artifact_media_type,
    }
}

pub(crate) async fn describe_images(
    ctx: &Ctx<'_>,
    req: p::DescribeImagesRequest,
) -> Result<p::DescribeImagesResponse, ApiError> {
    let repo = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let ids = match &req.image_ids {
        Some(ids) => {
            validate::no_paging_with_ids(req.next_token.as_deref(), req.max_results, "imageIds")?;
            Some(image_ids(ids))
        }
        None => None,
    };
    let page = page(req.next_token.as_deref(), req.max_results)?;
    let (images, next) = ctx
        .registry()
        .describe_images(
            &ctx.principal,
            &repo,
            ids.as_deref(),
            TagStatus::Any,
            registry::StatusFilter::Any,
            page,
        )
        .await?;
    let registry_id = account_of(ctx, &repo);
    Ok(p::DescribeImagesResponse {
        image_details: Some(
            images
                .into_iter()
                .map(|s| detail(&registry_id, repo.name.as_str(), s))
                .collect(),
        ),
        next_token: next.map(|t| t.encode()),
    })
}

/// Tags are listed image by image, in the order DescribeImages pages through them; the page
/// token is DescribeImages's, and `maxResults` bounds the images of a page (each image gives
/// one detail per tag). Untagged images have no tag to list.
pub(crate) async fn describe_image_tags(
    ctx: &Ctx<'_>,
    req: p::DescribeImageTagsRequest,
) -> Result<p::DescribeImageTagsResponse, ApiError> {
    let repo = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let page = page(req.next_token.as_deref(), req.max_results)?;
    let (images, next): (Vec<ImageSummary>, Option<PageToken>) = ctx
        .registry()
        .describe_images(
            &ctx.principal,
            &repo,
            None,
            TagStatus::Tagged,
            registry::StatusFilter::Any,
            page,
        )
        .await?;
    let mut details = Vec::new();
    for s in images {
        let pushed_at = s.pushed_at as f64 / 1000.0;
        let image = p::ReferencedImageDetail {
            image_digest: Some(s.digest.to_string()),
            image_size_in_bytes: Some(s.size as i64),
            image_pushed_at: Some(pushed_at),
            image_manifest_media_type: Some(s.media_type.clone()),
            artifact_media_type: s.artifact_media_type.clone(),
        };
        for tag in &s.tags {
            details.push(p::ImageTagDetail {
                image_tag: Some(tag.to_string()),
                // berth keeps no time per tag: a tag is as old as the image it was pushed with.
                created_at: Some(pushed_at),
                image_detail: Some(image.clone()),
            });
        }
    }
    Ok(p::DescribeImageTagsResponse {
        image_tag_details: Some(details),
        next_token: next.map(|t| t.encode()),
    })
}

pub(crate) async fn batch_delete_image(
    ctx: &Ctx<'_>,
    req: p::BatchDeleteImageRequest,
) -> Result<p::BatchDeleteImageResponse, ApiError> {
    let repo = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        true,
    )?;
    let ids = image_ids(req.image_ids.as_deref().unwrap_or_default());
    if ids.is_empty() {
        return Err(invalid(
            "imageIds",
            "Member must have length greater than or equal to 1",
        ));
    }
    let res = ctx
        .registry()
        .batch_delete_image(&ctx.principal, &repo, &ids)
        .await?;
    Ok(p::BatchDeleteImageResponse {
        image_ids: Some(res.deleted.iter().map(id_shape).collect()),
        failures: Some(res.failures.iter().map(failure_shape).collect()),
    })
}
