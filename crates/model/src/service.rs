//! Which of an account's two registries a repository lives in: the private registry (Amazon
//! ECR) or the public one (Amazon ECR Public). The same repository name may exist in both.

use std::borrow::Cow;

/// An account's private registry (ECR) or its public registry (ECR Public).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Service {
    #[default]
    Private,
    Public,
}

/// Prefix of the key the metadata store files an account's public registry under. Account
/// ids are 12 digits, so no private registry's key starts with it.
const PUBLIC_KEY_PREFIX: &str = "public:";

impl Service {
    /// The IAM service prefix of this service's actions (`ecr:PutImage`,
    /// `ecr-public:PutImage`) and ARNs.
    pub fn action_prefix(self) -> &'static str {
        match self {
            Service::Private => "ecr",
            Service::Public => "ecr-public",
        }
    }

    /// The key under which the metadata store keeps this service's registry of `account`:
    /// the account id itself for the private registry (as before public registries existed,
    /// so stored data needs no migration), `public:<account>` for the public one. Only the
    /// storage layer sees keys; everything above it speaks (service, account).
    pub fn registry_key(self, account: &str) -> Cow<'_, str> {
        match self {
            Service::Private => Cow::Borrowed(account),
            Service::Public => Cow::Owned(format!("{PUBLIC_KEY_PREFIX}{account}")),
        }
    }

    /// The (service, account) a [`Service::registry_key`] stands for.
    pub fn from_registry_key(key: &str) -> (Service, &str) {
        match key.strip_prefix(PUBLIC_KEY_PREFIX) {
            Some(account) => (Service::Public, account),
            None => (Service::Private, key),
        }
    }

    /// The ARN of a repository: `arn:aws:ecr:<region>:<account>:repository/<name>`, or ECR
    /// Public's region-less `arn:aws:ecr-public::<account>:repository/<name>`.
    pub fn repository_arn(self, region: &str, account: &str, name: &str) -> String {
        self.resource_arn(region, account, &format!("repository/{name}"))
    }

    /// The ARN of a registry: ECR Public's is `arn:aws:ecr-public::<account>:registry/<account>`.
    pub fn registry_arn(self, region: &str, account: &str) -> String {
        self.resource_arn(region, account, &format!("registry/{account}"))
    }

    /// The ARN of `resource` (`repository/<name>`, `repository/*`, `registry/<id>`).
    pub fn resource_arn(self, region: &str, account: &str, resource: &str) -> String {
        match self {
            Service::Private => format!("arn:aws:ecr:{region}:{account}:{resource}"),
            Service::Public => format!("arn:aws:ecr-public::{account}:{resource}"),
        }
    }

    /// `action` (written `ecr:<Operation>`, as the private service names it) in this
    /// service's namespace: `ecr-public:<Operation>` for the public registry.
    pub fn action(self, action: &str) -> Cow<'_, str> {
        match (self, action.strip_prefix("ecr:")) {
            (Service::Public, Some(op)) => Cow::Owned(format!("ecr-public:{op}")),
            _ => Cow::Borrowed(action),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_private_keys_are_account_ids() {
        assert_eq!(
            Service::Private.registry_key("123456789012"),
            "123456789012"
        );
        assert_eq!(
            Service::Public.registry_key("123456789012"),
            "public:123456789012"
        );
        for s in [Service::Private, Service::Public] {
            assert_eq!(
                Service::from_registry_key(&s.registry_key("123456789012")),
                (s, "123456789012")
            );
        }
    }

    #[test]
    fn arns_and_actions() {
        assert_eq!(
            Service::Public.repository_arn("eu-west-1", "123456789012", "team/app"),
            "arn:aws:ecr-public::123456789012:repository/team/app"
        );
        assert_eq!(
            Service::Public.registry_arn("eu-west-1", "123456789012"),
            "arn:aws:ecr-public::123456789012:registry/123456789012"
        );
        assert_eq!(
            Service::Private.repository_arn("eu-west-1", "123456789012", "a"),
            "arn:aws:ecr:eu-west-1:123456789012:repository/a"
        );
        assert_eq!(
            Service::Public.action("ecr:PutImage"),
            "ecr-public:PutImage"
        );
        assert_eq!(Service::Private.action("ecr:PutImage"), "ecr:PutImage");
    }
}
