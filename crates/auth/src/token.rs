//! Registry passwords from GetAuthorizationToken, checked later by the `/v2` front end.
//!
//! A password is `berth1.<payload>.<mac>`, both parts base64url without padding: no `:` (the
//! aws CLI splits the decoded token on `:`), no whitespace, valid UTF-8. The payload binds the
//! account, region, access key and expiry; the MAC is over the payload with the server's key.

use crate::SigningKey;

const PREFIX: &str = "berth1";
const PURPOSE: &str = "registry-token";

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

pub fn mint(key: &SigningKey, token: &RegistryToken) -> String {
    // Fields are separated by newlines, which none of them can contain.
    let payload = format!(
        "{}\n{}\n{}\n{}\n{}",
        token.account_id, token.region, token.access_key_id, token.arn, token.expires_at
    );
    let mac = key.sign(PURPOSE, payload.as_bytes());
    format!(
        "{PREFIX}.{}.{}",
        b64().encode_to_string(payload),
        b64().encode_to_string(mac)
    )
}

/// Checks a password's signature, then its expiry against `now` (epoch seconds).
pub fn verify(key: &SigningKey, password: &str, now: u64) -> Result<RegistryToken, TokenError> {
    let mut parts = password.split('.');
    let (Some(PREFIX), Some(payload), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let payload = b64()
        .decode_to_vec(payload)
        .map_err(|_| TokenError::Invalid)?;
    let mac = b64().decode_to_vec(mac).map_err(|_| TokenError::Invalid)?;
    if !key.verify(PURPOSE, &payload, &mac) {
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
    Ok(RegistryToken {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        access_key_id: access_key_id.to_owned(),
        arn: arn.to_owned(),
        expires_at,
    })
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
}
