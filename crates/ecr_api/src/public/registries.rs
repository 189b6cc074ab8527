//! DescribeRegistries, GetRegistryCatalogData, PutRegistryCatalogData and
//! GetAuthorizationToken: the caller's public registry, which every account has (berth makes
//! none and deletes none), with its one alias.

use auth::token::{self, RegistryToken, TokenScope};
use registry::PublicRegistry;

use super::host;
use crate::error::ApiError;
use crate::shapes::ecr_public as p;
use crate::{Ctx, now_secs};

fn registry_shape(ctx: &Ctx<'_>, r: &PublicRegistry) -> p::Registry {
    p::Registry {
        registry_id: Some(r.registry_id.clone()),
        registry_arn: Some(r.arn.clone()),
        registry_uri: Some(r.uri(host(ctx))),
        verified: Some(r.verified),
        // The generated alias (the default, which the registry was created with) and a
        // configured one (the primary, which URIs show), or one alias that is both.
        aliases: Some(
            r.aliases
                .iter()
                .map(|a| p::RegistryAlias {
                    name: Some(a.name.clone()),
                    status: Some(p::RegistryAliasStatus::Active.as_str().to_owned()),
                    primary_registry_alias: Some(a.primary),
                    default_registry_alias: Some(a.default),
                })
                .collect(),
        ),
    }
}

fn catalog_shape(r: &PublicRegistry) -> p::RegistryCatalogData {
    p::RegistryCatalogData {
        display_name: r.display_name.clone(),
    }
}

/// The caller's registry: one page of one registry, whatever `maxResults` says, and no
/// `nextToken` (a token from nowhere is still refused, as for every paged operation).
pub(crate) async fn describe_registries(
    ctx: &Ctx<'_>,
    req: p::DescribeRegistriesRequest,
) -> Result<p::DescribeRegistriesResponse, ApiError> {
    crate::validate::page(req.next_token.as_deref(), req.max_results)?;
    let r = ctx.registry().public_registry(&ctx.principal).await?;
    Ok(p::DescribeRegistriesResponse {
        registries: Some(vec![registry_shape(ctx, &r)]),
        next_token: None,
    })
}

pub(crate) async fn get_registry_catalog_data(
    ctx: &Ctx<'_>,
    _req: p::GetRegistryCatalogDataRequest,
) -> Result<p::GetRegistryCatalogDataResponse, ApiError> {
    let r = ctx.registry().public_registry(&ctx.principal).await?;
    Ok(p::GetRegistryCatalogDataResponse {
        registry_catalog_data: Some(catalog_shape(&r)),
    })
}

pub(crate) async fn put_registry_catalog_data(
    ctx: &Ctx<'_>,
    req: p::PutRegistryCatalogDataRequest,
) -> Result<p::PutRegistryCatalogDataResponse, ApiError> {
    let r = ctx
        .registry()
        .put_registry_catalog_data(&ctx.principal, req.display_name.as_deref())
        .await?;
    Ok(p::PutRegistryCatalogDataResponse {
        registry_catalog_data: Some(catalog_shape(&r)),
    })
}

/// A password for `docker login -u AWS <berth host>` that opens the caller's public
/// repositories for pushes (pulls need none), and nothing of the private registry: its MAC
/// is made for another purpose than ECR's tokens. Valid 12 hours, as ECR Public's.
pub(crate) fn get_authorization_token(
    ctx: &Ctx<'_>,
    _req: p::GetAuthorizationTokenRequest,
) -> Result<p::GetAuthorizationTokenResponse, ApiError> {
    // `ecr-public:GetAuthorizationToken` must be in the key's identity policy, if it has one.
    ctx.registry()
        .authorize_token(&ctx.principal, registry::Service::Public)?;
    let expires_at = now_secs() + token::TOKEN_LIFETIME_SECS;
    let password = token::mint_for(
        TokenScope::Public,
        &ctx.api.config.signing_key,
        &RegistryToken {
            account_id: ctx.principal.account_id.clone(),
            region: ctx.registry().region().to_owned(),
            access_key_id: ctx.principal.access_key_id.clone(),
            arn: ctx.principal.arn.clone(),
            expires_at,
        },
    );
    Ok(p::GetAuthorizationTokenResponse {
        authorization_data: Some(p::AuthorizationData {
            authorization_token: Some(
                base64_simd::STANDARD.encode_to_string(format!("AWS:{password}")),
            ),
            expires_at: Some(expires_at as f64),
        }),
    })
}
