use std::fmt;

use crate::{Digest, ImageTag};

/// What a `/v2/<name>/manifests/<reference>` path names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(ImageTag),
    Digest(Digest),
}

impl Reference {
    /// A reference with a `:` is a digest (tags cannot contain one); anything else a tag.
    pub fn parse(s: &str) -> Option<Self> {
        if s.contains(':') {
            Digest::parse(s).ok().map(Self::Digest)
        } else {
            ImageTag::parse(s)
                .ok()
                .filter(|t| t.as_str().len() <= 128)
                .map(Self::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests() {
        assert!(matches!(Reference::parse("v1.0"), Some(Reference::Tag(_))));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Some(Reference::Digest(_))));
        assert_eq!(Reference::parse("sha256:zz"), None);
        assert_eq!(
            Reference::parse(&"a".repeat(129)),
            None,
            "OCI tags are at most 128 characters"
        );
        assert_eq!(Reference::parse("-bad"), None);
    }
}
