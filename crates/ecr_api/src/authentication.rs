//! Who signed a request: the SigV4 `Authorization` header checked against the configured
//! access keys (ecr-api.md section 1.4), with AWS's exceptions and wording. Errors never carry
//! the secret or the expected signature.

use auth::sigv4::{self, Authorization, RequestParts};
use axum::http::HeaderMap;
use registry::Principal;

use crate::{ApiError, EcrApi, now_secs};

/// How far a request's `X-Amz-Date` may be from the server's clock, as ECR allows.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// Parses the `Authorization` header and checks its credential scope: the service
/// (`signing_name`, `ecr` or `ecr-public`) and, for ECR, that the region is one this
/// deployment serves (every well-formed region name, or the configured `regions`). ECR Public's region is
/// checked once the signature is verified (see `public::check_region`).
pub(crate) fn parse(
    api: &EcrApi,
    headers: &HeaderMap,
    signing_name: &str,
    check_region: bool,
) -> Result<Authorization, ApiError> {
    let authz = headers.get("authorization").and_then(|v| v.to_str().ok());
    let sig = sigv4::parse_authorization(authz).map_err(|e| match e {
        sigv4::SigV4Error::Missing => ApiError::MissingAuthenticationToken,
        sigv4::SigV4Error::Incomplete(m) => ApiError::IncompleteSignature(m),
    })?;
    if sig.service != signing_name {
        return Err(ApiError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{signing_name}'. "
        )));
    }
    if check_region && !api.registries.serves(&sig.region) {
        return Err(ApiError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            sig.region
        )));
    }
    Ok(sig)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the signature over the request (whose body hashes to `payload_sha256`, hex) and
/// answers who made it. Without configured
/// keys, any well-formed signature is accepted for the default account (the laptop mode that
/// `berth serve` warns about at start).
pub(crate) fn authenticate(
    api: &EcrApi,
    sig: &Authorization,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    payload_sha256: String,
) -> Result<Principal, ApiError> {
    let Some(store) = &api.config.credentials else {
        let account_id = api.config.account_id.clone();
        return Ok(Principal {
            access_key_id: sig.access_key_id.clone(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            account_id,
        });
    };
    let identity = store
        .lookup(&sig.access_key_id)
        .ok_or_else(|| ApiError::UnrecognizedClient(INVALID_TOKEN.into()))?;

    let amz_date = header(headers, "x-amz-date").ok_or_else(|| {
        ApiError::IncompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let signed_at = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        ApiError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    if !amz_date.starts_with(&sig.date) {
        return Err(ApiError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            sig.date,
            &amz_date[..8]
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !sig.signed_headers.iter().any(|h| h == required) {
            return Err(ApiError::IncompleteSignature(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let now = now_secs() as i64;
    if signed_at < now - MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            sigv4::format_amz_date(now - MAX_CLOCK_SKEW_SECS),
            sigv4::format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::InvalidSignature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            sigv4::format_amz_date(now + MAX_CLOCK_SKEW_SECS),
            sigv4::format_amz_date(now)
        )));
    }
    let token = header(headers, "x-amz-security-token");
    if token.is_some()
        && !sig
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token")
    {
        return Err(ApiError::IncompleteSignature(
            "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if let Some(expected) = &identity.session_token
        && token.is_none_or(|t| !sigv4::signatures_match(t, expected.expose()))
    {
        return Err(ApiError::UnrecognizedClient(INVALID_TOKEN.into()));
    }

    if header(headers, "x-amz-content-sha256").is_some_and(|h| h != payload_sha256) {
        return Err(ApiError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        ));
    }
    let parts = RequestParts {
        method: "POST",
        path,
        query,
        headers: headers
            .iter()
            .filter(|(name, _)| sig.signed_headers.iter().any(|h| h == name.as_str()))
            .map(|(name, v)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        payload_sha256,
    };
    let expected = sigv4::expected_signature(identity.secret.expose(), sig, amz_date, &parts);
    if !sigv4::signatures_match(&expected, &sig.signature) {
        return Err(ApiError::InvalidSignature(MISMATCH.into()));
    }
    Ok(Principal {
        access_key_id: identity.access_key_id,
        arn: identity.arn,
        account_id: identity.account_id,
    })
}
