//! What authorization knows beyond resource policies: each access key's identity policy and
//! tags, and the facts about the connection a request came on (source address, TLS), which
//! the server hands down for condition keys. Together they make the request context that
//! conditions read (see `condition.rs` for the keys' semantics).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::condition::{Context, format_date};
use crate::policy::Policy;
use crate::{Principal, RepositoryRecord, Service};

/// An access key's identity policy and tags, as configured (`[[access-keys]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAccess {
    pub access_key_id: String,
    /// IAM policy JSON. `None`: the key may do anything in its own account that no resource
    /// policy denies (berth's meaning before identity policies).
    pub policy: Option<String>,
    /// `aws:PrincipalTag/<key>` values.
    pub tags: Vec<(String, String)>,
}

/// Parsed [`KeyAccess`] entries by access key id.
#[derive(Debug, Default)]
pub(crate) struct Identities(HashMap<String, Arc<Identity>>);

#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) policy: Option<Policy>,
    tags: Vec<(String, String)>,
}

impl Identities {
    /// Parses every key's policy; names the key whose policy is malformed.
    pub(crate) fn new(keys: Vec<KeyAccess>) -> Result<Self, String> {
        let mut out = HashMap::new();
        for k in keys {
            let policy = k
                .policy
                .as_deref()
                .map(Policy::parse_identity)
                .transpose()
                .map_err(|e| format!("the identity policy of {}: {e}", k.access_key_id))?;
            out.insert(
                k.access_key_id,
                Arc::new(Identity {
                    policy,
                    tags: k.tags,
                }),
            );
        }
        Ok(Self(out))
    }

    pub(crate) fn get(&self, access_key_id: &str) -> Option<Arc<Identity>> {
        self.0.get(access_key_id).cloned()
    }
}

/// The connection a request came on, as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The client's address: the peer's, or the configured trusted proxy header's.
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

tokio::task_local! {
    static CONNECTION: Connection;
}

impl Connection {
    /// Runs `f` (a request's handling) with this connection as its context. A task-local
    /// rather than a parameter: every use case authorizes, and threading the connection
    /// through each of their signatures would change every front-end call for two facts only
    /// authorization reads.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CONNECTION.scope(self, f).await
    }

    fn current() -> Option<Connection> {
        CONNECTION.try_with(Clone::clone).ok()
    }
}

/// The request context of `who` acting on `repo` (if the request names one), with
/// `request_tags` for requests that carry tags (`aws:RequestTag/*`, `aws:TagKeys`).
pub(crate) fn context(
    who: &Principal,
    identity: Option<&Identity>,
    service: Service,
    repo: Option<&RepositoryRecord>,
    request_tags: Option<&[(String, Option<String>)]>,
) -> Context {
    let mut ctx = Context::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    ctx.set("aws:CurrentTime", format_date(now))
        .set("aws:EpochTime", (now / 1000).to_string());
    if let Some(c) = Connection::current() {
        if let Some(ip) = c.source_ip {
            // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            ctx.set("aws:SourceIp", ip.to_string());
        }
        ctx.set("aws:SecureTransport", c.secure_transport.to_string());
    }
    // Anonymous callers (anonymous pulls, download URLs) carry no principal keys.
    if who.arn.starts_with("arn:") && !who.account_id.is_empty() {
        ctx.set("aws:PrincipalArn", who.arn.clone())
            .set("aws:PrincipalAccount", who.account_id.clone());
        let resource = who.arn.splitn(6, ':').nth(5).unwrap_or_default();
        if resource == "root" {
            ctx.set("aws:PrincipalType", "Account")
                .set("aws:userid", who.account_id.clone());
        } else if let Some(path) = resource.strip_prefix("user/") {
            // IAM's unique user ids (AIDA...) do not exist here: the access key id stands in.
            let name = path.rsplit('/').next().unwrap_or(path);
            ctx.set("aws:PrincipalType", "User")
                .set("aws:username", name)
                .set("aws:userid", who.access_key_id.clone());
        } else if let Some(role) = resource.strip_prefix("assumed-role/") {
            // role-name/session-name: aws:userid is role-id:session-name in AWS.
            ctx.set("aws:PrincipalType", "AssumedRole")
                .set("aws:userid", role.replacen('/', ":", 1));
        }
    }
    if let Some(id) = identity {
        for (k, v) in &id.tags {
            ctx.set(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
    }
    if let Some(repo) = repo {
        for t in &repo.tags {
            ctx.set(&format!("aws:ResourceTag/{}", t.key), t.value.clone());
            ctx.set(
                &format!("{}:ResourceTag/{}", service.action_prefix(), t.key),
                t.value.clone(),
            );
        }
    }
    if let Some(tags) = request_tags {
        for (k, v) in tags {
            if let Some(v) = v {
                ctx.set(&format!("aws:RequestTag/{k}"), v.clone());
            }
        }
        ctx.set_all("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
    }
    ctx
}
