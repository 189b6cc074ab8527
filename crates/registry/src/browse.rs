//! What the web UI reads beyond the ECR operations: a prefix search over repository names and
//! what each repository holds. Authorized as the ECR operations that disclose the same facts
//! (DescribeRepositories, DescribeImages), so a principal sees nothing more in the UI than
//! through the API.

use model::Service;
use storage::{RepositoryRecord, RepositoryUsage};

use crate::{Principal, Registry, RepositoryRef, Result};

impl Registry {
    /// Private repositories of the caller's account whose names start with `prefix`, in name
    /// order after `after`, at most `limit`, and whether more follow. Seeks in the name index
    /// (a page costs the same however many repositories there are).
    pub async fn browse_repositories(
        &self,
        who: &Principal,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<RepositoryRecord>, bool)> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:DescribeRepositories")
            .await?;
        let seek = seek_before(prefix);
        let start = match (after, seek.as_deref()) {
            (Some(a), Some(s)) => Some(if a > s { a } else { s }),
            (a, s) => a.or(s),
        };
        let mut items = self
            .storage
            .meta
            .list_repositories(Service::Private, registry_id, start, limit + 1)
            .await?;
        // Names are in byte order, so those with the prefix come together: stop at the first
        // without it.
        if let Some(end) = items
            .iter()
            .position(|r| !r.name.as_str().starts_with(prefix))
        {
            items.truncate(end);
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok((items, more))
    }

    /// A repository's maintained storage figures (images, and the bytes of the blobs it links,
    /// each once, plus its manifests: what `/metrics` reports), for a principal allowed to
    /// DescribeImages in it.
    pub async fn repository_storage(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<RepositoryUsage> {
        let repo = self.repository(who, r, "ecr:DescribeImages").await?;
        Ok(self.storage.meta.repository_storage(repo.id).await?)
    }

    /// [`Self::repository_storage`] of a page of listed repositories, with one query for the
    /// whole page: `None` for a repository whose images the principal may not describe (or
    /// that was deleted meanwhile). Each is authorized on its record as listed, policy
    /// included, so no repository is read again.
    pub async fn repositories_storage(
        &self,
        who: &Principal,
        repos: &[RepositoryRecord],
    ) -> Result<Vec<Option<RepositoryUsage>>> {
        let mut allowed = Vec::with_capacity(repos.len());
        for repo in repos {
            let resource = format!("repository/{}", repo.name);
            let ok = self
                .authorize(
                    who,
                    repo.service,
                    &repo.registry_id,
                    Some(repo),
                    &resource,
                    "ecr:DescribeImages",
                )
                .await
                .is_ok();
            if ok {
                allowed.push(repo.id);
            }
        }
        let mut figures = Vec::new();
        for chunk in allowed.chunks(storage::MAX_STORAGE_READS) {
            figures.extend(self.storage.meta.repositories_storage(chunk).await?);
        }
        Ok(repos
            .iter()
            .map(|r| {
                figures
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, usage)| *usage)
            })
            .collect())
    }
}

/// A key just before every name that starts with `prefix` and after every smaller name:
/// `prefix` with its last character lowered by one and followed by a character above every
/// character a repository name may hold. `None` for an empty prefix (start at the beginning).
fn seek_before(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let lowered = char::from_u32(u32::from(last).saturating_sub(1)).unwrap_or(last);
    let mut key: String = chars.into_iter().collect();
    key.push(lowered);
    key.push('\u{7f}');
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::seek_before;

    #[test]
    fn seek_key_sorts_between_smaller_names_and_the_prefix() {
        let k = seek_before("team/b").unwrap();
        assert!(k.as_str() < "team/b");
        assert!(k.as_str() < "team/ba");
        assert!(k.as_str() > "team/a");
        assert!(k.as_str() > "team/azzz-9");
        assert!(k.as_str() > "team/");
        assert_eq!(seek_before(""), None);
    }
}
