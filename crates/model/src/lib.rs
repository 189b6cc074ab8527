//! Value types shared by every layer of berth: digests, repository names, tags, upload ids,
//! media types. Pure, synchronous code; each type validates on construction, so holding one
//! means holding a well-formed value. Depends on nothing else in the workspace.

mod digest;
mod media_type;
mod reference;
pub mod region;
mod repository_name;
mod service;
mod tag;
mod upload_id;
mod wildcard;

pub use digest::{Digest, DigestAlgorithm, DigestError, DigestHasher, ResumableSha256};
pub use media_type::MediaType;
pub use reference::Reference;
pub use repository_name::{RepositoryName, RepositoryNameError};
pub use service::Service;
pub use tag::{ImageTag, TagError};
pub use upload_id::UploadId;
pub use wildcard::wildcard_match;

/// A 12-digit AWS account id, which ECR calls the registry id.
pub type RegistryId = String;

/// True when `s` is a 12-digit registry id (`[0-9]{12}` in the ECR model).
pub fn is_registry_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
