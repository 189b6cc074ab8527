//! Who is signed in to the web UI: a session cookie the server MACs with its signing key.
//!
//! The cookie holds `<payload>.<mac>`, both base64url without padding; the payload names the
//! principal (account, access key, ARN), the expiry, and the region a registry token confines
//! the session to (a token opens the registries of the region it was issued in; an access key
//! signs for any region). Nothing is kept on the server: a
//! session ends at its expiry, or when the browser drops the cookie (logout). The MAC is made
//! for a purpose of its own, so no registry token or other signed value can pass for a
//! session, nor a session for them.

use std::time::{SystemTime, UNIX_EPOCH};

use auth::SigningKey;
use axum::http::HeaderMap;
use registry::Principal;

/// The cookie's name.
pub(super) const COOKIE: &str = "berth_ui";
/// How long a session lasts: a working day, well inside a registry token's 12 hours.
pub(super) const LIFETIME_SECS: u64 = 8 * 3600;
const PURPOSE: &str = "ui-session";
const VERSION: &str = "v2";

/// A signed-in principal and when the session ends (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    pub principal: Principal,
    pub expires_at: u64,
    /// The only region the session may browse (a registry token's); `None`: any served one.
    pub region: Option<String>,
}

fn b64() -> base64_simd::Base64 {
    base64_simd::URL_SAFE_NO_PAD
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Session {
    /// The cookie value for this session.
    pub fn seal(&self, key: &SigningKey) -> String {
        // Newline-separated: no field can hold one (ARNs, key ids and regions are single-line).
        let p = &self.principal;
        let payload = format!(
            "{VERSION}\n{}\n{}\n{}\n{}\n{}",
            p.account_id,
            p.access_key_id,
            p.arn,
            self.expires_at,
            self.region.as_deref().unwrap_or_default()
        );
        let mac = key.sign(PURPOSE, payload.as_bytes());
        format!(
            "{}.{}",
            b64().encode_to_string(payload),
            b64().encode_to_string(mac)
        )
    }

    /// The session a cookie value carries, if its MAC is ours and it has not expired.
    pub fn open(key: &SigningKey, value: &str, now: u64) -> Option<Self> {
        let (payload, mac) = value.split_once('.')?;
        let payload = b64().decode_to_vec(payload).ok()?;
        let mac = b64().decode_to_vec(mac).ok()?;
        if !key.verify(PURPOSE, &payload, &mac) {
            return None;
        }
        let payload = String::from_utf8(payload).ok()?;
        let mut f = payload.split('\n');
        let (Some(VERSION), Some(account), Some(akid), Some(arn), Some(exp), Some(region), None) = (
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
        ) else {
            return None;
        };
        let expires_at: u64 = exp.parse().ok()?;
        (now < expires_at).then(|| Self {
            principal: Principal {
                access_key_id: akid.to_owned(),
                arn: arn.to_owned(),
                account_id: account.to_owned(),
            },
            expires_at,
            region: (!region.is_empty()).then(|| region.to_owned()),
        })
    }

    /// The session the request's cookie carries, if any valid one.
    pub fn from_headers(key: &SigningKey, headers: &HeaderMap) -> Option<Self> {
        let now = now_secs();
        headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .find_map(|(_, value)| Self::open(key, value, now))
    }
}

/// `Set-Cookie` for a session: HttpOnly (no script reads it), SameSite=Strict (no other site's
/// page sends it, which is the CSRF defence together with POST-only changes), scoped to the
/// UI, and Secure when berth serves TLS.
pub(super) fn set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: u64) -> Session {
        Session {
            principal: Principal {
                access_key_id: "AKID".into(),
                arn: "arn:aws:iam::111111111111:user/a".into(),
                account_id: "111111111111".into(),
            },
            expires_at,
            region: None,
        }
    }

    #[test]
    fn sealed_sessions_open_until_they_expire() {
        let key = SigningKey::from_bytes([7; 32]);
        let s = session(1000);
        let v = s.seal(&key);
        assert_eq!(Session::open(&key, &v, 999), Some(s));
        assert_eq!(Session::open(&key, &v, 1000), None);
        // A token's session keeps the region the token opens.
        let pinned = Session {
            region: Some("eu-west-1".into()),
            ..session(1000)
        };
        assert_eq!(
            Session::open(&key, &pinned.seal(&key), 0),
            Some(pinned.clone())
        );
        // A session of the earlier format, which named no region, no longer opens: it may
        // have come from a token, whose region it did not record.
        let old = "v1\n111111111111\nAKID\narn:aws:iam::111111111111:user/a\n1000";
        let mac = key.sign(PURPOSE, old.as_bytes());
        let old = format!(
            "{}.{}",
            b64().encode_to_string(old),
            b64().encode_to_string(mac)
        );
        assert_eq!(Session::open(&key, &old, 0), None);
    }

    #[test]
    fn edited_or_foreign_cookies_do_not_open() {
        let key = SigningKey::from_bytes([7; 32]);
        let v = session(u64::MAX).seal(&key);
        let other = SigningKey::from_bytes([8; 32]);
        assert_eq!(Session::open(&other, &v, 0), None);
        // Another principal's payload under this MAC.
        let (_, mac) = v.split_once('.').unwrap();
        let forged = b64().encode_to_string(
            "v2\n222222222222\nAKID\narn:aws:iam::222222222222:root\n99999999999\n",
        );
        assert_eq!(Session::open(&key, &format!("{forged}.{mac}"), 0), None);
        assert_eq!(Session::open(&key, "garbage", 0), None);
        // A registry token's MAC is made for another purpose.
        let t = auth::token::mint(
            &key,
            &auth::token::RegistryToken {
                account_id: "111111111111".into(),
                region: "us-east-1".into(),
                access_key_id: "AKID".into(),
                arn: "arn:aws:iam::111111111111:user/a".into(),
                expires_at: u64::MAX,
            },
        );
        let t = t.split_once('.').unwrap().1;
        assert_eq!(Session::open(&key, t, 0), None);
    }
}
