//! Events: ECR's image, replication and pull-through cache actions, posted to a `[[webhooks]]`
//! receiver from the durable outbox: pushes and deletes through both APIs, signed, and
//! delivered after a `kill -9` of berth while the receiver was down; replications to another
//! account and region; pull-through syncs and their failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecr::types::ImageIdentifier;
use hmac::{KeyInit, Mac};

use crate::harness::*;
use crate::replication::{self, dest, rule};

const SECRET: &str = "webhook-secret";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What the receiver saw: (path, signature header, body).
type Seen = Arc<Mutex<Vec<(String, Option<String>, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1:`port`: records every POST, and answers 500 to the first
/// `fail_first` posts to a path and to every post to `/broken`, 200 to the others.
async fn receiver(port: u16, seen: Seen, fail_first: usize) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let sig = headers
                    .get("x-berth-signature-256")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let path = uri.path().to_owned();
                let mut seen = seen.lock().unwrap();
                seen.push((path.clone(), sig, body.to_vec()));
                let posts = seen.iter().filter(|s| s.0 == path).count();
                if path == "/broken" || posts <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the receiver's port");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

/// A free loopback port.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits (at most 30 s) until `seen` holds `n` posts; answers them.
async fn wait_for(seen: &Seen, n: usize) -> Vec<(String, Option<String>, Vec<u8>)> {
    for _ in 0..300 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock().unwrap().clone()
}

async fn metrics(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// (action-type, image-tag, image-digest) of an event body.
fn action(body: &[u8]) -> (String, Option<String>, String) {
    let e: serde_json::Value = serde_json::from_slice(body).unwrap();
    let d = &e["detail"];
    (
        d["action-type"].as_str().unwrap().to_owned(),
        d["image-tag"].as_str().map(str::to_owned),
        d["image-digest"].as_str().unwrap().to_owned(),
    )
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn pushes_and_deletes_through_both_apis_reach_the_webhook_signed_across_a_kill_9() {
    // A free port for the receiver, which stays down until berth has been killed.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("events.toml");
    std::fs::write(
        &config,
        format!(
            "webhook-retry-base-ms = 100\nwebhook-max-attempts = 1000\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\nactions = [\"PUSH\", \"DELETE\"]\nrepository-prefix = \"team/\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();

    let (v1, v2) = {
        let mut server = TestServer::start_in_with(dir.path(), &["--config", &config]).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;
        create_repo(&ecr, "other/app").await;
        // ECR PutImage with a tag.
        let (manifest, v1, _) = push_small_image(&ecr, "team/app", "v1", 1).await;
        // Refused pushes report nothing: the same image and tag again, and missing layers.
        let again = ecr
            .put_image()
            .repository_name("team/app")
            .image_manifest(&manifest)
            .image_tag("v1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(again.as_service_error().unwrap()),
            "ImageAlreadyExistsException"
        );
        let missing = oci_manifest((&sha256_digest(b"nope"), 4), &[]);
        let refused = ecr
            .put_image()
            .repository_name("team/app")
            .image_manifest(&missing)
            .image_tag("bad")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(refused.as_service_error().unwrap()),
            "LayersNotFoundException"
        );
        // A repository the webhook's prefix leaves out.
        push_small_image(&ecr, "other/app", "x", 3).await;

        // `/v2` manifest PUT with a tag.
        let oci = server.oci().await;
        let config_blob = br#"{"seed":"v2"}"#;
        let layer = random_bytes(2000, 2);
        let cd = oci.push_blob("team/app", config_blob).await;
        let ld = oci.push_blob("team/app", &layer).await;
        let m2 = oci_manifest((&cd, config_blob.len()), &[(&ld, layer.len())]);
        let r = oci.put_manifest("team/app", "v2", OCI_MANIFEST, &m2).await;
        assert_eq!(r.status(), 201);
        let v2 = sha256_digest(m2.as_bytes());

        // BatchDeleteImage by tag (its only tag: the image goes), and `/v2` DELETE by digest.
        let out = ecr
            .batch_delete_image()
            .repository_name("team/app")
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap();
        assert!(out.failures().is_empty(), "{out:?}");
        let r = oci
            .req(
                reqwest::Method::DELETE,
                &format!("/v2/team/app/manifests/{v2}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);

        // Delivery fails meanwhile (nobody listens); then berth dies without a word.
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill_hard();
        (v1, v2)
    };

    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 0).await;
    let server = TestServer::start_in_with(dir.path(), &["--config", &config]).await;
    wait_for(&seen, 4).await;
    // A moment more: anything beyond the four (a refused push's event) would show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap().clone();

    let mut got = Vec::new();
    for (path, sig, body) in &seen {
        assert_eq!(path, "/hook");
        assert_eq!(sig.as_deref(), Some(hmac_hex(body).as_str()), "signature");
        let e: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(e["version"], "0");
        assert_eq!(e["detail-type"], "ECR Image Action");
        assert_eq!(e["source"], "aws.ecr");
        assert_eq!(e["account"], "000000000000");
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["resources"], serde_json::json!([]));
        let id = e["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "id {id}");
        let time = e["time"].as_str().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "time {time}"
        );
        let d = &e["detail"];
        assert_eq!(d["result"], "SUCCESS");
        assert_eq!(d["repository-name"], "team/app");
        assert_eq!(d["manifest-media-type"], OCI_MANIFEST);
        assert_eq!(d["artifact-media-type"], OCI_CONFIG);
        assert_eq!(d.as_object().unwrap().len(), 7, "{d}");
        got.push((
            d["action-type"].as_str().unwrap().to_owned(),
            d["image-tag"].as_str().unwrap().to_owned(),
            d["image-digest"].as_str().unwrap().to_owned(),
        ));
    }
    // Each event has its own retry schedule: one that failed before the kill waits out its
    // backoff while a later one, never tried, goes at once. So the order of arrival is not
    // the order of the changes (EventBridge promises none either); each arrives exactly once.
    got.sort();
    let mut want: Vec<(String, String, String)> = [
        ("PUSH", "v1", &v1),
        ("PUSH", "v2", &v2),
        ("DELETE", "v1", &v1),
        ("DELETE", "v2", &v2),
    ]
    .iter()
    .map(|(a, t, d)| ((*a).to_owned(), (*t).to_owned(), (*d).clone()))
    .collect();
    want.sort();
    assert_eq!(got, want, "every change once, and nothing refused");

    // The outbox is empty and /metrics says so.
    let metrics = metrics(&server).await;
    assert!(metrics.contains("\nberth_events_pending 0\n"), "{metrics}");
    assert!(
        metrics.contains("\nberth_events_delivered_total 4\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_and_given_up_without_holding_the_others() {
    let port = free_port();
    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("events.toml");
    std::fs::write(
        &config,
        format!(
            "webhook-retry-base-ms = 200\nwebhook-max-attempts = 4\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{port}/flaky\"\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{port}/broken\"\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{port}/pushes-only\"\nactions = [\"DELETE\"]\n"
        ),
    )
    .unwrap();
    let server =
        TestServer::start_in_with(dir.path(), &["--config", config.to_str().unwrap()]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let started = std::time::Instant::now();
    let (_, digest, _) = push_small_image(&ecr, "team/app", "v1", 1).await;
    // `/flaky` fails twice then takes it (3 posts); `/broken` fails every one of the 4 rounds;
    // the DELETE-only webhook gets nothing.
    let got = wait_for(&seen, 7).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_then = seen.lock().unwrap().clone();
    assert_eq!(
        got_then.len(),
        got.len(),
        "nothing after the last round: {got_then:?}"
    );
    let paths: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        paths.iter().filter(|p| **p == "/flaky").count(),
        3,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == "/broken").count(),
        4,
        "{paths:?}"
    );
    assert_eq!(paths.len(), 7, "{paths:?}");
    for (_, sig, body) in &got {
        assert_eq!(sig, &None, "no secret, no signature");
        assert_eq!(
            action(body),
            ("PUSH".into(), Some("v1".into()), digest.clone())
        );
    }
    // The same event each time (one id), after waits of 200, 400 and 800 ms.
    let ids: std::collections::BTreeSet<String> = got
        .iter()
        .map(|s| serde_json::from_slice::<serde_json::Value>(&s.2).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "backoff: {:?}",
        started.elapsed()
    );
    let m = metrics(&server).await;
    assert!(m.contains("\nberth_events_pending 0\n"), "{m}");
    assert!(m.contains("\nberth_events_given_up 1\n"), "{m}");
    assert!(m.contains("\nberth_events_delivered_total 1\n"), "{m}");
    assert!(
        m.contains("\nberth_event_delivery_failures_total 6\n"),
        "{m}"
    );
}

#[tokio::test]
async fn lifecycle_expiries_are_sent_as_deletes() {
    let port = free_port();
    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("events.toml");
    std::fs::write(
        &config,
        format!("[[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\nactions = [\"DELETE\"]\n"),
    )
    .unwrap();
    let server = TestServer::start_in_with(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--lifecycle-interval-secs",
            "1",
        ],
    )
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let mut digests = Vec::new();
    for seed in 0..3 {
        let tag = format!("v{seed}");
        digests.push(push_small_image(&ecr, "team/app", &tag, seed).await.1);
        // Distinct push times: the newest is kept.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ecr.put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        )
        .send()
        .await
        .unwrap();
    let got = wait_for(&seen, 2).await;
    let mut got: Vec<_> = got.iter().map(|s| action(&s.2)).collect();
    got.sort();
    let mut want = vec![
        (
            "DELETE".to_owned(),
            Some("v0".to_owned()),
            digests[0].clone(),
        ),
        (
            "DELETE".to_owned(),
            Some("v1".to_owned()),
            digests[1].clone(),
        ),
    ];
    want.sort();
    assert_eq!(
        got, want,
        "only the filter's DELETEs, one per expired image's tag"
    );
}

/// Waits until `seen` holds `n` posts, then a moment more, so that any post beyond them (an
/// event the filter should have kept back, a duplicate) shows too; answers the bodies, parsed.
async fn settle(seen: &Seen, n: usize) -> Vec<serde_json::Value> {
    wait_for(seen, n).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = seen.lock().unwrap().clone();
    seen.iter()
        .map(|(_, _, body)| serde_json::from_slice(body).unwrap())
        .collect()
}

/// An event without the fields that differ on every run (`id`, checked to be a UUID, and
/// `time`, checked to be EventBridge's format).
fn fixed(mut e: serde_json::Value) -> serde_json::Value {
    let id = e["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id {id}");
    let time = e["time"].as_str().unwrap().to_owned();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "time {time}"
    );
    let o = e.as_object_mut().unwrap();
    o.remove("id");
    o.remove("time");
    e
}

#[tokio::test]
async fn replications_to_another_account_and_region_send_replication_actions() {
    const OTHER: &str = "111111111111";
    const REFUSING: &str = "333333333333";
    let port = free_port();
    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("events.toml");
    // Only replication events: the pushes' own image actions must not come.
    std::fs::write(
        &config,
        format!(
            "replication-retry-base-ms = 100\n\
             [[access-keys]]\nid = \"AKIDOTHER\"\nsecret = \"other\"\naccount-id = \"{OTHER}\"\n\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\ndetail-types = [\"ECR Replication Action\"]\n"
        ),
    )
    .unwrap();
    let server =
        TestServer::start_in_with(dir.path(), &["--config", config.to_str().unwrap()]).await;
    let ecr = server.ecr();
    let theirs = ecr_client_as(&server.endpoint, "AKIDOTHER", "other");
    theirs
        .put_registry_policy()
        .policy_text(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:root"}},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:{OTHER}:repository/*"}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    ecr.put_replication_configuration()
        .replication_configuration(replication::config(vec![rule(
            vec![
                dest("us-east-1", OTHER),
                dest("eu-west-1", "000000000000"),
                // An account whose registry policy allows nothing: FAILED at once.
                dest("us-east-1", REFUSING),
            ],
            &[],
        )]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    let (_, digest, _) = push_small_image(&ecr, "team/app", "v1", 71).await;

    let mut got: Vec<serde_json::Value> = settle(&seen, 3).await.into_iter().map(fixed).collect();
    got.sort_by_key(|e| e.to_string());
    let want = |account: &str, region: &str, result: &str| {
        serde_json::json!({
            "version": "0",
            "detail-type": "ECR Replication Action",
            "source": "aws.ecr",
            "account": account,
            "region": region,
            "resources": [format!("arn:aws:ecr:{region}:{account}:repository/team/app")],
            "detail": {
                "result": result,
                "repository-name": "team/app",
                "image-digest": digest,
                "source-account": "000000000000",
                "action-type": "REPLICATE",
                "source-region": "us-east-1",
                "image-tag": "v1",
            }
        })
    };
    let mut want = vec![
        want(OTHER, "us-east-1", "SUCCESS"),
        want("000000000000", "eu-west-1", "SUCCESS"),
        want(REFUSING, "us-east-1", "FAILED"),
    ];
    want.sort_by_key(|e| e.to_string());
    assert_eq!(
        got, want,
        "one event per destination, in its account and region"
    );
}

#[tokio::test]
async fn pull_through_syncs_and_their_failures_send_pull_through_cache_actions() {
    use crate::pull_through::{ARN_GOOD, ARN_WRONG, PASSWORD, USER, Upstream};
    let port = free_port();
    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let up = Upstream::start();
    let layout = dir.path().join("work");
    std::fs::create_dir_all(&layout).unwrap();
    up.push(&layout, "library/app", "v1", &[random_bytes(10_000, 1701)]);
    let config = dir.path().join("events.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstream-credentials]]\narn = \"{ARN_GOOD}\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n\n\
             [[upstream-credentials]]\narn = \"{ARN_WRONG}\"\nusername = \"{USER}\"\npassword = \"not-the-password\"\n\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\ndetail-types = [\"ECR Pull Through Cache Action\"]\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = TestServer::start_in_with(&data, &["--config", config.to_str().unwrap()]).await;
    let ecr = server.ecr();
    ecr.create_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .upstream_registry_url(&up.url)
        .credential_arn(ARN_WRONG)
        .send()
        .await
        .unwrap();
    let pull = || {
        ecr.batch_get_image()
            .repository_name("hub/library/app")
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
    };
    // The upstream refuses the rule's credentials: the sync fails.
    let e = pull().await.unwrap_err();
    assert_eq!(
        code(e.as_service_error().unwrap()),
        "UnableToGetUpstreamImageException"
    );
    let first = wait_for(&seen, 1).await.remove(0).2;
    let failed = fixed(serde_json::from_slice(&first).unwrap());
    // With the right secret (the rule's second version) the first pull fills the cache; a
    // second pull is served from the cache and syncs nothing.
    ecr.update_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .credential_arn(ARN_GOOD)
        .send()
        .await
        .unwrap();
    let got = pull().await.unwrap();
    let digest = got.images()[0]
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();
    pull().await.unwrap();
    let all = settle(&seen, 2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let synced = fixed(all[1].clone());

    let envelope = |detail: serde_json::Value| {
        serde_json::json!({
            "version": "0",
            "detail-type": "ECR Pull Through Cache Action",
            "source": "aws.ecr",
            "account": "000000000000",
            "region": "us-east-1",
            "resources": ["arn:aws:ecr:us-east-1:000000000000:repository/hub/library/app"],
            "detail": detail,
        })
    };
    let mut failed = failed;
    let reason = failed["detail"]
        .as_object_mut()
        .unwrap()
        .remove("failure-reason")
        .unwrap();
    assert!(
        reason.as_str().is_some_and(|r| !r.is_empty()),
        "failure-reason {reason}"
    );
    assert_eq!(
        failed,
        envelope(serde_json::json!({
            "rule-version": "1",
            "sync-status": "FAILED",
            "ecr-repository-prefix": "hub",
            "repository-name": "hub/library/app",
            "upstream-registry-url": up.url,
            "image-tag": "v1",
            "failure-code": "UpstreamAccessDenied",
        }))
    );
    assert_eq!(
        synced,
        envelope(serde_json::json!({
            "rule-version": "2",
            "sync-status": "SUCCESS",
            "ecr-repository-prefix": "hub",
            "repository-name": "hub/library/app",
            "upstream-registry-url": up.url,
            "image-tag": "v1",
            "image-digest": digest,
        }))
    );
}

#[tokio::test]
async fn replications_to_remote_berths_are_reported_by_the_source() {
    const REMOTE: &str = "222222222222";
    const GONE: &str = "444444444444";
    // The destination berth has webhooks of its own: it sees a plain /v2 push.
    let remote_port = free_port();
    let remote_seen: Seen = Arc::default();
    let _remote_receiver = receiver(remote_port, remote_seen.clone(), 0).await;
    let remote_dir = tempfile::tempdir().unwrap();
    let remote_config = remote_dir.path().join("events.toml");
    std::fs::write(
        &remote_config,
        format!("[[webhooks]]\nurl = \"http://127.0.0.1:{remote_port}/hook\"\n"),
    )
    .unwrap();
    let remote = TestServer::start_in_with(
        remote_dir.path(),
        &[
            "--create-on-push",
            "--config",
            remote_config.to_str().unwrap(),
        ],
    )
    .await;
    let password = creds(&remote.basic_auth().await)
        .strip_prefix("AWS:")
        .unwrap()
        .to_owned();

    let port = free_port();
    let seen: Seen = Arc::default();
    let _receiver = receiver(port, seen.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("events.toml");
    // A second remote on a port nothing listens on: it fails for good after two attempts.
    std::fs::write(
        &config,
        format!(
            "replication-retry-base-ms = 100\nreplication-max-attempts = 2\n\
             [[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"{}\"\nusername = \"AWS\"\npassword = \"{password}\"\n\n\
             [[replication-remotes]]\nregion = \"ap-south-1\"\nregistry-id = \"{GONE}\"\nurl = \"http://127.0.0.1:{}\"\nusername = \"AWS\"\npassword = \"x\"\n\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\n",
            remote.endpoint,
            free_port()
        ),
    )
    .unwrap();
    let server =
        TestServer::start_in_with(dir.path(), &["--config", config.to_str().unwrap()]).await;
    let ecr = server.ecr();
    ecr.put_replication_configuration()
        .replication_configuration(replication::config(vec![rule(
            vec![dest("eu-west-1", REMOTE), dest("ap-south-1", GONE)],
            &[],
        )]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    let (_, digest, _) = push_small_image(&ecr, "team/app", "v1", 72).await;

    // The source: its push, and one replication event per destination, in the destination's
    // account and region.
    let got = settle(&seen, 3).await;
    let mut kinds: Vec<(String, String, String, String)> = got
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap().to_owned(),
                e["account"].as_str().unwrap().to_owned(),
                e["region"].as_str().unwrap().to_owned(),
                e["detail"]["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let kind = |t: &str, a: &str, r: &str, result: &str| {
        (t.to_owned(), a.to_owned(), r.to_owned(), result.to_owned())
    };
    assert_eq!(
        kinds,
        [
            kind("ECR Image Action", "000000000000", "us-east-1", "SUCCESS"),
            kind("ECR Replication Action", REMOTE, "eu-west-1", "SUCCESS"),
            kind("ECR Replication Action", GONE, "ap-south-1", "FAILED"),
        ]
    );
    for e in got
        .iter()
        .filter(|e| e["detail-type"] == "ECR Replication Action")
    {
        let (account, region) = (&e["account"], e["region"].as_str().unwrap());
        assert_eq!(
            e["resources"],
            serde_json::json!([format!(
                "arn:aws:ecr:{region}:{}:repository/team/app",
                account.as_str().unwrap()
            )])
        );
        assert_eq!(e["detail"]["image-digest"], digest.as_str());
        assert_eq!(e["detail"]["image-tag"], "v1");
        assert_eq!(e["detail"]["source-account"], "000000000000");
        assert_eq!(e["detail"]["source-region"], "us-east-1");
    }
    // The destination berth: the push it received, as any push.
    let theirs = settle(&remote_seen, 1).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["detail-type"], "ECR Image Action");
    assert_eq!(theirs[0]["detail"]["action-type"], "PUSH");
    assert_eq!(theirs[0]["detail"]["image-tag"], "v1");
    assert_eq!(theirs[0]["detail"]["image-digest"], digest.as_str());
}
