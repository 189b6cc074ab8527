//! The registry's use cases: repositories, blob uploads, images and tags, with ECR's rules.
//! The only entry point the protocol front ends call. Knows no HTTP, no SQL and no protocol
//! wire formats: it speaks model types and answers `RegistryError`.

mod blobs;
mod error;
mod images;
mod manifest;
mod pagination;
mod referrers;
mod repositories;
mod uploads;

use std::time::{SystemTime, UNIX_EPOCH};

use model::RepositoryName;
use storage::{Millis, Storage};

pub use blobs::BlobDownload;
pub use error::RegistryError;
pub use images::{
    BatchDeleteResult, BatchGetResult, ImageFailure, ImageFailureCode, ImageIdInput, ImageIdOutput,
    PutImageRequest,
};
pub use pagination::{Page, PageToken};
pub use referrers::Referrer;
pub use repositories::{CreateRepository, EncryptionConfiguration};
pub use storage::{
    BlobRange, BlobReader, ByteStream, ImageRecord, ImageSummary, MutabilityExclusion,
    RepositoryBlob, RepositoryRecord, ResourceTag, TagStatus,
};
pub use uploads::{CompletionRules, PartData, UploadProgress};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Limits from the ECR service quotas (ecr-api.md section 5).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Smallest part but the last, checked at completion.
    pub min_part_size: u64,
    /// Largest part the ECR API accepts (the model's `layerPartBlob` maximum).
    pub max_part_size: u64,
    /// The `partSize` InitiateLayerUpload advertises.
    pub advertised_part_size: u64,
    pub max_parts_per_upload: u32,
    pub max_layer_size: u64,
    pub max_tags_per_image: usize,
    pub max_images_per_repository: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_part_size: 5 * 1024 * 1024,
            max_part_size: 20 * 1024 * 1024,
            advertised_part_size: 10 * 1024 * 1024,
            max_parts_per_upload: 4200,
            max_layer_size: 52_000 * 1024 * 1024,
            max_tags_per_image: 1000,
            max_images_per_repository: 100_000,
        }
    }
}

/// Who is calling. Resolved by the front end from a SigV4 signature or a registry token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key_id: String,
    /// e.g. `arn:aws:iam::123456789012:user/ci`; named in AccessDenied messages.
    pub arn: String,
    /// The caller's account: the registry id an omitted `registryId` means.
    pub account_id: String,
}

/// A repository named in a request: an optional registry id (default: the caller's account)
/// and the name.
#[derive(Debug, Clone)]
pub struct RepositoryRef {
    pub registry_id: Option<String>,
    pub name: RepositoryName,
}

pub struct Registry {
    storage: Storage,
    region: String,
    limits: Limits,
    uploads_in_flight: uploads::PartLocks,
}

impl Registry {
    pub fn new(storage: Storage, region: String, limits: Limits) -> Self {
        Self {
            storage,
            region,
            limits,
            uploads_in_flight: Default::default(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The registry a request names (default: the caller's account). Another account's
    /// registry needs a policy allowing it, and berth has no policies yet (issue 4), so it is
    /// refused.
    fn registry_id<'a>(
        &self,
        who: &'a Principal,
        requested: Option<&'a str>,
        resource: &str,
    ) -> Result<&'a str> {
        let id = requested.unwrap_or(&who.account_id);
        if id != who.account_id {
            return Err(RegistryError::AccessDenied {
                principal: who.arn.clone(),
                resource: format!("arn:aws:ecr:{}:{id}:{resource}", self.region),
            });
        }
        Ok(id)
    }

    /// The repository a request names, or `RepositoryNotFound`.
    async fn repository(&self, who: &Principal, r: &RepositoryRef) -> Result<RepositoryRecord> {
        let registry_id = self.registry_id(
            who,
            r.registry_id.as_deref(),
            &format!("repository/{}", r.name),
        )?;
        self.storage
            .meta
            .get_repository(registry_id, &r.name)
            .await?
            .ok_or_else(|| RegistryError::RepositoryNotFound {
                registry_id: registry_id.to_owned(),
                name: r.name.to_string(),
            })
    }
}

pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
