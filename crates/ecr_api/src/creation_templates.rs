//! CreateRepositoryCreationTemplate, DescribeRepositoryCreationTemplates,
//! UpdateRepositoryCreationTemplate and DeleteRepositoryCreationTemplate. The templates and
//! the repositories made from them are the registry's (`registry::creation_templates`).

use registry::{CreationTemplate, EncryptionConfiguration, Page, TemplateFields};

use crate::Ctx;
use crate::dto;
use crate::error::ApiError;
use crate::repositories::{exclusion_filters, resource_tag};
use crate::shapes::ecr;
use crate::validate::required;

/// The members Create and Update share, as the registry takes them. The generated checks
/// have already held them to the model.
#[allow(clippy::too_many_arguments)]
fn fields(
    description: Option<String>,
    encryption: Option<ecr::EncryptionConfigurationForRepositoryCreationTemplate>,
    resource_tags: Option<Vec<ecr::Tag>>,
    image_tag_mutability: Option<String>,
    exclusions: Option<Vec<ecr::ImageTagMutabilityExclusionFilter>>,
    repository_policy: Option<String>,
    lifecycle_policy: Option<String>,
    applied_for: Option<Vec<String>>,
    custom_role_arn: Option<String>,
) -> Result<TemplateFields, ApiError> {
    Ok(TemplateFields {
        description,
        encryption: encryption.map(|e| EncryptionConfiguration {
            encryption_type: e.encryption_type.unwrap_or_default(),
            kms_key: e.kms_key,
        }),
        resource_tags: resource_tags
            .map(|tags| {
                tags.into_iter()
                    .map(|t| resource_tag(t.key, t.value))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        image_tag_mutability,
        mutability_exclusions: exclusions
            .map(|f| {
                exclusion_filters(
                    f.into_iter()
                        .map(|f| dto::MutabilityExclusionFilter {
                            filter_type: f.filter_type,
                            filter: f.filter,
                        })
                        .collect(),
                )
            })
            .transpose()?,
        repository_policy,
        lifecycle_policy,
        applied_for,
        custom_role_arn,
    })
}

fn template_dto(t: CreationTemplate) -> ecr::RepositoryCreationTemplate {
    ecr::RepositoryCreationTemplate {
        prefix: Some(t.prefix),
        description: t.description,
        encryption_configuration: Some(ecr::EncryptionConfigurationForRepositoryCreationTemplate {
            encryption_type: Some(t.encryption_type),
            kms_key: t.kms_key,
        }),
        resource_tags: Some(
            t.resource_tags
                .into_iter()
                .map(|(k, v)| ecr::Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
        ),
        image_tag_mutability: Some(t.image_tag_mutability),
        image_tag_mutability_exclusion_filters: (!t.mutability_exclusions.is_empty()).then(|| {
            t.mutability_exclusions
                .into_iter()
                .map(|f| ecr::ImageTagMutabilityExclusionFilter {
                    filter_type: Some("WILDCARD".to_owned()),
                    filter: Some(f),
                })
                .collect()
        }),
        repository_policy: t.repository_policy,
        lifecycle_policy: t.lifecycle_policy,
        applied_for: Some(t.applied_for),
        custom_role_arn: t.custom_role_arn,
        created_at: Some(t.created_at as f64 / 1000.0),
        updated_at: Some(t.updated_at as f64 / 1000.0),
    }
}

pub(crate) async fn create_repository_creation_template(
    ctx: &Ctx<'_>,
    req: ecr::CreateRepositoryCreationTemplateRequest,
) -> Result<ecr::CreateRepositoryCreationTemplateResponse, ApiError> {
    let prefix = required(req.prefix, "prefix")?;
    let f = fields(
        req.description,
        req.encryption_configuration,
        req.resource_tags,
        req.image_tag_mutability,
        req.image_tag_mutability_exclusion_filters,
        req.repository_policy,
        req.lifecycle_policy,
        req.applied_for,
        req.custom_role_arn,
    )?;
    let (registry_id, t) = ctx
        .registry()
        .create_creation_template(&ctx.principal, &prefix, f)
        .await?;
    Ok(ecr::CreateRepositoryCreationTemplateResponse {
        registry_id: Some(registry_id),
        repository_creation_template: Some(template_dto(t)),
    })
}

pub(crate) async fn update_repository_creation_template(
    ctx: &Ctx<'_>,
    req: ecr::UpdateRepositoryCreationTemplateRequest,
) -> Result<ecr::UpdateRepositoryCreationTemplateResponse, ApiError> {
    let prefix = required(req.prefix, "prefix")?;
    let f = fields(
        req.description,
        req.encryption_configuration,
        req.resource_tags,
        req.image_tag_mutability,
        req.image_tag_mutability_exclusion_filters,
        req.repository_policy,
        req.lifecycle_policy,
        req.applied_for,
        req.custom_role_arn,
    )?;
    let (registry_id, t) = ctx
        .registry()
        .update_creation_template(&ctx.principal, &prefix, f)
        .await?;
    Ok(ecr::UpdateRepositoryCreationTemplateResponse {
        registry_id: Some(registry_id),
        repository_creation_template: Some(template_dto(t)),
    })
}

pub(crate) async fn delete_repository_creation_template(
    ctx: &Ctx<'_>,
    req: ecr::DeleteRepositoryCreationTemplateRequest,
) -> Result<ecr::DeleteRepositoryCreationTemplateResponse, ApiError> {
    let prefix = required(req.prefix, "prefix")?;
    let (registry_id, t) = ctx
        .registry()
        .delete_creation_template(&ctx.principal, &prefix)
        .await?;
    Ok(ecr::DeleteRepositoryCreationTemplateResponse {
        registry_id: Some(registry_id),
        repository_creation_template: Some(template_dto(t)),
    })
}

pub(crate) async fn describe_repository_creation_templates(
    ctx: &Ctx<'_>,
    req: ecr::DescribeRepositoryCreationTemplatesRequest,
) -> Result<ecr::DescribeRepositoryCreationTemplatesResponse, ApiError> {
    // The generated checks bound maxResults to 1-1000.
    let page = Page {
        after: req
            .next_token
            .as_deref()
            .map(registry::PageToken::decode)
            .transpose()?,
        limit: req
            .max_results
            .map_or(100, |n| u32::try_from(n).unwrap_or(100)),
    };
    let (registry_id, templates, next) = ctx
        .registry()
        .describe_creation_templates(&ctx.principal, req.prefixes.as_deref(), page)
        .await?;
    Ok(ecr::DescribeRepositoryCreationTemplatesResponse {
        registry_id: Some(registry_id),
        repository_creation_templates: Some(templates.into_iter().map(template_dto).collect()),
        next_token: next.map(|t| t.encode()),
    })
}
