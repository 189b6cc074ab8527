//! Manifests by reference, tag listing and the referrers of a manifest: what the `/v2` API
//! reads (ListImageReferrers is its ECR twin).

use model::{Digest, ImageTag, Reference};
use serde_json::Value;
use storage::ImageRecord;

use crate::pagination::finish_page;
use crate::{Page, PageToken, Principal, Registry, RegistryError, RepositoryRef, Result};

/// One manifest that names another as its `subject`, as the referrers index lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
    /// Its storage class status (an entry of a referrers-tag index only: ACTIVE).
    pub status: storage::ImageStatus,
}

impl Registry {
    /// [`Registry::get_manifest`] for a client pulling the image (`/v2` manifest GET): the
    /// pull is recorded (`lastRecordedPullTime`) unless the caller is excluded.
    pub async fn pull_manifest(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        reference: &Reference,
    ) -> Result<ImageRecord> {
        let (img, repo) = self.manifest_in(who, r, reference).await?;
        // A cache repository created by this very pull records from its next pull on.
        if let Some(repo) = repo {
            self.note_pull(who, &repo, &img.digest).await;
        }
        Ok(img)
    }

    /// The manifest a tag or digest names in the repository; refused while the image is
    /// archived or being restored.
    pub async fn get_manifest(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        reference: &Reference,
    ) -> Result<ImageRecord> {
        Ok(self.manifest_in(who, r, reference).await?.0)
    }

    /// [`Registry::get_manifest`], with the repository record when it existed before.
    async fn manifest_in(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        reference: &Reference,
    ) -> Result<(ImageRecord, Option<storage::RepositoryRecord>)> {
        let repo = match self.repository(who, r, "ecr:BatchGetImage").await {
            Ok(repo) => repo,
            // A pull-through cache repository is created by its first pull.
            Err(e @ RegistryError::RepositoryNotFound { .. }) => {
                return match self
                    .pull_through_manifest(who, r, None, None, reference)
                    .await?
                {
                    Some(img) => Ok((img, None)),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let meta = &self.storage.meta;
        let found = match reference {
            Reference::Digest(d) => meta.get_image(repo.id, d).await?,
            Reference::Tag(t) => meta.image_by_tag(repo.id, t).await?,
        };
        if let Some(img) = &found {
            self.refuse_archived(&repo, img)?;
        }
        if let Some(img) = self
            .pull_through_manifest(who, r, Some(&repo), found.as_ref(), reference)
            .await?
        {
            return Ok((img, Some(repo)));
        }
        let Some(found) = found else {
            return Err(self.manifest_not_found(&repo, reference));
        };
        Ok((found, Some(repo)))
    }

    fn manifest_not_found(
        &self,
        repo: &storage::RepositoryRecord,
        reference: &Reference,
    ) -> RegistryError {
        RegistryError::ImageNotFound {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            digest: match reference {
                Reference::Digest(d) => Some(d.to_string()),
                Reference::Tag(_) => None,
            },
            tag: match reference {
                Reference::Tag(t) => Some(t.to_string()),
                Reference::Digest(_) => None,
            },
        }
    }

    /// Tags in lexical order after `last`, at most `n`, and whether more follow.
    pub async fn list_tags(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        last: Option<&str>,
        n: u32,
    ) -> Result<(Vec<ImageTag>, bool)> {
        let repo = self.repository(who, r, "ecr:ListImages").await?;
        let mut tags = self.storage.meta.list_tags(repo.id, last, n + 1).await?;
        let more = tags.len() > n as usize;
        tags.truncate(n as usize);
        Ok((tags, more))
    }

    /// ListImageReferrers: a page of the referrers of `subject` in digest order, only those
    /// of the given artifact types when any are given, and of a status `filter` keeps. A
    /// subject with no referrers, or that does not exist, has an empty list (as on `/v2`).
    pub async fn list_image_referrers(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        subject: &Digest,
        artifact_types: &[String],
        filter: crate::StatusFilter,
        page: Page,
    ) -> Result<(Vec<Referrer>, Option<PageToken>)> {
        let after = page
            .after_key(|[d]| Digest::parse(d).is_ok())?
            .map(|[d]| d.to_owned());
        let mut all = self.referrers(who, r, subject, None).await?;
        all.retain(|x| {
            filter.keeps(x.status)
                && (artifact_types.is_empty()
                    || x.artifact_type
                        .as_ref()
                        .is_some_and(|t| artifact_types.contains(t)))
        });
        all.sort_by(|a, b| a.digest.as_str().cmp(b.digest.as_str()));
        if let Some(after) = after {
            all.retain(|x| x.digest.as_str() > after.as_str());
        }
        all.truncate(page.limit as usize + 1);
        Ok(finish_page(all, page.limit, |x| {
            PageToken::new(&[x.digest.as_str()])
        }))
    }

    /// Manifests whose `subject` is `subject`, optionally only those of one artifact type.
    /// The artifact type is the manifest's `artifactType`, else its config's media type.
    pub async fn referrers(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let repo = self.repository(who, r, "ecr:BatchGetImage").await?;
        let images = self.storage.meta.list_referrers(repo.id, subject).await?;
        let mut out = Vec::with_capacity(images.len());
        for img in images {
            let v: Value = serde_json::from_slice(&img.manifest).unwrap_or(Value::Null);
            let declared = v
                .get("artifactType")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let config_type = v
                .get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let kind = declared.or(config_type);
            if artifact_type.is_some_and(|want| kind.as_deref() != Some(want)) {
                continue;
            }
            out.push(Referrer {
                size: img.manifest.len() as u64,
                digest: img.digest,
                media_type: img.media_type,
                artifact_type: kind,
                annotations: v.get("annotations").filter(|a| a.is_object()).cloned(),
                status: img.state.status(self.now()),
            });
        }
        // Clients that did not find the API pushed the referrers tag schema instead: an index
        // tagged `<alg>-<hex>` listing the referrers. The spec asks registries that serve the
        // API to include what such an index lists.
        let fallback = ImageTag::parse(&format!(
            "{}-{}",
            subject.algorithm().as_str(),
            subject.hex()
        ))
        .ok();
        if let Some(index) = match fallback {
            Some(t) => self.storage.meta.resolve_tag(repo.id, &t).await?,
            None => None,
        } && let Some(img) = self.storage.meta.get_image(repo.id, &index).await?
        {
            let v: Value = serde_json::from_slice(&img.manifest).unwrap_or(Value::Null);
            for m in v
                .get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(digest) = m
                    .get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| Digest::parse(d).ok())
                else {
                    continue;
                };
                let kind = m
                    .get("artifactType")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if out.iter().any(|r| r.digest == digest)
                    || artifact_type.is_some_and(|want| kind.as_deref() != Some(want))
                {
                    continue;
                }
                out.push(Referrer {
                    digest,
                    media_type: m
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    size: m.get("size").and_then(Value::as_u64).unwrap_or(0),
                    artifact_type: kind,
                    annotations: m.get("annotations").filter(|a| a.is_object()).cloned(),
                    status: storage::ImageStatus::Active,
                });
            }
        }
        Ok(out)
    }
}
