//! ECR's events (image, replication and pull-through cache actions), posted to the configured
//! webhooks from the durable outbox.
//!
//! The registry writes each event in the metadata transaction of the change it reports
//! (`MetaStore::put_image_noting` and the deletes for image actions and the cache's syncs,
//! `MetaStore::finish_replication` for a replication's outcome), or on its own when it reports
//! no change (`MetaStore::record_event`: a failed sync); this job, on one node at a time (the
//! `events` lease), posts each due row to every webhook whose filter takes it, in
//! EventBridge's envelope, and removes the row once all of them answered 2xx. A webhook that
//! fails is retried with exponential backoff (base × 2^attempt, at most an hour); after
//! `webhook-max-attempts` rounds the row is marked given up and stays for the operator to see
//! (`berth_events_given_up`). Delivery is at least once: a receiver may see an event twice
//! (a node dying between a post and the row's removal), and tells copies apart by `id`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::json;
use storage::{EventRecord, MetaStore, Millis};

use crate::config::WebhookConfig;
use crate::metrics::{Job, Metrics};

/// The signature header: `sha256=` and the lowercase hex HMAC-SHA256 of the body under the
/// webhook's secret (GitHub's `X-Hub-Signature-256` convention).
pub const SIGNATURE_HEADER: &str = "x-berth-signature-256";

/// Rows taken per round.
const BATCH: u32 = 100;
/// How often the outbox is looked at when it is idle.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const MAX_BACKOFF_MILLIS: u64 = 3_600_000;
/// A webhook that does not answer within this long has failed the attempt.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The `events` lease: renewed every third of it while a round runs, so a long round keeps it;
/// a node killed in a round delays every node's deliveries by at most this long (the 60 s of
/// the GC and lifecycle leases would hold webhooks back for a minute).
const LEASE: Duration = Duration::from_secs(10);

/// `https://` anywhere, or `http://` to a loopback host.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("'{url}' is not an http:// or https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "'{url}': plain http:// is allowed only to a loopback address; use https://"
        ))
    }
}

/// ECR's image events; the others (replication, pull-through cache) keep their own fields in
/// the outbox row's `detail`.
const IMAGE_ACTION: &str = "ECR Image Action";

/// The event in EventBridge's envelope, as ECR sends it: `region` is the region of the
/// event's registry, the home region (`home`) unless the outbox row names another.
///
/// - "ECR Image Action": `result` (always SUCCESS: a refused change is no event), and no
///   `resources`, as ECR's samples show.
/// - "ECR Replication Action" and "ECR Pull Through Cache Action": the fields the row's
///   `detail` holds (`result` or `sync-status`, ...), and `resources` naming the repository's
///   ARN in the event's account and region, as ECR's samples show.
pub fn envelope(e: &EventRecord, home: &str) -> serde_json::Value {
    let ev = &e.event;
    let (account, region) = storage::region::event_region(ev);
    let region = region.unwrap_or(home);
    let mut detail = serde_json::Map::new();
    if ev.detail_type == IMAGE_ACTION {
        detail.insert("result".into(), json!("SUCCESS"));
    }
    detail.insert("repository-name".into(), json!(ev.repository.as_str()));
    if let Some(d) = &ev.digest {
        detail.insert("image-digest".into(), json!(d.as_str()));
    }
    if !ev.action_type.is_empty() {
        detail.insert("action-type".into(), json!(ev.action_type));
    }
    if let Some(t) = &e.tag {
        detail.insert("image-tag".into(), json!(t));
    }
    if let Some(m) = &ev.manifest_media_type {
        detail.insert("manifest-media-type".into(), json!(m));
    }
    if let Some(a) = &ev.artifact_media_type {
        detail.insert("artifact-media-type".into(), json!(a));
    }
    // Written by the registry as an object; a row that is not one adds nothing.
    if let Some(extra) = ev.detail.as_deref() {
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(extra) {
            Ok(fields) => detail.extend(fields),
            Err(err) => {
                tracing::error!(event = e.id, error = %err, "an outbox row's detail is not a JSON object")
            }
        }
    }
    let resources = if ev.detail_type == IMAGE_ACTION {
        vec![]
    } else {
        let partition = match ev.service {
            model::Service::Private => format!("arn:aws:ecr:{region}:{account}"),
            model::Service::Public => format!("arn:aws:ecr-public::{account}"),
        };
        vec![json!(format!("{partition}:repository/{}", ev.repository))]
    };
    json!({
        "version": "0",
        "id": event_id(e),
        "detail-type": ev.detail_type,
        "source": "aws.ecr",
        "account": account,
        "time": registry::format_date(ev.at),
        "region": region,
        "resources": resources,
        "detail": detail,
    })
}

/// A UUID-shaped id that every delivery of one row repeats (EventBridge's `id`), from the
/// row's key and contents, so that a receiver can drop the copies at-least-once brings.
fn event_id(e: &EventRecord) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(e.id.to_be_bytes());
    h.update(e.event.at.to_be_bytes());
    // The same bytes as before events without a digest existed: a row delivered before an
    // upgrade and again after it keeps its id.
    h.update(e.event.digest.as_ref().map_or("", |d| d.as_str()));
    h.update(e.tag.as_deref().unwrap_or(""));
    let b = h.finalize();
    uuid::Builder::from_random_bytes(b[..16].try_into().expect("16 bytes"))
        .into_uuid()
        .to_string()
}

/// Whether `hook`'s filter takes the event.
fn matches(hook: &WebhookConfig, e: &EventRecord) -> bool {
    let ev = &e.event;
    (hook.detail_types.is_empty() || hook.detail_types.contains(&ev.detail_type))
        && (hook.actions.is_empty() || hook.actions.contains(&ev.action_type))
        && hook
            .repository_prefix
            .as_deref()
            .is_none_or(|p| ev.repository.as_str().starts_with(p))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let out = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in out {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The delivery job's settings.
#[derive(Clone)]
pub struct Delivery {
    pub hooks: Arc<Vec<WebhookConfig>>,
    /// The home region: the region of outbox rows that name none.
    pub region: String,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
}

impl Delivery {
    /// Posts due events until the process ends, under the `events` lease.
    pub fn spawn(self, registry: Arc<registry::Registry>, metrics: Arc<Metrics>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No redirects: a webhook answers 2xx itself, and a redirect could lead a signed body
        // to a plain-http host the URL check would have refused.
        let client = match reqwest13::Client::builder()
            .timeout(POST_TIMEOUT)
            .redirect(reqwest13::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook client: no events are delivered");
                return;
            }
        };
        let holder = uuid::Uuid::new_v4().to_string();
        tokio::spawn(async move {
            loop {
                let job = self.round(&client, registry.meta().clone(), &metrics);
                let started = std::time::Instant::now();
                let result = registry.run_leased_for("events", &holder, LEASE, job).await;
                match &result {
                    Ok(Some(_)) => metrics.job_run(Job::Events, true, started.elapsed()),
                    Ok(None) => {}
                    Err(_) => metrics.job_run(Job::Events, false, started.elapsed()),
                }
                match result {
                    // A full batch: more are probably due, so no pause.
                    Ok(Some(n)) if n == u64::from(BATCH) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event delivery round failed"),
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }

    /// Posts every due row once; answers how many rows it handled.
    async fn round(
        &self,
        client: &reqwest13::Client,
        meta: Arc<dyn MetaStore>,
        metrics: &Metrics,
    ) -> Result<u64, registry::RegistryError> {
        let due = meta.due_events(registry::now_millis(), BATCH).await?;
        let done = due.len() as u64;
        for e in due {
            let body =
                serde_json::to_vec(&envelope(&e, &self.region)).expect("JSON values serialize");
            let mut delivered = e.delivered_to.clone();
            let mut failed = false;
            for hook in self.hooks.iter().filter(|h| matches(h, &e)) {
                if delivered.contains(&hook.url) {
                    continue;
                }
                let mut req = client
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(secret) = &hook.secret {
                    req = req.header(SIGNATURE_HEADER, signature(secret, &body));
                }
                let ok = match req.send().await {
                    Ok(r) if r.status().is_success() => true,
                    Ok(r) => {
                        tracing::warn!(url = %hook.url, status = %r.status(), event = e.id, "webhook refused an event");
                        false
                    }
                    Err(err) => {
                        tracing::warn!(url = %hook.url, error = %err, event = e.id, "webhook unreachable");
                        false
                    }
                };
                metrics.event_post(ok);
                if ok {
                    delivered.push(hook.url.clone());
                } else {
                    failed = true;
                }
            }
            if failed {
                let attempts = e.attempts + 1;
                let give_up = attempts >= self.max_attempts;
                let wait = self
                    .retry_base_ms
                    .saturating_mul(1u64 << (attempts - 1).min(40))
                    .min(MAX_BACKOFF_MILLIS);
                let next: Millis = registry::now_millis() + wait as i64;
                if give_up {
                    tracing::error!(event = e.id, attempts, "event delivery given up");
                }
                meta.retry_event(e.id, &delivered, next, give_up).await?;
            } else {
                meta.delete_event(e.id).await?;
            }
        }
        let backlog = meta.event_backlog().await?;
        metrics.event_backlog(backlog.pending, backlog.given_up);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actions_filter_takes_only_events_with_one_of_its_action_types() {
        let event = |detail_type: &str, action_type: &str| EventRecord {
            id: 1,
            event: storage::ImageEvent {
                detail_type: detail_type.into(),
                action_type: action_type.into(),
                service: model::Service::Private,
                registry_id: "123456789012".into(),
                region: None,
                repository: model::RepositoryName::parse("team/app").unwrap(),
                digest: None,
                manifest_media_type: None,
                artifact_media_type: None,
                detail: Some(r#"{"sync-status":"FAILED"}"#.into()),
                at: 0,
            },
            tag: None,
            attempts: 0,
            delivered_to: vec![],
        };
        let hook = |detail_types: &[&str], actions: &[&str]| WebhookConfig {
            url: "https://hooks.example.com/".into(),
            secret: None,
            detail_types: detail_types.iter().map(|s| s.to_string()).collect(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            repository_prefix: Some("team/".into()),
        };
        let sync = event("ECR Pull Through Cache Action", "");
        let replicate = event("ECR Replication Action", "REPLICATE");
        assert!(matches(&hook(&[], &[]), &sync));
        assert!(!matches(&hook(&[], &["PUSH", "DELETE"]), &sync));
        assert!(matches(&hook(&[], &["REPLICATE"]), &replicate));
        assert!(!matches(&hook(&["ECR Image Action"], &[]), &replicate));
        assert!(matches(
            &hook(&["ECR Pull Through Cache Action"], &[]),
            &sync
        ));
        // No digest: no `image-digest`; no action type: no `action-type`; the row's detail.
        let body = envelope(&sync, "us-east-1");
        assert_eq!(
            body["detail"],
            json!({"repository-name": "team/app", "sync-status": "FAILED"})
        );
        assert_eq!(
            body["resources"],
            json!(["arn:aws:ecr:us-east-1:123456789012:repository/team/app"])
        );
    }

    #[test]
    fn envelopes_name_the_region_of_their_registry() {
        let record = |registry_id: &str| EventRecord {
            id: 1,
            event: storage::ImageEvent {
                detail_type: "ECR Image Action".into(),
                action_type: "PUSH".into(),
                service: model::Service::Private,
                registry_id: registry_id.into(),
                region: None,
                repository: model::RepositoryName::parse("app").unwrap(),
                digest: Some(model::Digest::sha256_of(b"x")),
                manifest_media_type: None,
                artifact_media_type: None,
                detail: None,
                at: 0,
            },
            tag: Some("v1".into()),
            attempts: 0,
            delivered_to: vec![],
        };
        let home = envelope(&record("123456789012"), "eu-west-1");
        assert_eq!(
            (&home["account"], &home["region"]),
            (&json!("123456789012"), &json!("eu-west-1"))
        );
        let other = envelope(&record("123456789012:ap-south-1"), "eu-west-1");
        assert_eq!(
            (&other["account"], &other["region"]),
            (&json!("123456789012"), &json!("ap-south-1"))
        );
    }
}
