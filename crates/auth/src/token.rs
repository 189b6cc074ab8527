//! Registry passwords from GetAuthorizationToken, checked later by the `/v2` front end.
//!
//! A password is `berth1.<payload>.<mac>`, both parts base64url without padding: no `:` (the
//! aws CLI splits the decoded token on `:`), no whitespace, valid UTF-8. The payload binds the
//! account, region, access key and expiry; the MAC is over the payload with the server's key.
//!
//! ECR Public's tokens (its GetAuthorizationToken) are `berth1p.<payload>.<mac>`, with the MAC
//! made for another purpose: a private-registry token cannot pass for a public-registry one
//! by any edit of its text, nor the reverse, and the tokens minted before public registries
//! existed keep their form and stay valid.

use crate::SigningKey;

const PREFIX: &str = "berth1";
const PURPOSE: &str = "registry-token";
const PUBLIC_PREFIX: &str = "berth1p";
const PUBLIC_PURPOSE: &str = "public-registry-token";

/// How long a registry token lasts: 12 hours for both ECR's and ECR Public's
/// GetAuthorizationToken ("Authorization tokens are valid for 12 hours").
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// Which registry a token opens: the account's private registry (ECR) or its public one (ECR
/// Public).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    Private,
    Public,
}

impl TokenScope {
    fn prefix_and_purpose(self) -> (&'static str, &'static str) {
        match self {
            TokenScope::Private => (PREFIX, PURPOSE),
            TokenScope::Public => (PUBLIC_PREFIX, PUBLIC_PURPOSE),
        }
    }
}

/// What a registry password grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryToken {
    pub account_id: String,
    pub region: String,
    pub access_key_id: String,
    /// The principal the token was issued to.
    pub arn: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not one this registry issued")]
    Invalid,
    #[error("Your authorization token has expired. Reauthenticate and try again.")]
    Expired,
}

fn b64() -> base64_simd::Base64 {
    base64_simd::URL_SAFE_NO_PAD
}

/// A private-registry (ECR) password.
pub fn mint(key: &SigningKey, token: &RegistryToken) -> String {
    mint_for(TokenScope::Private, key, token)
}

/// A password for the registry `scope` names.
pub fn mint_for(scope: TokenScope, key: &SigningKey, token: &RegistryToken) -> String {
    let (prefix, purpose) = scope.prefix_and_purpose();
    // Fields are separated by newlines, which none of them can contain.
    let payload = format!(
        "{}\n{}\n{}\n{}\n{}",
        token.account_id, token.region, token.access_key_id, token.arn, token.expires_at
    );
    let mac = key.sign(purpose, payload.as_bytes());
    format!(
        "{prefix}.{}.{}",
        b64().encode_to_string(payload),
        b64().encode_to_string(mac)
    )
}

/// Checks a private-registry password's signature, then its expiry against `now` (epoch
/// seconds). A public-registry password is `Invalid` here.
pub fn verify(key: &SigningKey, password: &str, now: u64) -> Result<RegistryToken, TokenError> {
    match verify_any(key, password, now)? {
        (TokenScope::Private, t) => Ok(t),
        (TokenScope::Public, _) => Err(TokenError::Invalid),
    }
}

/// Checks a password of either registry, and says which registry it opens.
pub fn verify_any(
    key: &SigningKey,
    password: &str,
    now: u64,
) -> Result<(TokenScope, RegistryToken), TokenError> {
    let mut parts = password.split('.');
    let (Some(prefix), Some(payload), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let scope = match prefix {
        PREFIX => TokenScope::Private,
        PUBLIC_PREFIX => TokenScope::Public,
        _ => return Err(TokenError::Invalid),
    };
    let (_, purpose) = scope.prefix_and_purpose();
    let payload = b64()
        .decode_to_vec(payload)
        .map_err(|_| TokenError::Invalid)?;
    let mac = b64().decode_to_vec(mac).map_err(|_| TokenError::Invalid)?;
    if !key.verify(purpose, &payload, &mac) {
        return Err(TokenError::Invalid);
    }
    let payload = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
    let f: Vec<&str> = payload.split('\n').collect();
    let [account_id, region, access_key_id, arn, expires_at] = f[..] else {
        return Err(TokenError::Invalid);
    };
    let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Invalid)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok((
        scope,
        RegistryToken {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            access_key_id: access_key_id.to_owned(),
            arn: arn.to_owned(),
            expires_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RegistryToken {
        RegistryToken {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            arn: "arn:aws:iam::000000000000:user/dev".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn minted_passwords_verify_until_they_expire() {
        let key = SigningKey::from_bytes([7; 32]);
        let pw = mint(&key, &token());
        assert!(!pw.contains(':') && !pw.contains(char::is_whitespace));
        assert_eq!(verify(&key, &pw, 999), Ok(token()));
        assert_eq!(verify(&key, &pw, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn forged_or_foreign_passwords_are_invalid() {
        let key = SigningKey::from_bytes([7; 32]);
        let other = SigningKey::from_bytes([8; 32]);
        let pw = mint(&other, &token());
        assert_eq!(verify(&key, &pw, 0), Err(TokenError::Invalid));
        let genuine = mint(&key, &token());
        let forged_payload = b64().encode_to_string(format!(
            "000000000000\nus-east-1\nAKIDEXAMPLE\narn:aws:iam::000000000000:user/dev\n{}",
            u64::MAX
        ));
        let mac = genuine.rsplit('.').next().unwrap();
        assert_eq!(
            verify(&key, &format!("berth1.{forged_payload}.{mac}"), 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(verify(&key, "garbage", 0), Err(TokenError::Invalid));
    }

    #[test]
    fn public_and_private_passwords_do_not_pass_for_each_other() {
        let key = SigningKey::from_bytes([7; 32]);
        let private = mint(&key, &token());
        let public = mint_for(TokenScope::Public, &key, &token());
        assert!(!public.contains(':') && !public.contains(char::is_whitespace));
        assert_eq!(
            verify_any(&key, &public, 999),
            Ok((TokenScope::Public, token()))
        );
        assert_eq!(
            verify_any(&key, &private, 999),
            Ok((TokenScope::Private, token()))
        );
        assert_eq!(verify(&key, &public, 999), Err(TokenError::Invalid));
        // Relabelling one as the other breaks its MAC.
        let relabelled = public.replacen("berth1p.", "berth1.", 1);
        assert_eq!(verify_any(&key, &relabelled, 999), Err(TokenError::Invalid));
        let relabelled = private.replacen("berth1.", "berth1p.", 1);
        assert_eq!(verify_any(&key, &relabelled, 999), Err(TokenError::Invalid));
        assert_eq!(verify_any(&key, &public, 1_000), Err(TokenError::Expired));
    }
}
