//! GetAuthorizationToken: a registry password for `docker login -u AWS`, valid 12 hours.

use auth::token::{self, RegistryToken};

use crate::dto;
use crate::error::ApiError;
use crate::validate;
use crate::{Ctx, now_secs};

pub const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

pub(crate) fn get_authorization_token(
    ctx: &Ctx<'_>,
    req: dto::GetAuthorizationTokenRequest,
) -> Result<dto::GetAuthorizationTokenResponse, ApiError> {
    ctx.registry()
        .authorize_token(&ctx.principal, registry::Service::Private)?;
    let registry_ids = match &req.registry_ids {
        Some(ids) => {
            validate::list_len(ids, "registryIds", 1, 10)?;
            ids.iter()
                .map(|id| validate::registry_id(Some(id)).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => vec![ctx.principal.account_id.clone()],
    };
    let expires_at = now_secs() + TOKEN_LIFETIME_SECS;
    // One token serves every registry the principal may use; ECR still answers one entry per
    // registry id asked for.
    let password = token::mint(
        &ctx.api.config.signing_key,
        &RegistryToken {
            account_id: ctx.principal.account_id.clone(),
            region: ctx.registry().region().to_owned(),
            access_key_id: ctx.principal.access_key_id.clone(),
            arn: ctx.principal.arn.clone(),
            expires_at,
        },
    );
    let authorization_token = base64_simd::STANDARD.encode_to_string(format!("AWS:{password}"));
    Ok(dto::GetAuthorizationTokenResponse {
        authorization_data: registry_ids
            .iter()
            .map(|id| dto::AuthorizationData {
                authorization_token: authorization_token.clone(),
                expires_at: expires_at as f64,
                proxy_endpoint: ctx.proxy_endpoint(id),
            })
            .collect(),
    })
}
