//! PutReplicationConfiguration and DescribeImageReplicationStatus (DescribeRegistry, which
//! shows the configuration, is in `account_settings.rs`). The generated checks have run on
//! the request: required members, lengths, the region and registry id patterns, and the
//! `PREFIX_MATCH` filter type.

use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr;
use crate::validate;

/// The registry's configuration from the request shape.
fn configuration(shape: ecr::ReplicationConfiguration) -> registry::ReplicationConfiguration {
    registry::ReplicationConfiguration {
        rules: shape
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| registry::ReplicationRule {
                destinations: r
                    .destinations
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| registry::ReplicationRuleDestination {
                        region: d.region.unwrap_or_default(),
                        registry_id: d.registry_id.unwrap_or_default(),
                    })
                    .collect(),
                repository_filters: r.repository_filters.map(|fs| {
                    fs.into_iter()
                        .map(|f| f.filter.unwrap_or_default())
                        .collect()
                }),
            })
            .collect(),
    }
}

/// The response shape of a configuration (PutReplicationConfiguration, DescribeRegistry).
pub(crate) fn configuration_shape(
    config: registry::ReplicationConfiguration,
) -> ecr::ReplicationConfiguration {
    ecr::ReplicationConfiguration {
        rules: Some(
            config
                .rules
                .into_iter()
                .map(|r| ecr::ReplicationRule {
                    destinations: Some(
                        r.destinations
                            .into_iter()
                            .map(|d| ecr::ReplicationDestination {
                                region: Some(d.region),
                                registry_id: Some(d.registry_id),
                            })
                            .collect(),
                    ),
                    repository_filters: r.repository_filters.map(|fs| {
                        fs.into_iter()
                            .map(|f| ecr::RepositoryFilter {
                                filter: Some(f),
                                filter_type: Some("PREFIX_MATCH".to_owned()),
                            })
                            .collect()
                    }),
                })
                .collect(),
        ),
    }
}

pub(crate) async fn put_replication_configuration(
    ctx: &Ctx<'_>,
    req: ecr::PutReplicationConfigurationRequest,
) -> Result<ecr::PutReplicationConfigurationResponse, ApiError> {
    let config = configuration(req.replication_configuration.unwrap_or_default());
    let stored = ctx
        .registry()
        .put_replication_configuration(&ctx.principal, config)
        .await?;
    Ok(ecr::PutReplicationConfigurationResponse {
        replication_configuration: Some(configuration_shape(stored)),
    })
}

pub(crate) async fn describe_image_replication_status(
    ctx: &Ctx<'_>,
    req: ecr::DescribeImageReplicationStatusRequest,
) -> Result<ecr::DescribeImageReplicationStatusResponse, ApiError> {
    let r = validate::repository(&req)?;
    let id = req.image_id.unwrap_or_default();
    let status = ctx
        .registry()
        .describe_image_replication_status(
            &ctx.principal,
            &r,
            id.image_digest.as_deref(),
            id.image_tag.as_deref(),
        )
        .await?;
    Ok(ecr::DescribeImageReplicationStatusResponse {
        repository_name: Some(r.name.to_string()),
        image_id: Some(ecr::ImageIdentifier {
            image_digest: Some(status.digest.to_string()),
            image_tag: status.tag.map(|t| t.to_string()),
        }),
        replication_statuses: Some(
            status
                .statuses
                .into_iter()
                .map(|s| {
                    let failed = s.status == "FAILED";
                    ecr::ImageReplicationStatus {
                        region: Some(s.destination.region),
                        registry_id: Some(s.destination.registry_id),
                        status: Some(s.status),
                        // Only a failed replication has a failure code; the code of a failed
                        // attempt that is still being retried stays internal.
                        failure_code: s.failure_code.filter(|_| failed),
                    }
                })
                .collect(),
        ),
    })
}
