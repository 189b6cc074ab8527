//! GetAccountSetting and PutAccountSetting: named values of a private registry (one per
//! account and region), stored in the metadata store's registry settings, and their effects
//! where berth has the feature (BLOB_MOUNTING gates `/v2` cross-repository mounts); and
//! DescribeRegistry, the other registry-wide read.

use crate::{Principal, Registry, RegistryError, Result, Service};

/// An account setting ECR knows: its name, the values it takes (as ECR's API reference lists
/// them) and the value of a registry that never set it.
pub struct AccountSetting {
    pub name: &'static str,
    pub values: &'static [&'static str],
    pub default: &'static str,
}

/// Every account setting, in the order ECR's reference names them. Defaults: AWS_NATIVE
/// (Clair is retired), V2 (the scope of registries created today), and ENABLED for
/// BLOB_MOUNTING, where ECR's default is DISABLED: berth mounted across repositories before
/// the setting existed, and an upgrade must not change what a deployment does.
pub const ACCOUNT_SETTINGS: &[AccountSetting] = &[
    AccountSetting {
        name: "BASIC_SCAN_TYPE_VERSION",
        values: &["AWS_NATIVE", "CLAIR"],
        default: "AWS_NATIVE",
    },
    AccountSetting {
        name: "REGISTRY_POLICY_SCOPE",
        values: &["V1", "V2"],
        default: "V2",
    },
    AccountSetting {
        name: "BLOB_MOUNTING",
        values: &["ENABLED", "DISABLED"],
        default: "ENABLED",
    },
];

/// The registry setting an account setting is stored under.
fn key(name: &str) -> String {
    format!("account-setting/{name}")
}

fn setting(name: &str) -> Result<&'static AccountSetting> {
    ACCOUNT_SETTINGS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'name' failed to satisfy constraint: 'Member must satisfy enum value set: [{}]'",
                ACCOUNT_SETTINGS
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

impl Registry {
    /// DescribeRegistry: the caller's private registry (its id). Replication rules come with
    /// replication (issue 16); until then a registry has none.
    pub async fn describe_registry(&self, who: &Principal) -> Result<String> {
        let registry_id = self
            .authorize_registry(who, None, "ecr:DescribeRegistry")
            .await?
            .to_owned();
        Ok(registry_id)
    }

    /// The value of the caller's registry's setting `name` (its default if never set).
    pub async fn account_setting(&self, who: &Principal, name: &str) -> Result<String> {
        let s = setting(name)?;
        let registry_id = self
            .authorize_registry(who, None, "ecr:GetAccountSetting")
            .await?
            .to_owned();
        self.stored_account_setting(&registry_id, s).await
    }

    async fn stored_account_setting(
        &self,
        registry_id: &str,
        s: &'static AccountSetting,
    ) -> Result<String> {
        let stored = self
            .storage
            .meta
            .registry_setting(Service::Private, registry_id, &key(s.name))
            .await?;
        Ok(stored
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|v| s.values.contains(&v.as_str()))
            .unwrap_or_else(|| s.default.to_owned()))
    }

    /// Sets the caller's registry's setting `name` to `value`, one of the values ECR lists
    /// for it (InvalidParameter otherwise, and nothing changes).
    pub async fn put_account_setting(
        &self,
        who: &Principal,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let s = setting(name)?;
        if !s.values.contains(&value) {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid value '{value}' for account setting {name}: valid values are [{}]",
                s.values.join(", ")
            )));
        }
        let registry_id = self
            .authorize_registry(who, None, "ecr:PutAccountSetting")
            .await?
            .to_owned();
        self.storage
            .meta
            .put_registry_settings(
                Service::Private,
                &registry_id,
                &[(&key(name), Some(value.as_bytes()))],
            )
            .await?;
        Ok(())
    }

    /// Whether `/v2` may mount blobs across repositories of a registry (BLOB_MOUNTING). ECR
    /// Public has no account settings: its registries always may.
    pub(crate) async fn blob_mounting(&self, service: Service, registry_id: &str) -> Result<bool> {
        if service == Service::Public {
            return Ok(true);
        }
        let s = setting("BLOB_MOUNTING")?;
        Ok(self.stored_account_setting(registry_id, s).await? == "ENABLED")
    }
}
