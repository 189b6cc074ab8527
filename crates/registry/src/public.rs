//! The public registry (ECR Public) of each account: its identity (alias, URI, ARN), its
//! catalog data and the repositories' catalog data. Everything else a public repository does
//! (uploads, images, policies, tags, deletes, GC) is the private registry's code, reached
//! with a [`RepositoryRef`] whose service is [`Service::Public`].
//!
//! Catalog data lives in the metadata store's settings: a repository's text fields as one
//! JSON setting ([`CATALOG_SETTING`]), its logo bytes as another ([`LOGO_SETTING`]), both
//! written in one transaction; the registry's display name as a registry setting.

use std::collections::HashMap;

use model::{Digest, RepositoryName};
use serde::{Deserialize, Serialize};
use storage::{RepositoryId, RepositoryRecord, ResourceTag, StorageError};

use crate::repositories::MAX_RESOURCE_TAGS;
use crate::{Principal, Registry, RegistryError, RepositoryRef, Result, Service, now_millis};

/// The largest logo ECR Public accepts (the model's `LogoImageBlob` maximum).
pub const MAX_LOGO_BYTES: usize = 512_000;
/// The repository setting holding [`CatalogData`] as JSON.
const CATALOG_SETTING: &str = "public.catalog";
/// The repository setting holding the logo's bytes.
const LOGO_SETTING: &str = "public.logo";
/// The registry setting holding the display name.
const DISPLAY_NAME_SETTING: &str = "public.displayName";
/// Where the logo of a public repository is served, followed by `<alias>/<name>`; no
/// authentication, as the catalog data and its `logoUrl` are public.
pub const LOGO_ROUTE: &str = "/_berth/public-logos/";

/// Actions anyone may perform on a public repository, whatever its policy says: the pulls,
/// as on public.ecr.aws (`/v2` GET and HEAD of manifests, blobs, tags and referrers).
pub(crate) fn is_public_read(action: &str) -> bool {
    matches!(
        action,
        "ecr-public:BatchGetImage"
            | "ecr-public:GetDownloadUrlForLayer"
            | "ecr-public:BatchCheckLayerAvailability"
            | "ecr-public:ListImages"
    )
}

/// ECR Public's `RegistryAliasName`: 2-50 characters, `[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*`.
pub fn is_valid_alias(s: &str) -> bool {
    if !(2..=50).contains(&s.len()) {
        return false;
    }
    let mut parts = s.split(['.', '_', '-']);
    let first = parts.next().unwrap_or_default();
    let alnum = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    first.len() >= 2 && first.as_bytes()[0].is_ascii_lowercase() && alnum(first) && parts.all(alnum)
}

/// The alias an account's public registry has unless configured otherwise: eight characters
/// derived from the account id alone (a letter, then seven hex digits, like ECR Public's
/// generated `a1b2c3d4`), so that every node computes the same one without coordination.
pub fn generated_alias(account: &str) -> String {
    let d = Digest::sha256_of(format!("berth public registry alias {account}").as_bytes());
    let hex = d.hex();
    let first = hex.as_bytes()[0] % 26 + b'a';
    format!("{}{}", first as char, &hex[1..8])
}

/// Which account each public registry alias belongs to. An account's registry has its
/// generated alias ([`generated_alias`], ECR Public's "default" alias) and, if configured, a
/// chosen one, which is then its "primary" alias (the one URIs show); both reach it, as on
/// public.ecr.aws. Built from configuration at startup, so every node has the same map.
#[derive(Debug, Clone, Default)]
pub struct PublicAliases {
    /// The configured (primary) alias of each account that has one.
    configured: HashMap<String, String>,
    /// Every known alias, configured or generated, to its account.
    by_alias: HashMap<String, String>,
}

/// One alias of a public registry, as DescribeRegistries lists it (its status is ACTIVE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRegistryAlias {
    pub name: String,
    /// The alias URIs show: the configured one, else the generated one.
    pub primary: bool,
    /// The alias the registry was given when created: the generated one.
    pub default: bool,
}

impl PublicAliases {
    /// `configured` gives accounts their chosen alias; `accounts` are the other accounts the
    /// deployment knows. Every account named in either has its generated alias too. Refuses
    /// an invalid alias, two aliases for one account, and an alias two accounts would share.
    pub fn new(
        configured: &[(String, String)],
        accounts: impl IntoIterator<Item = String>,
    ) -> std::result::Result<Self, String> {
        let mut out = Self::default();
        for (account, alias) in configured {
            if !is_valid_alias(alias) {
                return Err(format!(
                    "public registry alias '{alias}' must be 2-50 characters matching [a-z][a-z0-9]+(?:[._-][a-z0-9]+)*"
                ));
            }
            if let Some(other) = out.configured.get(account)
                && other != alias
            {
                return Err(format!(
                    "account {account} is given two public registry aliases, '{other}' and '{alias}'"
                ));
            }
            out.claim(alias, account)?;
            out.configured.insert(account.clone(), alias.clone());
        }
        let named: Vec<String> = out.configured.keys().cloned().collect();
        for account in named.into_iter().chain(accounts) {
            out.claim(&generated_alias(&account), &account)?;
        }
        Ok(out)
    }

    fn claim(&mut self, alias: &str, account: &str) -> std::result::Result<(), String> {
        match self.by_alias.get(alias) {
            Some(other) if other != account => Err(format!(
                "public registry alias '{alias}' would belong to both {other} and {account}"
            )),
            _ => {
                self.by_alias.insert(alias.to_owned(), account.to_owned());
                Ok(())
            }
        }
    }

    /// The primary alias of an account's public registry: configured, else generated.
    pub fn alias_of(&self, account: &str) -> String {
        self.configured
            .get(account)
            .cloned()
            .unwrap_or_else(|| generated_alias(account))
    }

    /// Every alias of an account's public registry, the primary one first.
    pub fn aliases_of(&self, account: &str) -> Vec<PublicRegistryAlias> {
        let generated = generated_alias(account);
        match self.configured.get(account) {
            Some(chosen) if *chosen != generated => vec![
                PublicRegistryAlias {
                    name: chosen.clone(),
                    primary: true,
                    default: false,
                },
                PublicRegistryAlias {
                    name: generated,
                    primary: false,
                    default: true,
                },
            ],
            _ => vec![PublicRegistryAlias {
                name: generated,
                primary: true,
                default: true,
            }],
        }
    }

    /// The account whose public registry has this alias.
    pub fn account_of(&self, alias: &str) -> Option<&str> {
        self.by_alias.get(alias).map(String::as_str)
    }
}

/// An account's public registry, as DescribeRegistries and the catalog data operations
/// describe it. berth is no AWS Marketplace vendor, so no registry is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRegistry {
    pub registry_id: String,
    /// `arn:aws:ecr-public::<account>:registry/<account>`.
    pub arn: String,
    /// The primary alias (the one in URIs).
    pub alias: String,
    /// Every alias, the primary one first (status ACTIVE).
    pub aliases: Vec<PublicRegistryAlias>,
    pub display_name: Option<String>,
    pub verified: bool,
}

impl PublicRegistry {
    /// `<host>/<alias>`, as `public.ecr.aws/<alias>`.
    pub fn uri(&self, host: &str) -> String {
        format!("{host}/{}", self.alias)
    }
}

/// A public repository's catalog data, the text parts (ECR Public's
/// `RepositoryCatalogDataInput` without the logo, whose bytes travel apart). The front end
/// has checked the model's lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_systems: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_text: Option<String>,
    /// The stored logo's content type, if there is a logo (set by the registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_content_type: Option<String>,
}

/// A stored logo, as the logo route serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The content type of a logo from its first bytes. Only raster formats are named; anything
/// else (SVG included, which can carry scripts) is served as opaque bytes.
fn logo_content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

/// A validated ECR Public CreateRepository request.
#[derive(Debug, Clone)]
pub struct CreatePublicRepository {
    pub registry_id: Option<String>,
    pub name: RepositoryName,
    pub tags: Vec<ResourceTag>,
    /// `catalogData`: its text parts and the logo's bytes (if any).
    pub catalog: Option<(CatalogData, Option<Vec<u8>>)>,
}

/// The settings a catalog data write stores: the JSON text parts and the logo (or its
/// removal).
fn catalog_settings(
    mut data: CatalogData,
    logo: Option<&[u8]>,
) -> Result<(Vec<u8>, Option<&[u8]>)> {
    if let Some(l) = logo
        && l.len() > MAX_LOGO_BYTES
    {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'logoImageBlob' failed to satisfy constraint: 'Member must have length less than or equal to {MAX_LOGO_BYTES}'"
        )));
    }
    data.logo_content_type = logo.map(|l| logo_content_type(l).to_owned());
    let json = serde_json::to_vec(&data).expect("catalog data serializes");
    Ok((json, logo))
}

impl Registry {
    /// The alias of `account`'s public registry.
    pub fn public_alias(&self, account: &str) -> String {
        self.public_aliases.alias_of(account)
    }

    /// The account whose public registry has `alias` (the `/v2/<alias>/...` addressing).
    pub fn public_account(&self, alias: &str) -> Option<&str> {
        self.public_aliases.account_of(alias)
    }

    /// `arn:aws:ecr:<region>:<account>:repository/<name>`, or for a public repository
    /// `arn:aws:ecr-public::<account>:repository/<name>`.
    pub fn repository_arn(&self, repo: &RepositoryRecord) -> String {
        repo.service
            .repository_arn(&self.region, &repo.registry_id, repo.name.as_str())
    }

    /// The URI clients push to and pull from: `<host>/<name>` for a private repository on
    /// berth's host, `<host>/<alias>/<name>` for a public one (as `public.ecr.aws/<alias>/<name>`).
    pub fn repository_uri(&self, repo: &RepositoryRecord, host: &str) -> String {
        match repo.service {
            Service::Private => format!("{host}/{}", repo.name),
            Service::Public => format!(
                "{host}/{}/{}",
                self.public_alias(&repo.registry_id),
                repo.name
            ),
        }
    }

    /// The path of the logo route for a public repository (the front end puts its scheme and
    /// host before it to make `logoUrl`).
    pub fn logo_path(&self, repo: &RepositoryRecord) -> String {
        format!(
            "{LOGO_ROUTE}{}/{}",
            self.public_alias(&repo.registry_id),
            repo.name
        )
    }

    /// The caller's public registry. Every account has one; it needs no creation.
    pub async fn public_registry(&self, who: &Principal) -> Result<PublicRegistry> {
        let account = &who.account_id;
        let display_name = self
            .storage
            .meta
            .registry_setting(Service::Public, account, DISPLAY_NAME_SETTING)
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(PublicRegistry {
            registry_id: account.clone(),
            arn: Service::Public.registry_arn(&self.region, account),
            alias: self.public_alias(account),
            aliases: self.public_aliases.aliases_of(account),
            display_name,
            verified: false,
        })
    }

    /// PutRegistryCatalogData: sets (or with `None`, keeps) the caller's public registry's
    /// display name, and answers the registry.
    pub async fn put_registry_catalog_data(
        &self,
        who: &Principal,
        display_name: Option<&str>,
    ) -> Result<PublicRegistry> {
        if let Some(name) = display_name {
            self.storage
                .meta
                .put_registry_settings(
                    Service::Public,
                    &who.account_id,
                    &[(DISPLAY_NAME_SETTING, Some(name.as_bytes()))],
                )
                .await?;
        }
        self.public_registry(who).await
    }

    /// ECR Public's CreateRepository: the repository, its resource tags and its catalog data
    /// in one transaction.
    pub async fn create_public_repository(
        &self,
        who: &Principal,
        req: CreatePublicRepository,
    ) -> Result<RepositoryRecord> {
        if req.tags.len() > MAX_RESOURCE_TAGS {
            return Err(RegistryError::TooManyTags {
                limit: MAX_RESOURCE_TAGS,
            });
        }
        let settings = match &req.catalog {
            Some((data, logo)) => Some(catalog_settings(data.clone(), logo.as_deref())?),
            None => None,
        };
        let registry_id = req.registry_id.unwrap_or_else(|| who.account_id.clone());
        let resource = format!("repository/{}", req.name);
        self.authorize(
            who,
            Service::Public,
            &registry_id,
            None,
            &resource,
            "ecr:CreateRepository",
        )
        .await?;
        let record = RepositoryRecord {
            id: RepositoryId(0),
            service: Service::Public,
            registry_id: registry_id.clone(),
            name: req.name.clone(),
            created_at: now_millis(),
            // ECR Public has no such settings; these are what its repositories behave as.
            image_tag_mutability: "MUTABLE".to_owned(),
            mutability_exclusions: vec![],
            scan_on_push: false,
            encryption_type: "AES256".to_owned(),
            kms_key: None,
            tags: req.tags,
            policy: None,
        };
        let mut stored: Vec<(&str, &[u8])> = Vec::with_capacity(2);
        if let Some((json, logo)) = &settings {
            stored.push((CATALOG_SETTING, json.as_slice()));
            if let Some(l) = logo {
                stored.push((LOGO_SETTING, *l));
            }
        }
        match self
            .storage
            .meta
            .create_repository_with_settings(record, &stored)
            .await
        {
            Err(StorageError::Conflict(_)) => Err(RegistryError::RepositoryAlreadyExists {
                registry_id,
                name: req.name,
            }),
            other => Ok(other?),
        }
    }

    /// GetRepositoryCatalogData: the stored catalog data (`None` if never set).
    pub async fn repository_catalog_data(
        &self,
        who: &Principal,
        r: &RepositoryRef,
    ) -> Result<(RepositoryRecord, Option<CatalogData>)> {
        let repo = self
            .repository(who, r, "ecr:GetRepositoryCatalogData")
            .await?;
        let data = self.stored_catalog(repo.id).await?;
        Ok((repo, data))
    }

    async fn stored_catalog(&self, id: RepositoryId) -> Result<Option<CatalogData>> {
        match self
            .storage
            .meta
            .repository_setting(id, CATALOG_SETTING)
            .await?
        {
            // Written by this module only; unreadable JSON is damage, not a client error.
            Some(json) => serde_json::from_slice(&json).map(Some).map_err(|e| {
                RegistryError::Storage(StorageError::Other(
                    format!("corrupt catalog data: {e}").into(),
                ))
            }),
            None => Ok(None),
        }
    }

    /// PutRepositoryCatalogData: replaces the repository's catalog data, logo included (no
    /// logo given removes the stored one), in one transaction; answers what is stored.
    pub async fn put_repository_catalog_data(
        &self,
        who: &Principal,
        r: &RepositoryRef,
        data: CatalogData,
        logo: Option<&[u8]>,
    ) -> Result<(RepositoryRecord, CatalogData)> {
        let (json, logo) = catalog_settings(data, logo)?;
        let repo = self
            .repository(who, r, "ecr:PutRepositoryCatalogData")
            .await?;
        let put = self
            .storage
            .meta
            .put_repository_settings(
                repo.id,
                &[
                    (CATALOG_SETTING, Some(json.as_slice())),
                    (LOGO_SETTING, logo),
                ],
            )
            .await;
        match put {
            Err(StorageError::NotFound) => {
                self.forget_repository(&repo);
                return Err(RegistryError::RepositoryNotFound {
                    registry_id: repo.registry_id,
                    name: repo.name.to_string(),
                });
            }
            other => other?,
        }
        let stored = serde_json::from_slice(&json).expect("just serialized");
        Ok((repo, stored))
    }

    /// The logo of a public repository, for anyone (the logo route): by the registry's alias
    /// and the repository's name. `None` if there is no such repository or logo.
    pub async fn public_logo(&self, alias: &str, name: &RepositoryName) -> Result<Option<Logo>> {
        let Some(account) = self.public_account(alias) else {
            return Ok(None);
        };
        let Some(repo) = self
            .storage
            .meta
            .get_repository(Service::Public, account, name)
            .await?
        else {
            return Ok(None);
        };
        let Some(bytes) = self
            .storage
            .meta
            .repository_setting(repo.id, LOGO_SETTING)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Logo {
            content_type: logo_content_type(&bytes).to_owned(),
            bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_follow_ecr_publics_pattern() {
        for ok in ["ab", "a1", "acme", "my-org.images_2", &"a".repeat(50)] {
            assert!(is_valid_alias(ok), "{ok}");
        }
        for bad in [
            "a",
            "1abc",
            "Abc",
            "a-b",
            "ab-",
            "ab--c",
            "ab/c",
            &"a".repeat(51),
            "",
        ] {
            assert!(!is_valid_alias(bad), "{bad}");
        }
    }

    #[test]
    fn generated_aliases_are_valid_stable_and_distinct() {
        let a = generated_alias("123456789012");
        assert_eq!(a, generated_alias("123456789012"));
        assert_eq!(a.len(), 8);
        assert!(is_valid_alias(&a), "{a}");
        assert_ne!(a, generated_alias("123456789013"));
    }

    #[test]
    fn alias_map_resolves_both_ways_and_refuses_clashes() {
        let m = PublicAliases::new(
            &[("111111111111".into(), "acme".into())],
            ["111111111111".to_owned(), "222222222222".to_owned()],
        )
        .unwrap();
        assert_eq!(m.alias_of("111111111111"), "acme");
        assert_eq!(m.account_of("acme"), Some("111111111111"));
        let generated = generated_alias("222222222222");
        assert_eq!(m.alias_of("222222222222"), generated);
        assert_eq!(m.account_of(&generated), Some("222222222222"));
        assert_eq!(
            m.account_of(&generated_alias("111111111111")),
            Some("111111111111"),
            "the generated alias stays a way in"
        );
        assert_eq!(
            m.aliases_of("111111111111"),
            vec![
                PublicRegistryAlias {
                    name: "acme".into(),
                    primary: true,
                    default: false
                },
                PublicRegistryAlias {
                    name: generated_alias("111111111111"),
                    primary: false,
                    default: true
                },
            ]
        );
        assert_eq!(
            m.aliases_of("222222222222"),
            vec![PublicRegistryAlias {
                name: generated,
                primary: true,
                default: true
            }]
        );
        assert!(
            PublicAliases::new(
                &[
                    ("111111111111".into(), "acme".into()),
                    ("111111111111".into(), "other".into())
                ],
                []
            )
            .is_err(),
            "two aliases, one account"
        );
        assert!(
            PublicAliases::new(
                &[("111111111111".into(), generated_alias("222222222222"))],
                ["222222222222".to_owned()]
            )
            .is_err(),
            "another account's generated alias"
        );
        assert!(
            PublicAliases::new(
                &[
                    ("111111111111".into(), "acme".into()),
                    ("222222222222".into(), "acme".into())
                ],
                []
            )
            .is_err()
        );
        assert!(PublicAliases::new(&[("111111111111".into(), "A".into())], []).is_err());
    }

    #[test]
    fn logos_are_sniffed_and_bounded() {
        assert_eq!(logo_content_type(b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(
            logo_content_type(b"<svg onload=alert(1)>"),
            "application/octet-stream"
        );
        assert!(
            catalog_settings(
                CatalogData::default(),
                Some(vec![0; MAX_LOGO_BYTES].as_slice())
            )
            .is_ok()
        );
        assert!(matches!(
            catalog_settings(
                CatalogData::default(),
                Some(vec![0; MAX_LOGO_BYTES + 1].as_slice())
            ),
            Err(RegistryError::InvalidParameter(_))
        ));
    }
}
