//! PutImage, BatchGetImage, ListImages, DescribeImages, BatchDeleteImage.

use model::{Digest, DigestAlgorithm, ImageTag, Reference, wildcard_match};
use storage::{
    ImageRecord, ImageReferences, ImageState, ImageSummary, RepositoryRecord, StorageError,
    TagStatus, TagWrite,
};

use crate::archive::StatusFilter;
use crate::pagination::finish_page;
use crate::{
    Page, PageToken, Principal, Registry, RegistryError, RepositoryRef, Result, UpstreamFailure,
    manifest,
};

/// Rows read per step once a status filter has skipped a whole page: a listing of the few
/// archived images of a large repository reads it in steps of this many.
const FILTER_FETCH: u32 = 1000;

/// How often PutImage retries when a concurrent push moved the tag between its read and its
/// write. Each retry re-applies the immutability rule to the new state.
const TAG_RACE_RETRIES: usize = 5;

/// An image id as a request gives it: unparsed, because a malformed one is a per-image failure
/// rather than an error of the whole call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageIdInput {
    pub digest: Option<String>,
    pub tag: Option<String>,
}

/// An image id in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageIdOutput {
    pub digest: Digest,
    pub tag: Option<ImageTag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFailureCode {
    InvalidImageDigest,
    InvalidImageTag,
    ImageTagDoesNotMatchDigest,
    ImageNotFound,
    MissingDigestAndTag,
    ImageReferencedByManifestList,
    /// A pull-through cache's upstream refused berth's credentials.
    UpstreamAccessDenied,
    UpstreamTooManyRequests,
    UpstreamUnavailable,
    /// The image is archived, or still being restored: it cannot be pulled.
    ImageInaccessible,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFailure {
    pub id: ImageIdInput,
    pub code: ImageFailureCode,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct BatchGetResult {
    pub images: Vec<(ImageIdOutput, ImageRecord)>,
    pub failures: Vec<ImageFailure>,
}

#[derive(Debug, Default)]
pub struct BatchDeleteResult {
    pub deleted: Vec<ImageIdOutput>,
    pub failures: Vec<ImageFailure>,
}

pub struct PutImageRequest {
    pub manifest: Vec<u8>,
    pub media_type: Option<String>,
    pub tag: Option<ImageTag>,
    /// The digest the client says the manifest has (`imageDigest`, or the `/v2` reference).
    pub digest: Option<String>,
    /// Whether a sha512 `digest` names the image by sha512 (`/v2`); ECR is sha256 only.
    pub allow_sha512: bool,
}

/// Whether pushing `tag` onto another image is refused (ecr-api.md section 3.2).
pub(crate) fn tag_is_immutable(repo: &RepositoryRecord, tag: &ImageTag) -> bool {
    let matched = || {
        repo.mutability_exclusions
            .iter()
            .any(|f| wildcard_match(&f.filter, tag.as_str()))
    };
    match repo.image_tag_mutability.as_str() {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !matched(),
        "MUTABLE_WITH_EXCLUSION" => matched(),
        _ => false,
    }
}

pub(crate) fn failure(id: &ImageIdInput, code: ImageFailureCode, reason: &str) -> ImageFailure {
    ImageFailure {
        id: id.clone(),
        code,
        reason: reason.to_owned(),
    }
}

/// A parsed image id, or the per-image failure it earns.
pub(crate) enum ImageRef {
    Digest(Digest),
    Tag(ImageTag),
    Both(Digest, ImageTag),
}

pub(crate) fn parse_image_id(id: &ImageIdInput) -> Result<ImageRef, ImageFailure> {
    let digest = match id.digest.as_deref() {
        Some(d) => Some(Digest::parse(d).map_err(|_| {
            failure(id, ImageFailureCode::InvalidImageDigest, "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
        })?),
        None => None,
    };
    let tag = match id.tag.as_deref() {
        Some(t) => Some(ImageTag::parse(t).map_err(|_| {
            failure(
                id,
                ImageFailureCode::InvalidImageTag,
                "Invalid request parameters: image tag is not valid",
            )
        })?),
        None => None,
    };
    match (digest, tag) {
        (Some(d), Some(t)) => Ok(ImageRef::Both(d, t)),
        (Some(d), None) => Ok(ImageRef::Digest(d)),
        (None, Some(t)) => Ok(ImageRef::Tag(t)),
        (None, None) => Err(failure(
            id,
            ImageFailureCode::MissingDigestAndTag,
            "Invalid request parameters: both tag and digest cannot be null",
        )),
    }
}

impl Registry {
    /// Stores a manifest (and tag) after checking everything it references is present.
    pub async fn put_image(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        req: PutImageRequest,
    ) -> Result<(ImageRecord, Option<ImageTag>)> {
        let repo = self.repository(who, r, "ecr:PutImage").await?;
        let parsed = manifest::parse(&req.manifest, req.media_type.as_deref())?;
        let algorithm = match req.digest.as_deref().map(Digest::parse) {
            Some(Ok(d)) if req.allow_sha512 => d.algorithm(),
            _ => DigestAlgorithm::Sha256,
        };
        let digest = Digest::of(algorithm, &req.manifest);
        if let Some(given) = &req.digest
            && given != digest.as_str()
        {
            return Err(RegistryError::ImageDigestDoesNotMatch {
                given: given.clone(),
                computed: digest,
            });
        }
        let meta = &self.storage.meta;
        let mut missing = Vec::new();
        for (blob, _) in &parsed.blobs {
            if meta.repository_blob(repo.id, blob).await?.is_none() {
                missing.push(blob.clone());
            }
        }
        if !missing.is_empty() {
            return Err(RegistryError::LayersNotFound {
                registry_id: repo.registry_id,
                name: repo.name,
                digests: missing,
            });
        }
        let mut size = parsed.size;
        let mut missing = Vec::new();
        for (child, _) in &parsed.children {
            match meta.get_image(repo.id, child).await? {
                Some(c) => size = size.max(c.size),
                None => missing.push(child.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(RegistryError::ReferencedImagesNotFound {
                registry_id: repo.registry_id,
                name: repo.name,
                digests: missing,
            });
        }
        let image = ImageRecord {
            digest: digest.clone(),
            manifest: req.manifest,
            media_type: parsed.media_type,
            artifact_media_type: parsed.artifact_media_type,
            subject: parsed.subject,
            size,
            pushed_at: self.now(),
            state: Default::default(),
        };
        let refs = ImageReferences {
            blobs: parsed.blobs,
            children: parsed.children.into_iter().map(|(d, _)| d).collect(),
            blobs_may_follow: false,
        };
        // Read once: the rules in force when the push began decide where it is replicated.
        let replication = self.replication_work(&repo).await?;
        for _ in 0..TAG_RACE_RETRIES {
            let existing = meta.get_image(repo.id, &digest).await?;
            let current = match &req.tag {
                Some(t) => meta.resolve_tag(repo.id, t).await?,
                None => None,
            };
            if let (Some(tag), Some(cur)) = (&req.tag, &current)
                && *cur != digest
                && tag_is_immutable(&repo, tag)
            {
                return Err(RegistryError::ImageTagAlreadyExists {
                    name: repo.name,
                    tag: tag.to_string(),
                });
            }
            // "If you push an image that is currently archived, that image will be
            // automatically restored": its manifest came again, so it is ACTIVE at once.
            let restored = match &existing {
                Some(e) if e.state.archived => {
                    let digests = self.with_children(repo.id, e).await?;
                    meta.set_storage_class(repo.id, &digests, false, self.now())
                        .await?
                }
                _ => false,
            };
            if existing.is_some() && (req.tag.is_none() || current.as_ref() == Some(&digest)) {
                if restored && let Some(e) = existing {
                    tracing::info!(repository = %repo.name, digest = %digest, "a push restored an archived image");
                    return Ok((e, req.tag));
                }
                return Err(RegistryError::ImageAlreadyExists {
                    registry_id: repo.registry_id,
                    name: repo.name,
                    digest,
                    tag: req.tag.map(|t| t.to_string()),
                });
            }
            if req.tag.is_some()
                && meta.image_tags(repo.id, &digest).await?.len() >= self.limits.max_tags_per_image
            {
                return Err(RegistryError::LimitExceeded(format!(
                    "The image with digest '{digest}' exceeds the maximum allowed number of tags per image which is '{}'",
                    self.limits.max_tags_per_image
                )));
            }
            // Only an immutable tag needs the state its check saw to hold; a mutable tag just
            // moves (last writer wins), so concurrent pushes of one tag never starve.
            let tag = req.tag.as_ref().map(|t| {
                if tag_is_immutable(&repo, t) {
                    TagWrite::IfUnchanged(t, current.as_ref())
                } else {
                    TagWrite::Move(t)
                }
            });
            self.failpoint("put_image.before_record");
            // The store counts the image's tags again inside its transaction: the check above
            // answers the common case, this one closes the race between concurrent pushes.
            let max_tags = self.limits.max_tags_per_image;
            let event = self.image_event(&repo, "PUSH", &image);
            match meta
                .put_image_noting(
                    repo.id,
                    &image,
                    &refs,
                    tag,
                    max_tags,
                    event.as_ref(),
                    replication.as_ref(),
                )
                .await
            {
                Ok(_) => {
                    self.failpoint("put_image.after_record");
                    let stored = match existing {
                        Some(e) => e,
                        None => image,
                    };
                    return Ok((stored, req.tag));
                }
                Err(StorageError::Conflict(_)) => continue,
                // Deleted by another request (on another node) after this one looked it up.
                Err(StorageError::NotFound) => {
                    return Err(RegistryError::RepositoryNotFound {
                        registry_id: repo.registry_id,
                        name: repo.name.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Storage(StorageError::Conflict(
            "tag kept moving during PutImage",
        )))
    }

    /// Fills a pull-through cache repository that does not exist yet with the first image of
    /// `ids` its upstream has; answers whether one was found (and the repository created).
    async fn import_first_image(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        ids: &[ImageIdInput],
    ) -> Result<bool> {
        for id in ids {
            let reference = match parse_image_id(id) {
                Ok(ImageRef::Digest(d) | ImageRef::Both(d, _)) => Reference::Digest(d),
                Ok(ImageRef::Tag(t)) => Reference::Tag(t),
                Err(_) => continue,
            };
            if self
                .pull_through_manifest(who, r, None, None, &reference)
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Finds an image by tag or digest (both: the tag must point at the digest).
    pub(crate) async fn find_image(
        &self,
        repo: &RepositoryRecord,
        id: &ImageRef,
    ) -> Result<Option<(Digest, Option<ImageTag>)>> {
        let meta = &self.storage.meta;
        Ok(match id {
            ImageRef::Digest(d) => meta.get_image(repo.id, d).await?.map(|_| (d.clone(), None)),
            ImageRef::Tag(t) => meta
                .resolve_tag(repo.id, t)
                .await?
                .map(|d| (d, Some(t.clone()))),
            ImageRef::Both(d, t) => meta
                .resolve_tag(repo.id, t)
                .await?
                .filter(|x| x == d)
                .map(|d| (d, Some(t.clone()))),
        })
    }

    pub async fn batch_get_image(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        ids: &[ImageIdInput],
        accepted_media_types: Option<&[String]>,
    ) -> Result<BatchGetResult> {
        let repo = match self.repository(who, r, "ecr:BatchGetImage").await {
            Ok(repo) => repo,
            // A pull-through cache repository is created by its first pull.
            Err(e @ RegistryError::RepositoryNotFound { .. }) => {
                if !self.import_first_image(who, r, ids).await? {
                    return Err(e);
                }
                self.repository(who, r, "ecr:BatchGetImage").await?
            }
            Err(e) => return Err(e),
        };
        let mut out = BatchGetResult::default();
        for id in ids {
            let parsed = match parse_image_id(id) {
                Ok(p) => p,
                Err(f) => {
                    out.failures.push(f);
                    continue;
                }
            };
            if let ImageRef::Both(d, t) = &parsed
                && let Some(other) = self.storage.meta.resolve_tag(repo.id, t).await?
                && other != *d
            {
                out.failures.push(failure(
                    id,
                    ImageFailureCode::ImageTagDoesNotMatchDigest,
                    "Invalid request parameters: the tag and digest do not refer to the same image",
                ));
                continue;
            }
            let found = match self.find_image(&repo, &parsed).await? {
                Some((digest, tag)) => self
                    .storage
                    .meta
                    .get_image(repo.id, &digest)
                    .await?
                    .map(|img| (img, tag)),
                None => None,
            };
            let (reference, tag) = match &parsed {
                ImageRef::Digest(d) => (Reference::Digest(d.clone()), None),
                ImageRef::Both(d, t) => (Reference::Digest(d.clone()), Some(t.clone())),
                ImageRef::Tag(t) => (Reference::Tag(t.clone()), Some(t.clone())),
            };
            if let Some((img, _)) = &found
                && let Err(e) = self.refuse_archived(&repo, img)
            {
                out.failures.push(failure(
                    id,
                    ImageFailureCode::ImageInaccessible,
                    &e.to_string(),
                ));
                continue;
            }
            let local = found.as_ref().map(|(img, _)| img);
            let found = match self
                .pull_through_manifest(who, r, Some(&repo), local, &reference)
                .await
            {
                Ok(Some(img)) => Some((img, tag)),
                Ok(None) => found,
                Err(RegistryError::UnableToGetUpstreamImage { reason, message }) => {
                    let code = match reason {
                        UpstreamFailure::AccessDenied => ImageFailureCode::UpstreamAccessDenied,
                        UpstreamFailure::TooManyRequests => {
                            ImageFailureCode::UpstreamTooManyRequests
                        }
                        UpstreamFailure::Unavailable => ImageFailureCode::UpstreamUnavailable,
                    };
                    out.failures.push(failure(id, code, &message));
                    continue;
                }
                Err(e) => return Err(e),
            };
            match found {
                Some((img, tag))
                    if accepted_media_types.is_none_or(|a| a.contains(&img.media_type)) =>
                {
                    if !out
                        .images
                        .iter()
                        .any(|(i, _)| i.digest == img.digest && i.tag == tag)
                    {
                        self.note_pull(who, &repo, &img.digest).await;
                        out.images.push((
                            ImageIdOutput {
                                digest: img.digest.clone(),
                                tag,
                            },
                            img,
                        ));
                    }
                }
                _ => out.failures.push(failure(
                    id,
                    ImageFailureCode::ImageNotFound,
                    "Requested image not found",
                )),
            }
        }
        Ok(out)
    }

    /// One entry per tag plus one per untagged image, in a stable order, of the images whose
    /// status `filter` keeps.
    pub async fn list_images(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        status: TagStatus,
        filter: StatusFilter,
        page: Page,
    ) -> Result<(Vec<ImageIdOutput>, Option<PageToken>)> {
        let repo = self.repository(who, r, "ecr:ListImages").await?;
        let mut after = page
            .after_key(|[digest, tag]| {
                Digest::parse(digest).is_ok() && (tag.is_empty() || ImageTag::parse(tag).is_ok())
            })?
            .map(|[digest, tag]| (digest.to_owned(), tag.to_owned()));
        let mut items = Vec::new();
        let mut fetch = page.limit + 1;
        loop {
            let mut got: Vec<((Digest, Option<ImageTag>), ImageState)> = self
                .storage
                .meta
                .list_image_ids(
                    repo.id,
                    status,
                    after.as_ref().map(|(d, t)| (d.as_str(), t.as_str())),
                    fetch,
                )
                .await?
                .into_iter()
                .map(|id| (id, ImageState::default()))
                .collect();
            let full = got.len() == fetch as usize;
            self.fill_states(repo.id, &mut got, |((d, _), _)| d, |(_, s), st| *s = st)
                .await?;
            after = got.last().map(|((d, t), _)| {
                (
                    d.to_string(),
                    t.as_ref().map_or(String::new(), ToString::to_string),
                )
            });
            let now = self.now();
            items.extend(
                got.into_iter()
                    .filter(|(_, s)| filter.keeps(s.status(now)))
                    .map(|(id, _)| id),
            );
            if items.len() > page.limit as usize || !full {
                break;
            }
            // Past a first page of non-matching images, read in bigger steps.
            fetch = fetch.max(FILTER_FETCH);
        }
        let (items, next) = finish_page(items, page.limit, |(d, t)| {
            PageToken::new(&[d.as_str(), t.as_ref().map_or("", ImageTag::as_str)])
        });
        Ok((
            items
                .into_iter()
                .map(|(digest, tag)| ImageIdOutput { digest, tag })
                .collect(),
            next,
        ))
    }

    /// Named images (each must exist), or a page of the repository's images.
    pub async fn describe_images(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        ids: Option<&[ImageIdInput]>,
        status: TagStatus,
        filter: StatusFilter,
        page: Page,
    ) -> Result<(Vec<ImageSummary>, Option<PageToken>)> {
        let repo = self.repository(who, r, "ecr:DescribeImages").await?;
        let meta = &self.storage.meta;
        if let Some(ids) = ids {
            let mut out: Vec<ImageSummary> = Vec::new();
            for id in ids {
                let not_found = || RegistryError::ImageNotFound {
                    registry_id: repo.registry_id.clone(),
                    name: repo.name.clone(),
                    digest: id.digest.clone(),
                    tag: id.tag.clone(),
                };
                let parsed = parse_image_id(id).map_err(|f| match f.code {
                    ImageFailureCode::MissingDigestAndTag => RegistryError::InvalidParameter(
                        "Invalid parameter at 'imageIds' failed to satisfy constraint: 'both tag and digest cannot be null'".into(),
                    ),
                    _ => not_found(),
                })?;
                let (digest, _) = self
                    .find_image(&repo, &parsed)
                    .await?
                    .ok_or_else(not_found)?;
                if out.iter().any(|s| s.digest == digest) {
                    continue;
                }
                let image = meta
                    .get_image(repo.id, &digest)
                    .await?
                    .ok_or_else(not_found)?;
                let tags = meta.image_tags(repo.id, &digest).await?;
                out.push(ImageSummary::new(image, tags));
            }
            return Ok((out, None));
        }
        let mut after = page
            .after_key(|[digest]| Digest::parse(digest).is_ok())?
            .map(|[digest]| digest.to_owned());
        let mut items = Vec::new();
        let mut fetch = page.limit + 1;
        loop {
            let mut got = meta
                .list_images(repo.id, status, after.as_deref(), fetch)
                .await?;
            let full = got.len() == fetch as usize;
            self.fill_states(repo.id, &mut got, |s| &s.digest, |s, st| s.state = st)
                .await?;
            after = got.last().map(|s| s.digest.to_string());
            let now = self.now();
            items.extend(
                got.into_iter()
                    .filter(|s| filter.keeps(s.state.status(now))),
            );
            if items.len() > page.limit as usize || !full {
                break;
            }
            fetch = fetch.max(FILTER_FETCH);
        }
        Ok(finish_page(items, page.limit, |s| {
            PageToken::new(&[s.digest.as_str()])
        }))
    }

    /// Deletes by tag (the tag; the image too when it was its last tag) or by digest (the image
    /// and all its tags). An image an index lists cannot be deleted.
    pub async fn batch_delete_image(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        ids: &[ImageIdInput],
    ) -> Result<BatchDeleteResult> {
        let repo = self.repository(who, r, "ecr:BatchDeleteImage").await?;
        let meta = &self.storage.meta;
        let mut out = BatchDeleteResult::default();
        for id in ids {
            let parsed = match parse_image_id(id) {
                Ok(p) => p,
                Err(f) => {
                    out.failures.push(f);
                    continue;
                }
            };
            let Some((digest, tag)) = self.find_image(&repo, &parsed).await? else {
                out.failures.push(failure(
                    id,
                    ImageFailureCode::ImageNotFound,
                    "Requested image not found",
                ));
                continue;
            };
            let tags = meta.image_tags(repo.id, &digest).await?;
            let event = match self.events {
                true => match meta.get_image(repo.id, &digest).await? {
                    Some(image) => self.image_event(&repo, "DELETE", &image),
                    None => None,
                },
                false => None,
            };
            let deletes_image = match &tag {
                Some(_) => tags.len() <= 1,
                None => true,
            };
            if deletes_image && !meta.parent_indexes(repo.id, &digest).await?.is_empty() {
                if let Some(t) = &tag {
                    // The image stays alive through its index; only the tag goes.
                    meta.delete_tag_noting(repo.id, t, event.as_ref()).await?;
                    out.deleted.push(ImageIdOutput {
                        digest,
                        tag: Some(t.clone()),
                    });
                } else {
                    out.failures.push(failure(
                        id,
                        ImageFailureCode::ImageReferencedByManifestList,
                        "Requested image referenced by a manifest list",
                    ));
                }
                continue;
            }
            if deletes_image {
                self.failpoint("delete_image.before_commit");
                meta.delete_image_noting(repo.id, &digest, event.as_ref())
                    .await?;
                self.failpoint("delete_image.after_commit");
                if tags.is_empty() {
                    out.deleted.push(ImageIdOutput { digest, tag: None });
                } else {
                    for t in tags {
                        out.deleted.push(ImageIdOutput {
                            digest: digest.clone(),
                            tag: Some(t),
                        });
                    }
                }
            } else if let Some(t) = tag {
                meta.delete_tag_noting(repo.id, &t, event.as_ref()).await?;
                out.deleted.push(ImageIdOutput {
                    digest,
                    tag: Some(t),
                });
            }
        }
        Ok(out)
    }
}
