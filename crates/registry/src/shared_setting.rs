//! What the registry-wide operations share: their authorization, on the whole registry, and
//! their values, each kept as one JSON value in a registry setting (creation templates,
//! pull-through cache rules, pull-time exclusions, the scanning and replication
//! configurations), read, and changed safely by several nodes at once.

use serde::{Serialize, de::DeserializeOwned};
use storage::StorageError;

use crate::{Principal, Registry, RegistryError, Result, Service};

/// Attempts before a change that keeps losing the race gives up with a server error: each lost
/// attempt means another change landed, so this bounds a burst of concurrent writers.
const ATTEMPTS: usize = 32;

impl Registry {
    /// Authorizes `action` on a whole private registry, the one named by `registry_id` or else
    /// the caller's own, as ECR authorizes its registry-wide operations (resource
    /// `repository/*`); answers the registry's id.
    pub(crate) async fn authorize_registry<'a>(
        &self,
        who: &'a Principal,
        registry_id: Option<&'a str>,
        action: &str,
    ) -> Result<&'a str> {
        let registry_id = registry_id.unwrap_or(&who.account_id);
        self.authorize(
            who,
            Service::Private,
            registry_id,
            None,
            "repository/*",
            action,
        )
        .await?;
        Ok(registry_id)
    }

    /// The value stored as JSON in the private registry's setting `name`, or the default when
    /// it was never written. Only berth writes these settings, from checked values: bytes that
    /// do not parse are logged and read as the default, so that no request reading them fails
    /// (a change through [`Self::modify_setting_list`] refuses them instead of overwriting).
    pub(crate) async fn setting_value<T>(&self, registry_id: &str, name: &str) -> Result<T>
    where
        T: DeserializeOwned + Default,
    {
        let stored = self
            .storage
            .meta
            .registry_setting(Service::Private, registry_id, name)
            .await?;
        Ok(match stored {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(registry = registry_id, setting = name, error = %e, "a stored registry setting does not parse; read as its default");
                T::default()
            }),
            None => T::default(),
        })
    }

    /// Reads the list stored in the private registry's setting `name`, lets `change` edit it,
    /// and writes it back with a compare-and-swap against the bytes read. When another node
    /// (or task) wrote in between, the list is read again and `change` runs again on it, so no
    /// change is lost and every check inside `change` sees the list it writes. An error from
    /// `change` is answered as is, with nothing written.
    pub(crate) async fn modify_setting_list<T, R>(
        &self,
        registry_id: &str,
        name: &str,
        mut change: impl FnMut(&mut Vec<T>) -> Result<R>,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        let meta = &self.storage.meta;
        for _ in 0..ATTEMPTS {
            let read = meta
                .registry_setting(Service::Private, registry_id, name)
                .await?;
            let mut list: Vec<T> = match &read {
                Some(bytes) => serde_json::from_slice(bytes).map_err(|e| corrupt(name, e))?,
                None => Vec::new(),
            };
            let out = change(&mut list)?;
            let written = serde_json::to_vec(&list).map_err(|e| corrupt(name, e))?;
            if meta
                .swap_registry_setting(
                    Service::Private,
                    registry_id,
                    name,
                    read.as_deref(),
                    Some(&written),
                )
                .await?
            {
                return Ok(out);
            }
        }
        Err(RegistryError::Storage(StorageError::Other(
            format!("registry setting {name} kept changing under {ATTEMPTS} attempts").into(),
        )))
    }
}

fn corrupt(name: &str, e: serde_json::Error) -> RegistryError {
    RegistryError::Storage(StorageError::Other(
        format!("registry setting {name} does not (de)serialise: {e}").into(),
    ))
}
