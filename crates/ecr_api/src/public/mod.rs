//! The ECR Public front end (`SpencerFrontendService`, signing name `ecr-public`): the 23
//! operations of the `ecr-public/2020-10-30` model, beside the ECR one on the same `POST /`.
//! Shares the body reading, SigV4, the error rendering and the layer flow with ECR; its
//! request and response shapes and their constraint checks are generated
//! (`shapes/ecr_public.rs`). A public repository is the same registry use case as a private
//! one, reached with [`RepositoryRef::public`].

mod catalog;
mod images;
mod registries;
mod repositories;

use axum::response::Response;
use model::{RepositoryName, UploadId, is_registry_id};
use registry::RepositoryRef;

use crate::body::RequestBody;
use crate::error::ApiError;
use crate::shapes::ecr_public::{Operation, Request};
use crate::{Ctx, layers, respond};

/// Decodes and checks `body` as the input of `op`. An empty body is `{}`.
pub(crate) fn decode(op: Operation, body: &[u8]) -> Result<Request<'_>, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    let req = Request::decode(op, body).map_err(|e| ApiError::Serialization(e.to_string()))?;
    req.validate()?;
    Ok(req)
}

/// ECR Public is offered in one region (AWS: `us-east-1`); elsewhere every operation answers
/// UnsupportedCommandException with AWS's wording.
fn check_region(ctx: &Ctx<'_>, op: Operation, region: &str) -> Result<(), ApiError> {
    let public = &ctx.api.config.public_region;
    if region == public {
        return Ok(());
    }
    Err(ApiError::UnsupportedCommand(format!(
        "{} command is only supported in {public}.",
        op.name()
    )))
}

/// Runs an authenticated ECR Public request; `region` is its signature's.
pub(crate) async fn dispatch(
    ctx: &Ctx<'_>,
    region: &str,
    target: &str,
    op: Option<Operation>,
    body: RequestBody,
    logged_repository: &mut Option<String>,
) -> Result<Response, ApiError> {
    // BatchGetImage and GetDownloadUrlForLayer are not in the model: unknown, as AWS answers.
    let op = op.ok_or_else(|| ApiError::UnknownOperation(target.to_owned()))?;
    check_region(ctx, op, region)?;
    let req = decode(op, &body)?;
    use Request as R;
    match req {
        R::BatchCheckLayerAvailability(r) => {
            let repo = repository(
                ctx,
                r.registry_id.as_deref(),
                r.repository_name.as_deref(),
                true,
            )?;
            respond(
                &layers::check_layers(ctx, &repo, r.layer_digests.as_deref().unwrap_or_default())
                    .await?,
            )
        }
        R::InitiateLayerUpload(r) => {
            let repo = repository(
                ctx,
                r.registry_id.as_deref(),
                r.repository_name.as_deref(),
                true,
            )?;
            respond(&layers::initiate(ctx, &repo).await?)
        }
        R::UploadLayerPart(r) => {
            // For the request log: the front end does not read a part's body twice.
            *logged_repository = r.repository_name.as_deref().map(crate::logged_name);
            let part = upload_part(ctx, r, &body)?;
            respond(&layers::upload_layer_part(ctx, part, body).await?)
        }
        R::CompleteLayerUpload(r) => {
            let repo = repository(
                ctx,
                r.registry_id.as_deref(),
                r.repository_name.as_deref(),
                true,
            )?;
            let id = upload_id(r.upload_id.as_deref())?;
            respond(
                &layers::complete(
                    ctx,
                    repo,
                    id,
                    r.layer_digests.as_deref().unwrap_or_default(),
                )
                .await?,
            )
        }
        R::PutImage(r) => respond(&images::put_image(ctx, r).await?),
        R::DescribeImages(r) => respond(&images::describe_images(ctx, r).await?),
        R::DescribeImageTags(r) => respond(&images::describe_image_tags(ctx, r).await?),
        R::BatchDeleteImage(r) => respond(&images::batch_delete_image(ctx, r).await?),
        R::CreateRepository(r) => respond(&repositories::create_repository(ctx, r).await?),
        R::DescribeRepositories(r) => respond(&repositories::describe_repositories(ctx, r).await?),
        R::DeleteRepository(r) => respond(&repositories::delete_repository(ctx, r).await?),
        R::SetRepositoryPolicy(r) => respond(&repositories::set_repository_policy(ctx, r).await?),
        R::GetRepositoryPolicy(r) => respond(&repositories::get_repository_policy(ctx, r).await?),
        R::DeleteRepositoryPolicy(r) => {
            respond(&repositories::delete_repository_policy(ctx, r).await?)
        }
        R::ListTagsForResource(r) => respond(&repositories::list_tags_for_resource(ctx, r).await?),
        R::TagResource(r) => respond(&repositories::tag_resource(ctx, r).await?),
        R::UntagResource(r) => respond(&repositories::untag_resource(ctx, r).await?),
        R::GetRepositoryCatalogData(r) => {
            respond(&catalog::get_repository_catalog_data(ctx, r).await?)
        }
        R::PutRepositoryCatalogData(r) => {
            respond(&catalog::put_repository_catalog_data(ctx, r).await?)
        }
        R::DescribeRegistries(r) => respond(&registries::describe_registries(ctx, r).await?),
        R::GetRegistryCatalogData(r) => {
            respond(&registries::get_registry_catalog_data(ctx, r).await?)
        }
        R::PutRegistryCatalogData(r) => {
            respond(&registries::put_registry_catalog_data(ctx, r).await?)
        }
        R::GetAuthorizationToken(r) => respond(&registries::get_authorization_token(ctx, r)?),
    }
}

/// An UploadLayerPart checked by `validate()`, as the shared layer flow takes it; lets go of
/// `r`'s borrow of `body`, which the part is then decoded within.
fn upload_part(
    ctx: &Ctx<'_>,
    r: crate::shapes::ecr_public::UploadLayerPartRequest<'_>,
    body: &[u8],
) -> Result<layers::UploadPart, ApiError> {
    let repo = repository(
        ctx,
        r.registry_id.as_deref(),
        r.repository_name.as_deref(),
        true,
    )?;
    layers::UploadPart::new(
        repo,
        upload_id(r.upload_id.as_deref())?,
        non_negative(r.part_first_byte),
        non_negative(r.part_last_byte),
        r.layer_part_blob.unwrap_or_default(),
        body,
    )
}

/// A member `validate()` has already found present and at least 0.
fn non_negative(v: Option<i64>) -> u64 {
    v.map_or(0, |v| v.max(0) as u64)
}

/// An `uploadId`, present and of the model's pattern (checked by `validate()`).
fn upload_id(v: Option<&str>) -> Result<UploadId, ApiError> {
    v.and_then(UploadId::parse)
        .ok_or_else(|| crate::error::invalid("uploadId", "Member must not be null"))
}

/// The public repository a request names. `registryId` is an account id, or, where the model
/// says `RegistryIdOrAlias` (`or_alias`), a registry alias; berth knows the alias of every
/// account it serves, so an unknown alias is RegistryNotFoundException.
fn repository(
    ctx: &Ctx<'_>,
    registry_id: Option<&str>,
    name: Option<&str>,
    or_alias: bool,
) -> Result<RepositoryRef, ApiError> {
    let registry_id = match registry_id {
        None => None,
        Some(id) if is_registry_id(id) => Some(id.to_owned()),
        Some(alias) if or_alias => Some(
            ctx.registry()
                .public_account(alias)
                .ok_or_else(|| {
                    ApiError::RegistryNotFound(format!(
                        "The registry with alias '{alias}' does not exist."
                    ))
                })?
                .to_owned(),
        ),
        // `RegistryId`'s pattern is checked by `validate()`; this is not reached.
        Some(_) => {
            return Err(crate::error::invalid(
                "registryId",
                "must satisfy regular expression '[0-9]{12}'",
            ));
        }
    };
    // `validate()` has checked the name against Public's model (2-205, its pattern), which
    // is stricter than what `RepositoryName` accepts.
    let name = name.unwrap_or_default();
    let name = RepositoryName::parse(name).map_err(|_| {
        crate::error::invalid(
            "repositoryName",
            &format!(
                "must satisfy regular expression '{}'",
                RepositoryName::PATTERN
            ),
        )
    })?;
    Ok(RepositoryRef::public(registry_id, name))
}

/// The account a repository-scoped response names.
fn account_of(ctx: &Ctx<'_>, repo: &RepositoryRef) -> String {
    repo.registry_id
        .clone()
        .unwrap_or_else(|| ctx.principal.account_id.clone())
}

/// `host[:port]` the request reached: where `<alias>/<name>` URIs point.
fn host<'a>(ctx: &'a Ctx<'_>) -> &'a str {
    ctx.base_url.split("://").nth(1).unwrap_or(&ctx.base_url)
}
