//! `REPOSITORY[:TAG|@DIGEST]`, also accepted with the registry host in front
//! (`123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:1.0`), as `docker` prints it.

/// What a push writes to or a pull reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry ID taken from an ECR host name, if one was given.
    pub registry_id: Option<String>,
    pub repository: String,
    pub reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl ImageRef {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut rest = s;
        let mut registry_id = None;
        // A first component with a dot or a port is a host, as docker decides.
        if let Some((first, after)) = rest.split_once('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            let account = first.split('.').next().unwrap_or_default();
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
                registry_id = Some(account.to_owned());
            }
            rest = after;
        }
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            (repo, Reference::Digest(digest.to_owned()))
        } else {
            match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, Reference::Tag(tag.to_owned())),
                _ => (rest, Reference::Tag("latest".to_owned())),
            }
        };
        anyhow::ensure!(!repository.is_empty(), "no repository name in {s:?}");
        if let Reference::Digest(d) = &reference {
            anyhow::ensure!(
                d.starts_with("sha256:"),
                "a digest is sha256:<hex>, not {d:?}"
            );
        }
        if let Reference::Tag(t) = &reference {
            anyhow::ensure!(!t.is_empty(), "empty tag in {s:?}");
        }
        Ok(Self {
            registry_id,
            repository: repository.to_owned(),
            reference,
        })
    }

    /// `repo:tag` or `repo@digest`.
    pub fn display(&self) -> String {
        match &self.reference {
            Reference::Tag(t) => format!("{}:{t}", self.repository),
            Reference::Digest(d) => format!("{}@{d}", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_docker_prints() {
        let r = ImageRef::parse("team/app").unwrap();
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference, Reference::Tag("latest".into()));
        let r = ImageRef::parse("team/app:1.0").unwrap();
        assert_eq!(r.reference, Reference::Tag("1.0".into()));
        let r =
            ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v2").unwrap();
        assert_eq!(r.registry_id.as_deref(), Some("123456789012"));
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference, Reference::Tag("v2".into()));
        let r = ImageRef::parse("localhost:5000/app@sha256:ab").unwrap();
        assert_eq!(r.repository, "app");
        assert_eq!(r.reference, Reference::Digest("sha256:ab".into()));
        assert!(ImageRef::parse(":x").is_err());
        assert!(ImageRef::parse("app@md5:00").is_err());
    }
}
