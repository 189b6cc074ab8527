//! Opaque `nextToken`s: the key of the last item of a page, base64url-encoded so that clients
//! treat it as opaque and cannot confuse it with a name. The key is where the next page starts
//! (an index seek in storage), so a page costs the same however deep into a listing it lies.
//! Each operation checks that a token has the shape of its own keys: a token it did not issue
//! (garbage, or another operation's) is refused as ECR refuses it.

use crate::{RegistryError, Result};

/// A request for one page: resume after the key a token carries, return at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub after: Option<PageToken>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(pub(crate) Vec<String>);

impl PageToken {
    pub(crate) fn new(parts: &[&str]) -> Self {
        Self(parts.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn encode(&self) -> String {
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(self.0.join("\n"))
    }

    pub fn decode(token: &str) -> Result<Self> {
        base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| Self(s.split('\n').map(str::to_owned).collect()))
            .ok_or_else(invalid_token)
    }

    /// The token's parts if it has exactly `N`, else [`invalid_token`].
    pub(crate) fn parts<const N: usize>(&self) -> Result<[&str; N]> {
        if self.0.len() != N {
            return Err(invalid_token());
        }
        Ok(std::array::from_fn(|i| self.0[i].as_str()))
    }
}

impl Page {
    /// Where the page starts: the token's `N` parts when `valid` accepts them (the keys the
    /// listing issues), nothing without a token, else [`invalid_token`].
    pub(crate) fn after_key<const N: usize>(
        &self,
        valid: impl FnOnce(&[&str; N]) -> bool,
    ) -> Result<Option<[&str; N]>> {
        let Some(token) = &self.after else {
            return Ok(None);
        };
        let key = token.parts()?;
        if !valid(&key) {
            return Err(invalid_token());
        }
        Ok(Some(key))
    }
}

/// What ECR answers for a `nextToken` it did not issue.
pub(crate) fn invalid_token() -> RegistryError {
    RegistryError::InvalidParameter(
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'".into(),
    )
}

/// Splits one extra fetched item off a page: fetching `limit + 1` tells whether more remain
/// without a second query.
pub(crate) fn finish_page<T>(
    mut items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> PageToken,
) -> (Vec<T>, Option<PageToken>) {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = PageToken::new(&["sha256:ab", "v1"]);
        assert_eq!(PageToken::decode(&t.encode()).unwrap(), t);
        assert!(PageToken::decode("!!!").is_err());
        assert_eq!(t.parts::<2>().unwrap(), ["sha256:ab", "v1"]);
        assert!(t.parts::<1>().is_err());
        assert!(t.parts::<3>().is_err());
    }
}
