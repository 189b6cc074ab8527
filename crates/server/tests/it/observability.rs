//! What an operator sees of a running berth: `/metrics` (scraped and parsed here, with the
//! counters checked against the requests the test made), `/healthz` and `/readyz` (turning
//! 503 while PostgreSQL is down), and the request log (one line per request, no secrets).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ecr::operation::RequestId;
use aws_sdk_ecr::types::ImageIdentifier;
use reqwest::Method;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

/// One scrape: every sample by its name and sorted labels (`name{a="x",b="y"}`).
#[derive(Debug)]
pub(crate) struct Scrape(pub(crate) BTreeMap<String, f64>);

impl Scrape {
    /// Parses Prometheus's text format (0.0.4) strictly enough to catch a malformed line: each
    /// sample is `name[{labels}] value`, each family is declared by `# TYPE` before its
    /// samples, and no series appears twice.
    pub(crate) fn parse(text: &str) -> Self {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "type {kind}"
                );
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "{name} declared twice"
                );
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#'), "stray comment {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("labels close"))),
                None => (series, vec![]),
            };
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                "metric name {name:?}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "{name} has no # TYPE before it");
            let key = key(name, &labels);
            assert!(samples.insert(key.clone(), value).is_none(), "{key} twice");
        }
        Scrape(samples)
    }

    /// A sample's value; 0 for a series that has not appeared yet (as Prometheus reads an
    /// absent counter).
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0.get(&key(name, &labels)).copied().unwrap_or(0.0)
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = s;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => value.push(chars.next().expect("escape").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.push((k.to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    out
}

fn key(name: &str, labels: &[(String, String)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

async fn scrape(base: &str) -> Scrape {
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&r.text().await.unwrap())
}

/// A scrape once no request is in flight (a response body is dropped, and its request ends,
/// just after its last byte is written: the client may see it first). At most 5 s.
async fn settled(base: &str) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = scrape(base).await;
        let busy = ["ecr", "ecr-public", "oci", "other"]
            .iter()
            .any(|api| s.get("berth_http_requests_in_flight", &[("api", api)]) != 0.0)
            || s.get("berth_uploads_in_progress", &[]) != 0.0;
        if !busy || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn requests(s: &Scrape, api: &str, op: &str, class: &str) -> f64 {
    s.get(
        "berth_http_requests_total",
        &[("api", api), ("operation", op), ("status_class", class)],
    )
}

#[tokio::test]
async fn metrics_count_pushes_through_both_apis() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "metrics/app";
    create_repo(&ecr, repo).await;
    let before = scrape(&server.endpoint).await;

    // Through ECR: two layers (config and layer), each checked, initiated, sent in one part
    // and completed, then PutImage.
    push_small_image(&ecr, repo, "v1", 7).await;
    // Through /v2 (GetAuthorizationToken first): a monolithic blob upload, a manifest PUT and
    // GET.
    let oci = server.oci().await;
    let blob = random_bytes(300_000, 8);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let blob_digest = oci.push_blob(repo, &blob).await;
    let config_digest = oci.push_blob(repo, config).await;
    let manifest = oci_manifest(
        (&config_digest, config.len()),
        &[(&blob_digest, blob.len())],
    );
    let r = oci
        .put_manifest(
            repo,
            "v2",
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = oci
        .req(Method::GET, &format!("/v2/{repo}/manifests/v2"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), manifest.len());
    // And one refused: a manifest that does not exist.
    let r = oci
        .req(Method::GET, &format!("/v2/{repo}/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let after = settled(&server.endpoint).await;
    let moved = |api: &str, op: &str, class: &str| {
        requests(&after, api, op, class) - requests(&before, api, op, class)
    };
    for (op, n) in [
        ("BatchCheckLayerAvailability", 2.0),
        ("InitiateLayerUpload", 2.0),
        ("UploadLayerPart", 2.0),
        ("CompleteLayerUpload", 2.0),
        ("PutImage", 1.0),
        ("GetAuthorizationToken", 1.0),
    ] {
        assert_eq!(moved("ecr", op, "2xx"), n, "ecr {op}");
    }
    assert_eq!(
        moved("ecr", "CreateRepository", "2xx"),
        0.0,
        "before the first scrape"
    );
    assert_eq!(moved("oci", "upload", "2xx"), 2.0);
    assert_eq!(moved("oci", "manifest", "2xx"), 2.0);
    assert_eq!(moved("oci", "manifest", "4xx"), 1.0);
    assert_eq!(moved("oci", "blob", "2xx"), 0.0);

    // Latency: one observation per request, in every bucket from the one it fell in.
    let count = |s: &Scrape, api: &str, op: &str| {
        s.get(
            "berth_http_request_duration_seconds_count",
            &[("api", api), ("operation", op)],
        )
    };
    assert_eq!(
        count(&after, "ecr", "PutImage") - count(&before, "ecr", "PutImage"),
        1.0
    );
    assert_eq!(count(&after, "oci", "manifest"), 3.0);
    let inf = after.get(
        "berth_http_request_duration_seconds_bucket",
        &[("api", "oci"), ("operation", "manifest"), ("le", "+Inf")],
    );
    assert_eq!(inf, 3.0);
    let bucket_120 = after.get(
        "berth_http_request_duration_seconds_bucket",
        &[("api", "oci"), ("operation", "manifest"), ("le", "120")],
    );
    assert_eq!(
        bucket_120, 3.0,
        "every manifest request took under two minutes"
    );

    // Bytes: a /v2 push sends exactly its blobs and its manifest; an ECR part sends its layer
    // in base64 within JSON, so more than the layer.
    let bytes = |s: &Scrape, name: &str, api: &str| s.get(name, &[("api", api)]);
    let received_oci = bytes(&after, "berth_http_received_bytes_total", "oci")
        - bytes(&before, "berth_http_received_bytes_total", "oci");
    assert_eq!(
        received_oci as usize,
        blob.len() + config.len() + manifest.len()
    );
    let received_ecr = bytes(&after, "berth_http_received_bytes_total", "ecr")
        - bytes(&before, "berth_http_received_bytes_total", "ecr");
    assert!(
        received_ecr > (1000 + 7) as f64 * 4.0 / 3.0,
        "{received_ecr}"
    );
    let sent_oci = bytes(&after, "berth_http_sent_bytes_total", "oci")
        - bytes(&before, "berth_http_sent_bytes_total", "oci");
    assert!(sent_oci >= manifest.len() as f64, "{sent_oci}");

    // Nothing left in flight; the process figures are there.
    assert_eq!(after.get("berth_uploads_in_progress", &[]), 0.0);
    assert_eq!(
        after.get("berth_http_requests_in_flight", &[("api", "oci")]),
        0.0
    );
    assert!(after.get("process_resident_memory_bytes", &[]) > 1e6);
    assert!(after.get("process_open_fds", &[]) > 3.0);
    assert!(after.get("process_cpu_seconds_total", &[]) > 0.0);
    let started = after.get("process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started <= now + 1.0 && started > now - 600.0, "{started}");
    // Scrapes count themselves nowhere.
    assert_eq!(
        after.get("berth_http_requests_in_flight", &[("api", "operator")]),
        0.0
    );
}

/// An upload whose body is half sent is in progress, and is not once it ends.
#[tokio::test]
async fn uploads_in_progress_follow_an_upload_body() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "metrics/slow";
    create_repo(&ecr, repo).await;
    let oci = server.oci().await;
    let r = oci
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let path = v2_path(r.headers()["location"].to_str().unwrap());
    let addr = server.endpoint.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(
        format!(
            "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n01234",
            oci.auth
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(&server.endpoint).await;
        if s.get("berth_uploads_in_progress", &[]) == 1.0 {
            assert_eq!(
                s.get("berth_http_requests_in_flight", &[("api", "oci")]),
                1.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "the PATCH never showed: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.write_all(b"56789").await.unwrap();
    let mut reply = vec![0u8; 1024];
    let n = tokio::io::AsyncReadExt::read(&mut conn, &mut reply)
        .await
        .unwrap();
    assert!(
        reply[..n].starts_with(b"HTTP/1.1 202"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );
    let s = settled(&server.endpoint).await;
    assert_eq!(s.get("berth_uploads_in_progress", &[]), 0.0);
    assert_eq!(requests(&s, "oci", "upload", "2xx"), 2.0);
}

/// A download is in flight until its last byte is sent, not only until its headers.
#[tokio::test]
async fn a_download_is_in_flight_until_its_body_ends() {
    let server = TestServer::start().await;
    let repo = "metrics/pull";
    create_repo(&server.ecr(), repo).await;
    let oci = server.oci().await;
    // Larger than what the sockets between the two can buffer.
    let blob = random_bytes(48 * MIB, 9);
    let digest = oci.push_blob(repo, &blob).await;
    let mut r = oci
        .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().expect("a first chunk");
    let s = scrape(&server.endpoint).await;
    assert_eq!(
        s.get("berth_http_requests_in_flight", &[("api", "oci")]),
        1.0,
        "the body is still being sent"
    );
    let mut received = first.len();
    while let Some(c) = r.chunk().await.unwrap() {
        received += c.len();
    }
    assert_eq!(received, blob.len());
    let s = settled(&server.endpoint).await;
    assert_eq!(
        s.get("berth_http_requests_in_flight", &[("api", "oci")]),
        0.0
    );
    let sent = s.get("berth_http_sent_bytes_total", &[("api", "oci")]);
    assert!(sent >= blob.len() as f64, "{sent}");
}

/// Background GC shows its runs and what it freed.
#[tokio::test]
async fn gc_runs_show_in_metrics() {
    let server = TestServer::start_with(&["--gc-interval-secs", "1", "--gc-grace-secs", "0"]).await;
    let ecr = server.ecr();
    let repo = "metrics/gc";
    create_repo(&ecr, repo).await;
    let (_, digest, _) = push_small_image(&ecr, repo, "gone", 11).await;
    ecr.batch_delete_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_digest(&digest).build())
        .send()
        .await
        .unwrap();
    // The layer (1011 bytes) and the config (11 bytes) are now unreferenced.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(&server.endpoint).await;
        if s.get("berth_gc_deleted_blobs_total", &[]) >= 2.0 {
            assert!(s.get("berth_gc_freed_bytes_total", &[]) >= 1011.0 + 11.0);
            assert!(s.get("berth_gc_runs_total", &[("result", "ok")]) >= 1.0);
            assert_eq!(s.get("berth_gc_runs_total", &[("result", "error")]), 0.0);
            assert!(s.get("berth_gc_last_success_timestamp_seconds", &[]) > 1.7e9);
            break;
        }
        assert!(Instant::now() < deadline, "GC freed nothing: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every background job (garbage collection with upload expiry, lifecycle policies, webhook
/// delivery) shows when it last succeeded and how long it took, the figures to alert on
/// when a job falls behind; before its first run a job has no success to show.
#[tokio::test]
async fn background_jobs_show_their_last_success() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hooks.toml");
    // Nothing listens there and nothing is pushed: rounds find no event and succeed.
    std::fs::write(&config, "[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n").unwrap();
    let server = TestServer::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--gc-interval-secs",
        "1",
        "--lifecycle-interval-secs",
        "1",
    ])
    .await;
    let first = scrape(&server.endpoint).await;
    let started = first.get("process_start_time_seconds", &[]);
    for job in ["gc", "lifecycle"] {
        assert!(
            !first.0.contains_key(&format!(
                "berth_job_last_success_timestamp_seconds{{job=\"{job}\"}}"
            )),
            "{job} has not run yet: {first:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(&server.endpoint).await;
        let done = ["gc", "lifecycle", "events"].iter().all(|job| {
            s.0.contains_key(&format!(
                "berth_job_last_success_timestamp_seconds{{job=\"{job}\"}}"
            ))
        });
        if done {
            for job in ["gc", "lifecycle", "events"] {
                let last = s.get("berth_job_last_success_timestamp_seconds", &[("job", job)]);
                assert!(
                    last >= started - 1.0,
                    "{job}: {last} before the start {started}"
                );
                assert!(s.get("berth_job_runs_total", &[("job", job), ("result", "ok")]) >= 1.0);
                assert_eq!(
                    s.get("berth_job_runs_total", &[("job", job), ("result", "error")]),
                    0.0
                );
                let took = s.get("berth_job_last_duration_seconds", &[("job", job)]);
                assert!((0.0..30.0).contains(&took), "{job} took {took}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "a job never succeeded: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// With `--metrics-listen`, `/metrics` moves to its own port; the main port answers 404.
#[tokio::test]
async fn metrics_on_a_listener_of_their_own() {
    let port = crate::outages::free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(&["--metrics-listen", &addr]).await;
    create_repo(&server.ecr(), "metrics/own").await;
    let main = reqwest::get(format!("{}/metrics", server.endpoint))
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let s = scrape(&format!("http://{addr}")).await;
    assert_eq!(requests(&s, "ecr", "CreateRepository", "2xx"), 1.0);
    // The health checks answer on both.
    for base in [server.endpoint.clone(), format!("http://{addr}")] {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }
}

/// Every listener is bound before berth prints "listening on" (which scripts and these tests
/// wait for): the metrics listener answers a scrape sent the moment the line appears, and a
/// `metrics-listen` port already taken fails the start before the line, not after it.
#[tokio::test]
async fn the_metrics_listener_is_bound_before_the_listening_line() {
    let addr = format!("127.0.0.1:{}", crate::outages::free_port());
    let server = TestServer::start_with(&["--metrics-listen", &addr]).await;
    // No wait and no retry: the first connection must be accepted.
    let s = scrape(&format!("http://{addr}")).await;
    assert!(s.0.keys().any(|k| k.starts_with("berth_")), "{s:?}");
    drop(server);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen"])
        .arg(&taken_addr)
        .arg("--data-dir")
        .arg(dir.path())
        .env("BERTH_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !stdout.contains("listening on"),
        "announced with metrics-listen {taken_addr} in use: {stdout}"
    );
    let status = status.expect("berth kept running with its metrics port in use");
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("metrics-listen: binding {taken_addr}")),
        "{stderr}"
    );
    drop(taken);
}

#[tokio::test]
async fn healthz_and_readyz_answer_when_all_is_well() {
    let server = TestServer::start().await;
    let r = reqwest::get(format!("{}/healthz", server.endpoint))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("{}/readyz", server.endpoint))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["checks"]["metadata"], "ok");
    assert_eq!(v["checks"]["blobs"], "ok");
}

/// `/readyz` answers 503, naming the metadata store, while PostgreSQL is stopped, and 200 again
/// once it is back; `/healthz` answers 200 throughout.
#[tokio::test]
async fn readyz_turns_unavailable_while_postgres_is_down() {
    let Some(pg) = crate::outages::private_postgres_for_this_pass() else {
        return;
    };
    let meta = pg.url();
    let server = TestServer::start_with(&["--metadata", &meta, "--gc-interval-secs", "0"]).await;
    let get = |path: &'static str| {
        let url = format!("{}{path}", server.endpoint);
        async move {
            let r = reqwest::get(url).await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or_default();
            (status, body)
        }
    };
    assert_eq!(get("/readyz").await.0, 200);
    pg.stop();
    let started = Instant::now();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the probe is bounded"
    );
    assert_eq!(body["status"], "unavailable");
    assert_ne!(body["checks"]["metadata"], "ok", "{body}");
    assert_eq!(body["checks"]["blobs"], "ok", "{body}");
    assert_eq!(get("/healthz").await.0, 200, "alive, though not ready");
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get("/readyz").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A server whose log (stderr) goes to a file, in JSON; killed when dropped.
struct LoggingServer {
    child: Child,
    endpoint: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl LoggingServer {
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let data = dir.path().join("data");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(&data)
            .args(backend_args(&data, &[] as &[&str]))
            .envs(env.iter().copied())
            .env("BERTH_LOG", "info");
        if let Some(url) = metadata_for(&data) {
            cmd.env("BERTH_METADATA", url);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start berth");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        LoggingServer {
            child,
            endpoint,
            log,
            _dir: dir,
        }
    }

    /// The log's request lines (`berth::request`), as JSON objects.
    fn request_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
            })
            .filter(|v| v["target"] == "berth::request")
            .collect()
    }
}

impl Drop for LoggingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ECR push signed with SigV4, GetAuthorizationToken, and a `/v2` push with the token
/// leave one JSON line per request, with the request id the client saw and the principal,
/// and neither the secret key, nor the token or its password, nor any `Authorization`
/// header.
#[tokio::test]
async fn request_log_has_a_line_per_request_and_no_secrets() {
    let key = "AKIDLOGTEST";
    let secret = format!(
        "wJalrXUtnFEMI-{}",
        random_bytes(8, 5)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let server = LoggingServer::start(&[
        ("BERTH_ACCESS_KEY_ID", key),
        ("BERTH_SECRET_ACCESS_KEY", &secret),
    ]);
    let ecr = ecr_client_as(&server.endpoint, key, &secret);
    let repo = "logs/app";
    let created = ecr
        .create_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let create_id = created.request_id().expect("x-amzn-RequestId").to_owned();
    let (_, _, layer_digest) = push_small_image(&ecr, repo, "v1", 3).await;
    // A download URL authorizes itself: what authorizes it must not be logged either.
    let url = ecr
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(&layer_digest)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    let url_secret = url
        .split_once("/_berth/layers/")
        .expect("a download URL of berth's")
        .1
        .to_owned();
    let token = ecr
        .get_authorization_token()
        .send()
        .await
        .unwrap()
        .authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_owned();
    let password = String::from_utf8(base64_simd::STANDARD.decode_to_vec(&token).unwrap())
        .unwrap()
        .strip_prefix("AWS:")
        .unwrap()
        .to_owned();
    let oci = Oci {
        http: reqwest::Client::new(),
        base: server.endpoint.clone(),
        auth: format!("Basic {token}"),
    };
    let blob = random_bytes(70_000, 4);
    oci.push_blob(repo, &blob).await;
    let r = oci
        .req(
            Method::HEAD,
            &format!("/v2/{repo}/blobs/{}", sha256_digest(&blob)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let head_id = r.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    // Unauthenticated: no principal.
    let r = reqwest::get(format!("{}/v2/", server.endpoint))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Lines are written as response bodies end; give the last one a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = server.request_lines();
        if lines.len() >= 16 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Each line is written when its response body is dropped, which may come just after the
    // client has read it and sent its next request: compare them as a set.
    let mut ops: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["api"].as_str().unwrap(),
                l["operation"].as_str().unwrap()
            )
        })
        .collect();
    ops.sort();
    let mut expected = [
        "ecr CreateRepository",
        "ecr BatchCheckLayerAvailability",
        "ecr InitiateLayerUpload",
        "ecr UploadLayerPart",
        "ecr CompleteLayerUpload",
        "ecr BatchCheckLayerAvailability",
        "ecr InitiateLayerUpload",
        "ecr UploadLayerPart",
        "ecr CompleteLayerUpload",
        "ecr PutImage",
        "ecr GetDownloadUrlForLayer",
        "ecr LayerDownload",
        "ecr GetAuthorizationToken",
        "oci upload",
        "oci blob",
        "oci base",
    ];
    expected.sort_unstable();
    assert_eq!(ops, expected, "one line per request");
    let line = |api: &str, op: &str| {
        lines
            .iter()
            .find(|l| l["api"] == api && l["operation"] == op)
            .unwrap_or_else(|| panic!("no line for {api} {op}"))
    };
    let arn = format!("arn:aws:iam::000000000000:user/{key}");
    let create = line("ecr", "CreateRepository");
    assert_eq!(
        create["request_id"],
        create_id.as_str(),
        "the id the client saw"
    );
    assert_eq!(create["principal"], arn.as_str());
    assert_eq!(create["status"], 200);
    let download = line("ecr", "LayerDownload");
    assert_eq!(download["bytes_out"], 1003, "the layer's bytes");
    let upload = line("oci", "upload");
    assert_eq!(upload["repository"], repo);
    assert_eq!(
        upload["principal"],
        arn.as_str(),
        "a token carries its principal"
    );
    assert_eq!(upload["status"], 201);
    assert_eq!(upload["bytes_in"], blob.len() as u64);
    assert_eq!(upload["method"], "POST");
    let head = line("oci", "blob");
    assert_eq!(
        head["request_id"],
        head_id.as_str(),
        "/v2 answers its id too"
    );
    let anonymous = line("oci", "base");
    assert_eq!(anonymous["status"], 401);
    assert_eq!(anonymous["principal"], "-");
    for l in &lines {
        assert!(l["latency_ms"].as_f64().is_some() && l["duration_ms"].as_f64().is_some());
        assert!(!l["request_id"].as_str().unwrap().is_empty());
    }

    let log = std::fs::read_to_string(&server.log).unwrap();
    for (what, needle) in [
        ("the secret access key", secret.as_str()),
        ("the registry token", token.as_str()),
        ("the registry password", password.as_str()),
        ("a download URL's authorization", url_secret.as_str()),
        ("a SigV4 Authorization header", "AWS4-HMAC-SHA256"),
        ("a SigV4 signature", "Signature="),
        ("a Basic Authorization header", "Basic "),
    ] {
        assert!(!log.contains(needle), "{what} is in the log");
    }
    assert!(!log.to_ascii_lowercase().contains("authorization:"));
}

/// ECR and ECR Public name the repository in the request body, not the path: their log
/// lines carry it all the same, for a refused request too, and no repository for an
/// operation that names none.
#[tokio::test]
async fn ecr_request_lines_name_the_repository() {
    let server = LoggingServer::start(&[
        ("BERTH_ACCESS_KEY_ID", ACCESS_KEY),
        ("BERTH_SECRET_ACCESS_KEY", SECRET_KEY),
    ]);
    let ecr = ecr_client(&server.endpoint);
    let repo = "logs/named";
    create_repo(&ecr, repo).await;
    push_small_image(&ecr, repo, "v1", 7).await;
    let missing = ecr
        .describe_images()
        .repository_name("logs/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "RepositoryNotFoundException");
    ecr.get_authorization_token().send().await.unwrap();

    let public = crate::ecr_public::public_client_in(&server.endpoint, "us-east-1");
    let public_repo = "named-public";
    public
        .create_repository()
        .repository_name(public_repo)
        .send()
        .await
        .unwrap();
    let upload_id = public
        .initiate_layer_upload()
        .repository_name(public_repo)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part = random_bytes(1000, 8);
    public
        .upload_layer_part()
        .repository_name(public_repo)
        .upload_id(&upload_id)
        .part_first_byte(0)
        .part_last_byte(part.len() as i64 - 1)
        .layer_part_blob(aws_sdk_ecrpublic::primitives::Blob::new(part))
        .send()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = server.request_lines();
        if lines.len() >= 15 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let repository_of = |api: &str, op: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["api"] == api && l["operation"] == op)
            .map(|l| l["repository"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(repository_of("ecr", "CreateRepository"), [repo]);
    assert_eq!(repository_of("ecr", "UploadLayerPart"), [repo, repo]);
    assert_eq!(repository_of("ecr", "PutImage"), [repo]);
    assert_eq!(repository_of("ecr", "DescribeImages"), ["logs/missing"]);
    assert_eq!(repository_of("ecr", "GetAuthorizationToken"), ["-"]);
    assert_eq!(
        repository_of("ecr-public", "CreateRepository"),
        [public_repo]
    );
    assert_eq!(
        repository_of("ecr-public", "UploadLayerPart"),
        [public_repo]
    );
    let refused = lines
        .iter()
        .find(|l| l["operation"] == "DescribeImages")
        .unwrap();
    assert_eq!(refused["status"], 400);
    assert_eq!(
        refused["principal"],
        format!("arn:aws:iam::000000000000:user/{ACCESS_KEY}").as_str(),
        "a refused request's line names who asked"
    );
}

/// `berth --version` names the commit the binary was built from.
#[test]
fn version_names_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        });
    assert_eq!(
        text.trim(),
        format!("berth {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// `berth serve --print-config` prints the effective configuration, flags and environment
/// included, without the secrets it was given.
#[test]
fn print_config_shows_settings_and_hides_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--print-config", "--fence-pool-size", "9"])
        .args(["--metadata", "postgres://berth:db-pa55@db.internal/berth"])
        .env("BERTH_ACCESS_KEY_ID", "AKIDPRINT")
        .env("BERTH_SECRET_ACCESS_KEY", "very-secret-value")
        .env_remove("BERTH_METADATA")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("fence-pool-size = 9"), "{text}");
    assert!(text.contains("id = \"AKIDPRINT\""), "{text}");
    assert!(
        text.contains("postgres://berth:REDACTED@db.internal/berth"),
        "{text}"
    );
    assert!(!text.contains("very-secret-value") && !text.contains("db-pa55"));
}
