//! GetRepositoryCatalogData and PutRepositoryCatalogData: what the ECR Public Gallery shows of
//! a repository. The model has checked every length (the logo's 512000 bytes included).

use registry::{CatalogData, RepositoryRecord};

use super::repository;
use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr_public as p;

/// `catalogData` of a request as the registry's catalog data and the logo's bytes.
pub(super) fn catalog_input(c: p::RepositoryCatalogDataInput) -> (CatalogData, Option<Vec<u8>>) {
    (
        CatalogData {
            description: c.description,
            architectures: c.architectures,
            operating_systems: c.operating_systems,
            about_text: c.about_text,
            usage_text: c.usage_text,
            logo_content_type: None,
        },
        c.logo_image_blob.map(|b| b.0),
    )
}

/// Stored catalog data as ECR Public's `RepositoryCatalogData`: the logo is a public URL
/// (berth's logo route) rather than bytes; berth sells nothing on AWS Marketplace.
pub(super) fn catalog_shape(
    ctx: &Ctx<'_>,
    repo: &RepositoryRecord,
    data: &CatalogData,
) -> p::RepositoryCatalogData {
    p::RepositoryCatalogData {
        description: data.description.clone(),
        architectures: data.architectures.clone(),
        operating_systems: data.operating_systems.clone(),
        logo_url: data
            .logo_content_type
            .as_ref()
            .map(|_| format!("{}{}", ctx.base_url, ctx.registry().logo_path(repo))),
        about_text: data.about_text.clone(),
        usage_text: data.usage_text.clone(),
        marketplace_certified: Some(false),
    }
}

/// A repository created without catalog data has an empty one (as the Gallery shows it), so
/// RepositoryCatalogDataNotFoundException is never the answer: the repository's absence is
/// RepositoryNotFoundException.
pub(crate) async fn get_repository_catalog_data(
    ctx: &Ctx<'_>,
    req: p::GetRepositoryCatalogDataRequest,
) -> Result<p::GetRepositoryCatalogDataResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let (record, data) = ctx
        .registry()
        .repository_catalog_data(&ctx.principal, &r)
        .await?;
    Ok(p::GetRepositoryCatalogDataResponse {
        catalog_data: Some(catalog_shape(ctx, &record, &data.unwrap_or_default())),
    })
}

pub(crate) async fn put_repository_catalog_data(
    ctx: &Ctx<'_>,
    req: p::PutRepositoryCatalogDataRequest,
) -> Result<p::PutRepositoryCatalogDataResponse, ApiError> {
    let r = repository(
        ctx,
        req.registry_id.as_deref(),
        req.repository_name.as_deref(),
        false,
    )?;
    let (data, logo) = catalog_input(req.catalog_data.unwrap_or_default());
    let (record, stored) = ctx
        .registry()
        .put_repository_catalog_data(&ctx.principal, &r, data, logo.as_deref())
        .await?;
    Ok(p::PutRepositoryCatalogDataResponse {
        catalog_data: Some(catalog_shape(ctx, &record, &stored)),
    })
}
