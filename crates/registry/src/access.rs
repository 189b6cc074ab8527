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

/// The identity policy of a key that is no longer configured.
const DENY_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

/// Parsed [`KeyAccess`] entries by access key id.
#[derive(Debug, Default)]
pub(crate) struct Identities(HashMap<String, Arc<Identity>>, Option<Arc<Identity>>);

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
        let removed = (!out.is_empty()).then(|| {
            Arc::new(Identity {
                policy: Some(Policy::parse_identity(DENY_ALL).expect("the deny-all policy parses")),
                tags: vec![],
            })
        });
        Ok(Self(out, removed))
    }

    /// The identity of a key. A registry token or a web UI session names the key it was made
    /// for and outlives it: once keys are configured, a key that is not (any more) gets an
    /// identity that denies everything, not the "no policy" of an unrestricted key. Without
    /// configured keys (any signature accepted) and for anonymous callers (no key), `None`.
    pub(crate) fn get(&self, access_key_id: &str) -> Option<Arc<Identity>> {
        match self.0.get(access_key_id) {
            Some(identity) => Some(identity.clone()),
            None if access_key_id.is_empty() => None,
            None => self.1.clone(),
        }
    }
}

/// The connection a request came on, as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The client's address: the peer's, or the configured trusted proxy header's.
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Where authorization notes what the request was, for the audit trail (see
    /// [`AuditNote`]); the server writes the record once the response is known.
    pub audit: AuditNotes,
}

/// What authorization learned about a request: who asked for which operation on what, and
/// whether a policy refused it.
#[derive(Debug, Clone)]
pub struct AuditNote {
    /// `ecr` or `ecr-public`.
    pub service: &'static str,
    /// The operation, e.g. `PutImage`.
    pub event_name: String,
    pub principal_arn: String,
    pub account_id: String,
    pub access_key_id: String,
    pub registry_id: String,
    /// The region of the registry acted on (CloudTrail's `awsRegion`).
    pub region: String,
    /// `None` for registry-wide operations.
    pub repository: Option<String>,
    /// The AccessDenied message when a policy refused the request.
    pub denied: Option<String>,
}

/// The notes of one request (an operation may authorize more than one action, e.g. a mount
/// reads one repository and writes another).
#[derive(Debug, Clone, Default)]
pub struct AuditNotes(Arc<std::sync::Mutex<Vec<AuditNote>>>);

impl AuditNotes {
    fn push(&self, note: AuditNote) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(note);
    }

    /// The note a record describes: the first refusal, else the last mutating operation, else
    /// `None` (read-only requests are not recorded).
    pub fn to_record(&self) -> Option<AuditNote> {
        let notes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        notes
            .iter()
            .find(|n| n.denied.is_some())
            .or_else(|| notes.iter().rev().find(|n| is_mutating(&n.event_name)))
            .cloned()
    }
}

/// Whether an operation changes something (CloudTrail's `readOnly: false`).
pub fn is_mutating(operation: &str) -> bool {
    !["Describe", "List", "Get", "BatchGet", "BatchCheck"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Notes an authorization decision for the audit trail of the current request, if the server
/// keeps one.
pub(crate) fn note(
    region: &str,
    who: &Principal,
    service: Service,
    action: &str,
    registry_id: &str,
    resource: &str,
    denied: Option<String>,
) {
    let Some(c) = Connection::current() else {
        return;
    };
    let repository = resource
        .strip_prefix("repository/")
        .filter(|r| *r != "*")
        .map(str::to_owned);
    c.audit.push(AuditNote {
        service: service.action_prefix(),
        event_name: action.rsplit(':').next().unwrap_or(action).to_owned(),
        principal_arn: who.arn.clone(),
        account_id: who.account_id.clone(),
        access_key_id: who.access_key_id.clone(),
        registry_id: registry_id.to_owned(),
        region: region.to_owned(),
        repository,
        denied,
    });
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
