//! PutImageScanningConfiguration, the registry's scanning configuration
//! (GetRegistryScanningConfiguration, PutRegistryScanningConfiguration,
//! BatchGetRepositoryScanningConfiguration), StartImageScan and DescribeImageScanFindings.
//! The rules and their effect on each repository are the registry's (`registry::scanning`).

use registry::{ImageIdInput, RegistryScanningConfiguration, RepositoryScanning, ScanningRule};

use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr;
use crate::validate;

pub(crate) async fn put_image_scanning_configuration(
    ctx: &Ctx<'_>,
    req: ecr::PutImageScanningConfigurationRequest,
) -> Result<ecr::PutImageScanningConfigurationResponse, ApiError> {
    let r = validate::repository(&req)?;
    // botocore sends `{}` for a configuration without `scanOnPush`: ECR reads it as false.
    let scan_on_push = req
        .image_scanning_configuration
        .and_then(|c| c.scan_on_push)
        .unwrap_or(false);
    let repo = ctx
        .registry()
        .put_scan_on_push(&ctx.principal, &r, scan_on_push)
        .await?;
    Ok(ecr::PutImageScanningConfigurationResponse {
        registry_id: Some(repo.registry_id),
        repository_name: Some(repo.name.to_string()),
        image_scanning_configuration: Some(ecr::ImageScanningConfiguration {
            scan_on_push: Some(repo.scan_on_push),
        }),
    })
}

fn configuration_dto(c: RegistryScanningConfiguration) -> ecr::RegistryScanningConfiguration {
    ecr::RegistryScanningConfiguration {
        scan_type: Some(c.scan_type),
        rules: Some(
            c.rules
                .into_iter()
                .map(|r| ecr::RegistryScanningRule {
                    scan_frequency: Some(r.scan_frequency),
                    repository_filters: Some(filters_dto(r.repository_filters)),
                })
                .collect(),
        ),
    }
}

fn filters_dto(filters: Vec<String>) -> Vec<ecr::ScanningRepositoryFilter> {
    filters
        .into_iter()
        .map(|f| ecr::ScanningRepositoryFilter {
            filter: Some(f),
            filter_type: Some("WILDCARD".to_owned()),
        })
        .collect()
}

pub(crate) async fn get_registry_scanning_configuration(
    ctx: &Ctx<'_>,
    _req: ecr::GetRegistryScanningConfigurationRequest,
) -> Result<ecr::GetRegistryScanningConfigurationResponse, ApiError> {
    let (registry_id, config) = ctx
        .registry()
        .registry_scanning_configuration(&ctx.principal)
        .await?;
    Ok(ecr::GetRegistryScanningConfigurationResponse {
        registry_id: Some(registry_id),
        scanning_configuration: Some(configuration_dto(config)),
    })
}

pub(crate) async fn put_registry_scanning_configuration(
    ctx: &Ctx<'_>,
    req: ecr::PutRegistryScanningConfigurationRequest,
) -> Result<ecr::PutRegistryScanningConfigurationResponse, ApiError> {
    // The generated checks have made every member of a rule present and well-formed.
    let config = RegistryScanningConfiguration {
        scan_type: req.scan_type.unwrap_or_else(|| "BASIC".to_owned()),
        rules: req
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| ScanningRule {
                scan_frequency: r.scan_frequency.unwrap_or_default(),
                repository_filters: r
                    .repository_filters
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| f.filter)
                    .collect(),
            })
            .collect(),
    };
    let (_, config) = ctx
        .registry()
        .put_registry_scanning_configuration(&ctx.principal, config)
        .await?;
    Ok(ecr::PutRegistryScanningConfigurationResponse {
        registry_scanning_configuration: Some(configuration_dto(config)),
    })
}

fn repository_configuration_dto(
    ctx: &Ctx<'_>,
    s: RepositoryScanning,
) -> ecr::RepositoryScanningConfiguration {
    let repo = &s.repository;
    ecr::RepositoryScanningConfiguration {
        repository_arn: Some(repo.service.repository_arn(
            ctx.registry().region(),
            &repo.registry_id,
            repo.name.as_str(),
        )),
        repository_name: Some(repo.name.to_string()),
        scan_on_push: Some(s.scan_on_push),
        scan_frequency: Some(s.scan_frequency.to_owned()),
        applied_scan_filters: Some(filters_dto(s.applied_filters)),
    }
}

pub(crate) async fn batch_get_repository_scanning_configuration(
    ctx: &Ctx<'_>,
    req: ecr::BatchGetRepositoryScanningConfigurationRequest,
) -> Result<ecr::BatchGetRepositoryScanningConfigurationResponse, ApiError> {
    let names = req
        .repository_names
        .unwrap_or_default()
        .iter()
        .map(|n| validate::repository_name(n, "repositoryNames.member"))
        .collect::<Result<Vec<_>, _>>()?;
    let (found, missing) = ctx
        .registry()
        .repository_scanning_configurations(&ctx.principal, &names)
        .await?;
    let registry_id = &ctx.principal.account_id;
    Ok(ecr::BatchGetRepositoryScanningConfigurationResponse {
        scanning_configurations: Some(
            found
                .into_iter()
                .map(|s| repository_configuration_dto(ctx, s))
                .collect(),
        ),
        failures: Some(
            missing
                .into_iter()
                .map(|name| ecr::RepositoryScanningConfigurationFailure {
                    failure_code: Some("REPOSITORY_NOT_FOUND".to_owned()),
                    failure_reason: Some(format!(
                        "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
                    )),
                    repository_name: Some(name.to_string()),
                })
                .collect(),
        ),
    })
}

fn image_id(id: Option<ecr::ImageIdentifier>) -> Result<ImageIdInput, ApiError> {
    let id = validate::required(id, "imageId")?;
    Ok(ImageIdInput {
        digest: id.image_digest,
        tag: id.image_tag,
    })
}

/// Never answers a scan: see `Registry::start_image_scan`.
pub(crate) async fn start_image_scan(
    ctx: &Ctx<'_>,
    req: ecr::StartImageScanRequest,
) -> Result<ecr::StartImageScanResponse, ApiError> {
    let r = validate::repository(&req)?;
    let id = image_id(req.image_id)?;
    let never = ctx
        .registry()
        .start_image_scan(&ctx.principal, &r, &id)
        .await?;
    match never {}
}

/// Never answers findings: see `Registry::describe_image_scan_findings`.
pub(crate) async fn describe_image_scan_findings(
    ctx: &Ctx<'_>,
    req: ecr::DescribeImageScanFindingsRequest,
) -> Result<ecr::DescribeImageScanFindingsResponse, ApiError> {
    let r = validate::repository(&req)?;
    let id = image_id(req.image_id)?;
    let never = ctx
        .registry()
        .describe_image_scan_findings(&ctx.principal, &r, &id)
        .await?;
    match never {}
}
