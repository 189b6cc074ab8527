//! Opaque `nextToken`s: the key of the last item of a page, base64url-encoded so that clients
//! treat it as opaque and cannot confuse it with a name.

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
            .ok_or_else(|| RegistryError::InvalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'".into()))
    }

    pub(crate) fn part(&self, i: usize) -> &str {
        self.0.get(i).map_or("", String::as_str)
    }
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
    }
}
