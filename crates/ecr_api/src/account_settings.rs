//! GetAccountSetting and PutAccountSetting (the names, values and effects are the
//! registry's, see `registry::ACCOUNT_SETTINGS`), and DescribeRegistry.

use crate::Ctx;
use crate::error::ApiError;
use crate::shapes::ecr;

pub(crate) async fn get_account_setting(
    ctx: &Ctx<'_>,
    req: ecr::GetAccountSettingRequest,
) -> Result<ecr::GetAccountSettingResponse, ApiError> {
    let name = req.name.unwrap_or_default();
    let value = ctx
        .registry()
        .account_setting(&ctx.principal, &name)
        .await?;
    Ok(ecr::GetAccountSettingResponse {
        name: Some(name),
        value: Some(value),
    })
}

pub(crate) async fn put_account_setting(
    ctx: &Ctx<'_>,
    req: ecr::PutAccountSettingRequest,
) -> Result<ecr::PutAccountSettingResponse, ApiError> {
    let name = req.name.unwrap_or_default();
    let value = req.value.unwrap_or_default();
    ctx.registry()
        .put_account_setting(&ctx.principal, &name, &value)
        .await?;
    Ok(ecr::PutAccountSettingResponse {
        name: Some(name),
        value: Some(value),
    })
}

pub(crate) async fn describe_registry(
    ctx: &Ctx<'_>,
    _req: ecr::DescribeRegistryRequest,
) -> Result<ecr::DescribeRegistryResponse, ApiError> {
    let registry = ctx.registry();
    let registry_id = registry.describe_registry(&ctx.principal).await?;
    let config = registry
        .describe_replication_configuration(&ctx.principal)
        .await?;
    Ok(ecr::DescribeRegistryResponse {
        registry_id: Some(registry_id),
        // ECR answers an empty rule list for a registry without replication.
        replication_configuration: Some(crate::replication::configuration_shape(config)),
    })
}
