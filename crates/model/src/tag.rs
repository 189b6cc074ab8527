use std::fmt;

/// An image tag. ECR's model allows 1 to 300 characters; the characters are those of the OCI
/// tag grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]*`, which ECR also enforces (a `+` is refused).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageTag(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("must have length between 1 and 300")]
    Length,
    #[error("must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]*'")]
    Pattern,
}

impl ImageTag {
    pub fn parse(s: &str) -> Result<Self, TagError> {
        if !(1..=300).contains(&s.len()) {
            return Err(TagError::Length);
        }
        let b = s.as_bytes();
        let first_ok = b[0].is_ascii_alphanumeric() || b[0] == b'_';
        let rest_ok = b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if first_ok && rest_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TagError::Pattern)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ImageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_grammar() {
        for ok in ["v1", "latest", "_x", "1.0-rc_2", &"a".repeat(300)] {
            assert!(ImageTag::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(ImageTag::parse(""), Err(TagError::Length));
        assert_eq!(ImageTag::parse(&"a".repeat(301)), Err(TagError::Length));
        for bad in ["-x", ".x", "a+b", "a/b", "a b", "ä"] {
            assert_eq!(ImageTag::parse(bad), Err(TagError::Pattern), "{bad}");
        }
    }
}
