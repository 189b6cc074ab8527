//! Image archival: UpdateImageStorageClass, the image status that listings show and filter on,
//! and the rule that an image out of the standard storage class cannot be pulled.
//!
//! berth keeps an archived image's manifest and blobs where they were (there is no colder
//! storage to move them to): archival is a state of the image, kept in `image_states`. What
//! changes is what ECR documents: the image is still listed and described (ARCHIVED), every
//! pull of it is refused, a lifecycle rule may expire it, and a restore (or a push of the same
//! image) makes it pullable again.
//!
//! Restore timing: ECR restores in up to about 20 minutes, during which the image is
//! ACTIVATING. berth models this with a restore delay (`archive-restore-secs`, short by
//! default): a restore stamps the time it completes, and the image is ACTIVATING until the
//! registry's clock (the injectable one lifecycle ages are read from) passes it. Nothing runs
//! at that time; the status is computed from the stamp whenever it is read.

use model::Digest;
use storage::{ImageRecord, ImageState, ImageStatus, Millis, RepositoryId, RepositoryRecord};

use crate::images::{ImageFailureCode, ImageRef, parse_image_id};
use crate::{
    ImageIdInput, ImageIdOutput, Principal, Registry, RegistryError, RepositoryRef, Result,
};

/// ECR's `imageStatus` filter of ListImages and DescribeImages (`ImageStatusFilter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// The default: "If not specified, only images with ACTIVE status are returned."
    #[default]
    Active,
    Archived,
    Activating,
    Any,
}

impl StatusFilter {
    pub fn keeps(self, status: ImageStatus) -> bool {
        match self {
            StatusFilter::Any => true,
            StatusFilter::Active => status == ImageStatus::Active,
            StatusFilter::Archived => status == ImageStatus::Archived,
            StatusFilter::Activating => status == ImageStatus::Activating,
        }
    }
}

/// What UpdateImageStorageClass answers.
#[derive(Debug, Clone)]
pub struct StorageClassUpdate {
    pub registry_id: String,
    pub name: model::RepositoryName,
    pub id: ImageIdOutput,
    pub status: ImageStatus,
}

fn not_supported(repo: &RepositoryRecord, digest: &Digest, why: &str) -> RegistryError {
    RegistryError::ImageStorageClassUpdateNotSupported(format!(
        "The image with digest '{digest}' in the repository with name '{}' in the registry with id '{}' {why}",
        repo.name, repo.registry_id
    ))
}

impl Registry {
    /// Sets how long a restore from the archive takes (ACTIVATING meanwhile).
    pub fn with_restore_delay(mut self, millis: Millis) -> Self {
        self.restore_delay_millis = millis.max(0);
        self
    }

    /// UpdateImageStorageClass: to ARCHIVE (`archive`) or back to STANDARD. An index goes
    /// with the manifests it lists (those no other index lists), as lifecycle rules treat
    /// them; a manifest an index lists cannot be moved on its own.
    pub async fn update_image_storage_class(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        id: &ImageIdInput,
        archive: bool,
    ) -> Result<StorageClassUpdate> {
        let repo = self
            .repository(who, r, "ecr:UpdateImageStorageClass")
            .await?;
        let not_found = || RegistryError::ImageNotFound {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            digest: id.digest.clone(),
            tag: id.tag.clone(),
        };
        let parsed = parse_image_id(id).map_err(|f| match f.code {
            ImageFailureCode::MissingDigestAndTag => RegistryError::InvalidParameter(
                "Invalid parameter at 'imageId' failed to satisfy constraint: 'both tag and digest cannot be null'".into(),
            ),
            _ => RegistryError::InvalidParameter(f.reason),
        })?;
        let (digest, tag) = self
            .find_image(&repo, &parsed)
            .await?
            .ok_or_else(not_found)?;
        let meta = &self.storage.meta;
        let image = meta
            .get_image(repo.id, &digest)
            .await?
            .ok_or_else(not_found)?;
        let now = self.now();
        match (image.state.status(now), archive) {
            (ImageStatus::Archived, true) => {
                return Err(not_supported(
                    &repo,
                    &digest,
                    "is already in the ARCHIVE storage class",
                ));
            }
            (ImageStatus::Active, false) => {
                return Err(not_supported(
                    &repo,
                    &digest,
                    "is already in the STANDARD storage class",
                ));
            }
            (ImageStatus::Activating, _) => {
                return Err(not_supported(
                    &repo,
                    &digest,
                    "is being restored to the STANDARD storage class; wait until its status is ACTIVE",
                ));
            }
            _ => {}
        }
        if !meta.parent_indexes(repo.id, &digest).await?.is_empty() {
            return Err(not_supported(
                &repo,
                &digest,
                "is referenced by a manifest list; change the storage class of the manifest list instead",
            ));
        }
        let digests = self.with_children(repo.id, &image).await?;
        let at = if archive {
            now
        } else {
            now + self.restore_delay_millis
        };
        if !meta
            .set_storage_class(repo.id, &digests, archive, at)
            .await?
        {
            // Another request moved (or deleted) it since it was read.
            return Err(match meta.get_image(repo.id, &digest).await? {
                None => not_found(),
                Some(_) => not_supported(
                    &repo,
                    &digest,
                    if archive {
                        "is already in the ARCHIVE storage class"
                    } else {
                        "is already in the STANDARD storage class"
                    },
                ),
            });
        }
        tracing::info!(repository = %repo.name, digest = %digest, archive, "image storage class changed");
        let state = ImageState {
            archived: archive,
            last_activated_at: (!archive).then_some(at),
            ..image.state
        };
        Ok(StorageClassUpdate {
            registry_id: repo.registry_id,
            name: repo.name,
            id: ImageIdOutput {
                digest,
                tag: match parsed {
                    ImageRef::Tag(_) | ImageRef::Both(..) => tag,
                    ImageRef::Digest(_) => None,
                },
            },
            status: state.status(now),
        })
    }

    /// `image` and, for an index, the manifests it lists that no other index lists: what
    /// moves between storage classes together.
    pub(crate) async fn with_children(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
    ) -> Result<Vec<Digest>> {
        let mut digests = vec![image.digest.clone()];
        let Ok(parsed) = crate::manifest::parse(&image.manifest, Some(&image.media_type)) else {
            return Ok(digests); // stored manifests were parsed when pushed
        };
        for (child, _) in parsed.children {
            let parents = self.storage.meta.parent_indexes(repo, &child).await?;
            if parents.iter().all(|p| *p == image.digest) && !digests.contains(&child) {
                digests.push(child);
            }
        }
        Ok(digests)
    }

    /// Refuses a pull of an image that is not ACTIVE now.
    pub(crate) fn refuse_archived(
        &self,
        repo: &RepositoryRecord,
        image: &ImageRecord,
    ) -> Result<()> {
        let status = match image.state.status(self.now()) {
            ImageStatus::Active => return Ok(()),
            ImageStatus::Archived => "archived",
            ImageStatus::Activating => "being restored",
        };
        Err(RegistryError::ImageArchived {
            registry_id: repo.registry_id.clone(),
            name: repo.name.clone(),
            digest: image.digest.clone(),
            status,
        })
    }

    /// Fills in the states of a page of listed images (in digest order) with one query.
    pub(crate) async fn fill_states<T>(
        &self,
        repo: RepositoryId,
        items: &mut [T],
        digest: impl Fn(&T) -> &Digest,
        mut set: impl FnMut(&mut T, ImageState),
    ) -> Result<()> {
        let (Some(first), Some(last)) = (items.first(), items.last()) else {
            return Ok(());
        };
        let states = self
            .storage
            .meta
            .image_states_between(repo, digest(first).as_str(), digest(last).as_str())
            .await?;
        if states.is_empty() {
            return Ok(());
        }
        for item in items.iter_mut() {
            if let Ok(i) = states.binary_search_by(|(d, _)| d.as_str().cmp(digest(item).as_str())) {
                let state = states[i].1;
                set(item, state);
            }
        }
        Ok(())
    }
}
