//! Access keys and who they belong to. The seam for other credential sources: a front end
//! asks a `CredentialStore` for the secret of the key a request names.

use std::collections::HashMap;
use std::fmt;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An access key with its secret, the account (registry id) it belongs to and its principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub access_key_id: String,
    pub secret: Secret,
    pub account_id: String,
    /// e.g. `arn:aws:iam::123456789012:user/ci`.
    pub arn: String,
    /// When set, requests with this key must carry this `X-Amz-Security-Token`.
    pub session_token: Option<Secret>,
}

pub trait CredentialStore: Send + Sync {
    fn lookup(&self, access_key_id: &str) -> Option<Identity>;
}

/// Keys from the configuration.
#[derive(Debug, Default)]
pub struct StaticCredentials(HashMap<String, Identity>);

impl StaticCredentials {
    pub fn new(identities: impl IntoIterator<Item = Identity>) -> Self {
        Self(
            identities
                .into_iter()
                .map(|i| (i.access_key_id.clone(), i))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key_id: &str) -> Option<Identity> {
        self.0.get(access_key_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let id = Identity {
            access_key_id: "AKID".into(),
            secret: Secret::new("hunter2"),
            account_id: "111111111111".into(),
            arn: "arn:aws:iam::111111111111:user/a".into(),
            session_token: None,
        };
        assert!(!format!("{id:?}").contains("hunter2"));
        let store = StaticCredentials::new([id.clone()]);
        assert_eq!(store.lookup("AKID"), Some(id));
        assert_eq!(store.lookup("OTHER"), None);
    }
}
