//! Encodings both engines share: how rows' text becomes model values.

use model::{Digest, ImageTag, Service};

use super::{MutabilityExclusion, ResourceTag};
use crate::StorageError;

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

pub(super) fn corrupt(what: &str) -> StorageError {
    StorageError::Other(format!("corrupt metadata: {what}").into())
}

pub(super) fn parse_digest(s: &str) -> Result<Digest, StorageError> {
    Digest::parse(s).map_err(|_| corrupt("digest"))
}

pub(super) fn parse_tag(s: &str) -> Result<ImageTag, StorageError> {
    ImageTag::parse(s).map_err(|_| corrupt("tag"))
}

pub(super) fn encode_exclusions(ex: &[MutabilityExclusion]) -> String {
    ex.iter()
        .map(|e| format!("{}\t{}\n", e.filter_type, e.filter))
        .collect()
}

pub(super) fn decode_exclusions(s: &str) -> Vec<MutabilityExclusion> {
    s.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, f)| MutabilityExclusion {
            filter_type: t.to_owned(),
            filter: f.to_owned(),
        })
        .collect()
}

/// `[[key, value], ...]` as `json_group_array` builds it.
pub(super) fn decode_tags(json: &str) -> Result<Vec<ResourceTag>, StorageError> {
    let pairs: Vec<(String, String)> =
        serde_json::from_str(json).map_err(|_| corrupt("repository tags"))?;
    Ok(pairs
        .into_iter()
        .map(|(key, value)| ResourceTag { key, value })
        .collect())
}

/// The (service, account) a stored registry key stands for (see [`Service::registry_key`]).
pub(super) fn split_registry_key(key: &str) -> (Service, String) {
    let (service, account) = Service::from_registry_key(key);
    (service, account.to_owned())
}
