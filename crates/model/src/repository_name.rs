use std::fmt;

/// A repository name as the ECR model constrains it: 2 to 256 characters matching
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepositoryNameError {
    #[error("must have length between 2 and 256")]
    Length,
    #[error("must satisfy regular expression '{}'", RepositoryName::PATTERN)]
    Pattern,
}

impl RepositoryName {
    pub const PATTERN: &'static str =
        r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

    pub fn parse(s: &str) -> Result<Self, RepositoryNameError> {
        if !(2..=256).contains(&s.len()) {
            return Err(RepositoryNameError::Length);
        }
        if s.split('/').all(valid_component) {
            Ok(Self(s.to_owned()))
        } else {
            Err(RepositoryNameError::Pattern)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false; // empty run: leading, trailing or doubled separator
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_the_ecr_grammar() {
        for ok in [
            "ab",
            "team/app",
            "a.b_c__d--e/f-g",
            "x1/y2/z3",
            "library/ubuntu",
        ] {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_outside_the_grammar() {
        assert_eq!(RepositoryName::parse("a"), Err(RepositoryNameError::Length));
        assert_eq!(
            RepositoryName::parse(&"a".repeat(257)),
            Err(RepositoryNameError::Length)
        );
        for bad in [
            "Team", "a//b", "/ab", "ab/", "a___b", "a._b", "-ab", "ab-", "a b", "../etc", "a/../b",
        ] {
            assert_eq!(
                RepositoryName::parse(bad),
                Err(RepositoryNameError::Pattern),
                "{bad}"
            );
        }
    }
}
