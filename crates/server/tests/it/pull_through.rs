//! Pull-through cache (issue 16): the rule operations through `aws-sdk-ecr`, and pulls through
//! berth from a real upstream, Debian's `docker-registry` (CNCF distribution) with htpasswd
//! authentication, filled with skopeo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestServer, code, creds, oci_code, random_bytes, sha256_digest, skopeo};

pub(crate) const USER: &str = "tester";
pub(crate) const PASSWORD: &str = "s3cret-pw";
pub(crate) const ARN_GOOD: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/upstream";
pub(crate) const ARN_WRONG: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/wrong-password";
const ARN_NO_FILE: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/missing-file";
const ARN_UNKNOWN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/not-configured";
/// The upstream's credentials as a secret of eu-west-1, for a rule made there.
const ARN_WEST: &str =
    "arn:aws:secretsmanager:eu-west-1:000000000000:secret:ecr-pullthroughcache/upstream";

/// A `docker-registry` on loopback with htpasswd authentication; stopped (by its PID) on drop.
pub(crate) struct Upstream {
    child: Option<Child>,
    pub(crate) url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Upstream {
    pub(crate) fn start() -> Self {
        assert!(
            Command::new("docker-registry")
                .arg("--version")
                .output()
                .is_ok(),
            "the pull-through tests need Debian's docker-registry (apt-get install docker-registry apache2-utils; .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd (apache2-utils)");
        assert!(htpasswd.status.success());
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        // A free port: the registry takes its address from its configuration file.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: false}}}}\nstorage:\n  filesystem: {{rootdirectory: {root}}}\n  delete: {{enabled: true}}\nhttp: {{addr: 127.0.0.1:{port}}}\nauth:\n  htpasswd: {{realm: upstream, path: {ht}}}\n",
            root = dir.path().join("data").display(),
            ht = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("registry.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            // Its AWS SDK panics at start on an AWS_CA_BUNDLE (the S3 pass sets one).
            .env_remove("AWS_CA_BUNDLE")
            // REGISTRY_* variables override its configuration (REGISTRY_AUTH_FILE, skopeo's,
            // would be read as its `auth` section).
            .env_remove("REGISTRY_AUTH_FILE")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let url = format!("http://127.0.0.1:{port}");
        let up = Upstream {
            child: Some(child),
            url,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        up
    }

    /// Where the upstream keeps a blob's bytes (distribution's filesystem layout).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = &digest[7..];
        self._dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Stops the registry by its PID.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Lines of its access log that GET `path`.
    fn gets_of(&self, path: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(&format!("\"GET {path} ")) && !l.contains("\" 401 "))
            .count()
    }

    /// Pushes an image (a config and `raw` layers, gzipped as skopeo would otherwise compress
    /// them on the way) as `<repo>:<tag>` with skopeo from an OCI layout; answers its layers
    /// as stored: (digest, bytes).
    pub(crate) fn push(
        &self,
        work: &Path,
        repo: &str,
        tag: &str,
        raw: &[Vec<u8>],
    ) -> Vec<(String, Vec<u8>)> {
        let diff_ids: Vec<String> = raw.iter().map(|l| sha256_digest(l)).collect();
        let layers: Vec<Vec<u8>> = raw.iter().map(|l| gzip(l)).collect();
        let layers = layers.as_slice();
        let layout = work.join(format!(
            "layout-{}",
            sha256_digest(&layers.concat())[7..19].to_owned()
        ));
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let d = sha256_digest(bytes);
            std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
            d
        };
        let layer_digests: Vec<String> = layers.iter().map(|l| put(l)).collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let config_digest = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            layer_digests
                .iter()
                .zip(layers)
                .map(|(d, l)| format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{}}}"#,
                    l.len()
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let manifest_digest = put(manifest.as_bytes());
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            layout.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
                manifest.len()
            ),
        )
        .unwrap();
        let (ok, err) = skopeo(
            work,
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &format!("{USER}:{PASSWORD}"),
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://{}/{repo}:{tag}", self.host()),
            ],
        );
        assert!(ok, "skopeo push to the upstream: {err}");
        layer_digests
            .into_iter()
            .zip(layers.iter().cloned())
            .collect()
    }
}

/// `gzip -1` of `data` (the command, to keep the tests' dependencies as they are).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-c", "-1", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A berth with the test credentials configured and extra `serve` flags.
async fn berth(work: &Path, args: &[&str]) -> TestServer {
    berth_with(work, "", args).await
}

/// [`berth`] with `settings` (top-level keys of the configuration file) too.
async fn berth_with(work: &Path, settings: &str, args: &[&str]) -> TestServer {
    let config = work.join("berth.toml");
    std::fs::write(
        &config,
        format!(
            r#"{settings}
[[upstream-credentials]]
arn = "{ARN_GOOD}"
username = "{USER}"
password = "{PASSWORD}"

[[upstream-credentials]]
arn = "{ARN_WEST}"
username = "{USER}"
password = "{PASSWORD}"

[[upstream-credentials]]
arn = "{ARN_WRONG}"
username = "{USER}"
password = "not-the-password"

[[upstream-credentials]]
arn = "{ARN_NO_FILE}"
file = "{}"
"#,
            work.join("no-such-secret.json").display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let mut all = vec!["--config", config.as_str()];
    all.extend_from_slice(args);
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    TestServer::start_in_with(&data, &all).await
}

async fn create_rule(s: &TestServer, prefix: &str, up: &Upstream, arn: &str) {
    s.ecr()
        .create_pull_through_cache_rule()
        .ecr_repository_prefix(prefix)
        .upstream_registry_url(&up.url)
        .credential_arn(arn)
        .send()
        .await
        .expect("create rule");
}

fn host_of(s: &TestServer) -> String {
    s.endpoint.trim_start_matches("http://").to_owned()
}

/// skopeo copy from berth into an OCI layout; (success, stderr).
fn pull(s_host: &str, pw: &str, work: &Path, image: &str, out: &str) -> (bool, String) {
    skopeo(
        work,
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            pw,
            &format!("docker://{s_host}/{image}"),
            &format!("oci:{}", work.join(out).display()),
        ],
    )
}

fn pulled_blob(work: &Path, out: &str, digest: &str) -> Vec<u8> {
    let path = work.join(out).join("blobs/sha256").join(&digest[7..]);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn first_pull_fills_the_cache_and_a_filled_cache_serves_with_the_upstream_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let mut up = Upstream::start();
    let layers = up.push(
        w,
        "library/app",
        "v1",
        &[random_bytes(300_000, 1601), random_bytes(2_000_000, 1602)],
    );
    // Refresh on every tag read: the offline pulls below meet the upstream down each time.
    let s = berth(w, &["--pull-through-refresh-secs", "0"]).await;
    create_rule(&s, "hub", &up, ARN_GOOD).await;
    let pw = creds(&s.basic_auth().await);
    let host = host_of(&s);

    let (ok, err) = pull(&host, &pw, w, "hub/library/app:v1", "first:v1");
    assert!(ok, "first pull through the cache: {err}");
    for (d, l) in &layers {
        let got = pulled_blob(w, "first", d);
        assert!(&got == l, "layer {d} differs: {} bytes pulled", got.len());
    }
    // The repository was created by the pull, with the image and its tag.
    let images = s
        .ecr()
        .describe_images()
        .repository_name("hub/library/app")
        .send()
        .await
        .expect("the cache repository exists");
    let detail = &images.image_details()[0];
    assert_eq!(detail.image_tags(), ["v1"]);
    let digest = detail.image_digest().unwrap().to_owned();

    up.stop();
    let (ok, err) = pull(&host, &pw, w, "hub/library/app:v1", "offline-tag:v1");
    assert!(ok, "pull by tag with the upstream stopped: {err}");
    let (ok, err) = pull(
        &host,
        &pw,
        w,
        &format!("hub/library/app@{digest}"),
        "offline-digest:v1",
    );
    assert!(ok, "pull by digest with the upstream stopped: {err}");
    for (d, l) in &layers {
        assert!(
            &pulled_blob(w, "offline-digest", d) == l,
            "layer {d} differs"
        );
    }
    // What was never cached is not invented: an unknown tag is a clean error, not a 500.
    let oci = s.oci().await;
    let r = oci
        .req(reqwest::Method::GET, "/v2/hub/library/app/manifests/v2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(oci_code(r).await, "UNAVAILABLE");
}

#[tokio::test]
async fn a_pull_through_cache_template_gives_the_cache_repository_its_settings() {
    use aws_sdk_ecr::types::{ImageTagMutability, RctAppliedFor, Tag};
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    up.push(w, "library/tool", "v1", &[random_bytes(50_000, 1611)]);
    let s = berth(w, &[]).await;
    create_rule(&s, "hub", &up, ARN_GOOD).await;
    // A CREATE_ON_PUSH template for the same prefix must not apply to a cache repository.
    for (applied_for, mutability, env) in [
        (
            RctAppliedFor::PullThroughCache,
            ImageTagMutability::Immutable,
            "cache",
        ),
        (
            RctAppliedFor::CreateOnPush,
            ImageTagMutability::Mutable,
            "push",
        ),
    ] {
        let prefix = if env == "cache" { "hub" } else { "ROOT" };
        s.ecr()
            .create_repository_creation_template()
            .prefix(prefix)
            .applied_for(applied_for)
            .image_tag_mutability(mutability)
            .resource_tags(Tag::builder().key("env").value(env).build().unwrap())
            .send()
            .await
            .unwrap();
    }
    let pw = creds(&s.basic_auth().await);
    let (ok, err) = pull(&host_of(&s), &pw, w, "hub/library/tool:v1", "t:v1");
    assert!(ok, "first pull through the cache: {err}");

    let repos = s
        .ecr()
        .describe_repositories()
        .repository_names("hub/library/tool")
        .send()
        .await
        .unwrap();
    let repo = &repos.repositories()[0];
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable),
        "the PULL_THROUGH_CACHE template's mutability"
    );
    let tags = s
        .ecr()
        .list_tags_for_resource()
        .resource_arn(repo.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("env", "cache")]);
}

#[tokio::test]
async fn a_moved_upstream_tag_is_seen_after_the_refresh_interval_and_not_before() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    up.push(w, "team/tool", "stable", &[random_bytes(50_000, 1611)]);
    let s = berth(w, &["--pull-through-refresh-secs", "3"]).await;
    create_rule(&s, "mirror", &up, ARN_GOOD).await;
    let get = |tag: &str| {
        s.ecr()
            .batch_get_image()
            .repository_name("mirror/team/tool")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(tag)
                    .build(),
            )
            .send()
    };
    let first = get("stable").await.expect("first pull");
    let old = first.images()[0]
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();

    up.push(w, "team/tool", "stable", &[random_bytes(60_000, 1612)]);
    let started = Instant::now();
    let again = get("stable").await.expect("pull within the interval");
    let same = again.images()[0]
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            same, old,
            "the tag was re-checked within the refresh interval"
        );
    }
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let later = get("stable").await.expect("pull after the interval");
    let new = later.images()[0]
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();
    assert_ne!(new, old, "the moved tag was not refreshed");
    // Both images are kept; the tag names the new one.
    let listed = s
        .ecr()
        .list_images()
        .repository_name("mirror/team/tool")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_ids().len(), 2);
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_ecr_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    up.push(w, "library/app", "v1", &[random_bytes(10_000, 1621)]);
    let s = berth(w, &[]).await;
    let ecr = s.ecr();

    let e = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .upstream_registry_url(&up.url)
        .credential_arn(ARN_UNKNOWN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SecretNotFoundException");
    let e = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .upstream_registry_url(&up.url)
        .credential_arn(ARN_NO_FILE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnableToAccessSecretException");
    // Refused rules are not stored.
    let rules = ecr
        .describe_pull_through_cache_rules()
        .send()
        .await
        .unwrap();
    assert!(rules.pull_through_cache_rules().is_empty());

    create_rule(&s, "bad", &up, ARN_WRONG).await;
    let v = ecr
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("bad")
        .send()
        .await
        .unwrap();
    assert!(!v.is_valid());
    assert!(v.failure().unwrap_or("").contains("refused"), "{v:?}");

    let e = ecr
        .batch_get_image()
        .repository_name("bad/library/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnableToGetUpstreamImageException");
    // Nothing was created for the refused pull.
    let e = ecr
        .describe_repositories()
        .repository_names("bad/library/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");

    // With the right secret, the same image pulls, and the rule validates.
    ecr.update_pull_through_cache_rule()
        .ecr_repository_prefix("bad")
        .credential_arn(ARN_GOOD)
        .send()
        .await
        .unwrap();
    let v = ecr
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("bad")
        .send()
        .await
        .unwrap();
    assert!(v.is_valid(), "{v:?}");
    let got = ecr
        .batch_get_image()
        .repository_name("bad/library/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images().len(), 1, "{got:?}");
}

#[tokio::test]
async fn concurrent_first_pulls_of_a_blob_fetch_it_from_upstream_once() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    let pushed = up.push(
        w,
        "library/big",
        "v1",
        &[random_bytes(24 * 1024 * 1024, 1631)],
    );
    let (digest, layer) = &pushed[0];
    let s = berth(w, &[]).await;
    create_rule(&s, "hub", &up, ARN_GOOD).await;
    let oci = s.oci().await;
    let r = oci
        .req(reqwest::Method::GET, "/v2/hub/library/big/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let path = format!("/v2/hub/library/big/blobs/{digest}");
    let fetch = || async {
        let r = oci.req(reqwest::Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap()
    };
    let (a, b) = tokio::join!(fetch(), fetch());
    assert_eq!(&sha256_digest(&a), digest);
    assert_eq!(&sha256_digest(&b), digest);
    let upstream_path = format!("/v2/library/big/blobs/{digest}");
    // The push itself HEADs, never GETs; berth's two first pulls made one GET.
    assert_eq!(
        up.gets_of(&upstream_path),
        1,
        "{}",
        std::fs::read_to_string(&up.log).unwrap()
    );
    // A third pull is served from the cache.
    let c = fetch().await;
    assert_eq!(c.len(), layer.len());
    assert_eq!(up.gets_of(&upstream_path), 1);
}

#[tokio::test]
async fn pull_through_cache_rule_operations_and_their_bad_inputs() {
    use aws_sdk_ecr::operation::create_pull_through_cache_rule::CreatePullThroughCacheRuleError as C;
    let tmp = tempfile::tempdir().unwrap();
    let s = berth(tmp.path(), &[]).await;
    let ecr = s.ecr();
    let created = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("quay/")
        .upstream_registry_url("quay.io")
        .upstream_registry(aws_sdk_ecr::types::UpstreamRegistry::Quay)
        .upstream_repository_prefix("prometheus")
        .send()
        .await
        .unwrap();
    // The assumed trailing '/' is not part of the prefix.
    assert_eq!(created.ecr_repository_prefix(), Some("quay"));
    assert_eq!(created.upstream_repository_prefix(), Some("prometheus"));
    assert!(created.created_at().is_some());

    let e = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .upstream_registry_url("quay.io")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.as_service_error(),
            Some(C::PullThroughCacheRuleAlreadyExistsException(_))
        ),
        "{e:?}"
    );
    for (url, want) in [
        (
            "http://mirror.example",
            "UnsupportedUpstreamRegistryException",
        ),
        (
            "https://quay.io/some/path",
            "UnsupportedUpstreamRegistryException",
        ),
        ("ftp://quay.io", "UnsupportedUpstreamRegistryException"),
    ] {
        let e = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix("other")
            .upstream_registry_url(url)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "{url}");
    }
    for prefix in ["x", "Upper", "a".repeat(31).as_str(), "-bad"] {
        let e = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url("quay.io")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{prefix}");
    }
    let e = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("ghcr")
        .upstream_registry_url("ghcr.io")
        .credential_arn("arn:aws:secretsmanager:us-east-1:000000000000:secret:not-the-ptc-prefix")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // ECR's quota: 50 rules per registry.
    for i in 1..50 {
        ecr.create_pull_through_cache_rule()
            .ecr_repository_prefix(format!("p{i:02}"))
            .upstream_registry_url("registry.k8s.io")
            .send()
            .await
            .unwrap();
    }
    let e = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("one-too-many")
        .upstream_registry_url("registry.k8s.io")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");

    // Pages of all rules, in prefix order, and named rules.
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = ecr
            .describe_pull_through_cache_rules()
            .max_results(20)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(
            page.pull_through_cache_rules()
                .iter()
                .map(|r| r.ecr_repository_prefix().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 50);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let named = ecr
        .describe_pull_through_cache_rules()
        .ecr_repository_prefixes("quay")
        .send()
        .await
        .unwrap();
    assert_eq!(
        named.pull_through_cache_rules()[0].upstream_registry_url(),
        Some("quay.io")
    );
    let e = ecr
        .describe_pull_through_cache_rules()
        .ecr_repository_prefixes("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PullThroughCacheRuleNotFoundException");
    let e = ecr
        .describe_pull_through_cache_rules()
        .max_results(1001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = ecr
        .describe_pull_through_cache_rules()
        .next_token("!!!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // Update, Validate and Delete of a rule that does not exist.
    let e = ecr
        .update_pull_through_cache_rule()
        .ecr_repository_prefix("nope")
        .credential_arn(ARN_GOOD)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PullThroughCacheRuleNotFoundException");
    let e = ecr
        .update_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .credential_arn(ARN_UNKNOWN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SecretNotFoundException");
    let e = ecr
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PullThroughCacheRuleNotFoundException");
    let e = ecr
        .delete_pull_through_cache_rule()
        .ecr_repository_prefix("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PullThroughCacheRuleNotFoundException");

    let updated = ecr
        .update_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .credential_arn(ARN_GOOD)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.credential_arn(), Some(ARN_GOOD));
    assert!(updated.updated_at().is_some());
    let deleted = ecr
        .delete_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.upstream_registry_url(), Some("quay.io"));
    assert_eq!(deleted.credential_arn(), Some(ARN_GOOD));
    let e = ecr
        .describe_pull_through_cache_rules()
        .ecr_repository_prefixes("quay")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PullThroughCacheRuleNotFoundException");

    // Rules are durable: a restarted server on the same data has them.
    drop(s);
    let s = berth(tmp.path(), &[]).await;
    let all = s
        .ecr()
        .describe_pull_through_cache_rules()
        .max_results(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(all.pull_through_cache_rules().len(), 49);
}

#[tokio::test]
async fn a_blob_the_upstream_corrupts_is_never_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    let pushed = up.push(
        w,
        "library/app",
        "v1",
        &[random_bytes(3 * 1024 * 1024, 1641)],
    );
    let (digest, layer) = &pushed[0];
    let s = berth(w, &[]).await;
    create_rule(&s, "hub", &up, ARN_GOOD).await;
    let oci = s.oci().await;
    let r = oci
        .req(reqwest::Method::GET, "/v2/hub/library/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The upstream now serves other bytes of the same length under the digest (it does not
    // verify what it reads back): the first pull must not end with them in the cache.
    let file = up.blob_file(digest);
    let mut bad = layer.clone();
    bad[layer.len() / 2] ^= 0xff;
    std::fs::write(&file, &bad).unwrap();
    let path = format!("/v2/hub/library/app/blobs/{digest}");
    let r = oci.req(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the fill starts streaming before it can know"
    );
    let body = r.bytes().await;
    assert!(
        body.is_err() || sha256_digest(&body.unwrap()) != *digest,
        "a corrupt blob reached the client as if whole"
    );
    // Not linked: the repository does not claim the layer.
    let check = s
        .ecr()
        .batch_check_layer_availability()
        .repository_name("hub/library/app")
        .layer_digests(digest)
        .send()
        .await
        .unwrap();
    assert!(
        check.layers().is_empty()
            || check.layers()[0].layer_availability().map(|a| a.as_str()) != Some("AVAILABLE"),
        "{check:?}"
    );

    // Once the upstream is right again, the next pull fetches and caches the real bytes.
    std::fs::write(&file, layer).unwrap();
    let r = oci.req(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha256_digest(&r.bytes().await.unwrap()), *digest);
    let r = oci.req(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(sha256_digest(&r.bytes().await.unwrap()), *digest);
}

/// A registry that answers the distribution token protocol (a stand-in for Docker Hub, GHCR or
/// Quay, which the tests cannot reach): `/v2/...` wants `Authorization: Bearer <token>` and
/// otherwise answers 401 with a `Bearer realm=...,service=...,scope=...` challenge; the realm
/// hands the token out for the right Basic credentials only. It serves one image and counts
/// the token requests.
async fn token_upstream(
    manifest: Vec<u8>,
    blob: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const TOKEN: &str = "opaque-token-1";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tokens = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = tokens.clone();
    let realm = format!("{base}/token");
    let basic = format!(
        "Basic {}",
        base64_simd::STANDARD.encode_to_string(format!("{USER}:{PASSWORD}"))
    );
    let manifest_digest = sha256_digest(&manifest);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let (realm, basic, counted) = (realm.clone(), basic.clone(), counted.clone());
        let (manifest, blob, manifest_digest) = (manifest.clone(), blob.clone(), manifest_digest.clone());
        async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let path = uri.path();
            if path == "/token" {
                if auth != basic {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let query = uri.query().unwrap_or("");
                assert!(query.contains("service=fake"), "{query}");
                assert!(query.contains("scope=repository%3Aorg%2Ftool%3Apull"), "{query}");
                counted.fetch_add(1, Ordering::SeqCst);
                return (
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::json!({"token": TOKEN, "expires_in": 300}).to_string(),
                )
                    .into_response();
            }
            if auth != format!("Bearer {TOKEN}") {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        format!(
                            r#"Bearer realm="{realm}",service="fake",scope="repository:org/tool:pull""#
                        ),
                    )],
                )
                    .into_response();
            }
            match path {
                "/v2/" => StatusCode::OK.into_response(),
                "/v2/org/tool/manifests/v1" => (
                    [
                        (header::CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json".to_owned()),
                        (header::HeaderName::from_static("docker-content-digest"), manifest_digest),
                    ],
                    manifest,
                )
                    .into_response(),
                p if p.starts_with("/v2/org/tool/blobs/") => blob.into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, tokens)
}

#[tokio::test]
async fn upstreams_with_a_bearer_token_challenge_are_pulled_with_a_token_from_their_realm() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = random_bytes(200_000, 1651);
    let layer_digest = sha256_digest(&layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{layer_digest}","size":{}}},"layers":[]}}"#,
        layer.len()
    );
    let (base, tokens) = token_upstream(manifest.clone().into_bytes(), layer.clone()).await;
    let s = berth(tmp.path(), &[]).await;
    s.ecr()
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("ghcr")
        .upstream_registry_url(&base)
        .credential_arn(ARN_GOOD)
        .send()
        .await
        .unwrap();
    let v = s
        .ecr()
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("ghcr")
        .send()
        .await
        .unwrap();
    assert!(v.is_valid(), "{v:?}");
    let got = s
        .ecr()
        .batch_get_image()
        .repository_name("ghcr/org/tool")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    let oci = s.oci().await;
    let r = oci
        .req(
            reqwest::Method::GET,
            &format!("/v2/ghcr/org/tool/blobs/{layer_digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha256_digest(&r.bytes().await.unwrap()), layer_digest);
    // A token per upstream repository (validation's has no repository), reused for its
    // lifetime: the manifest's token served the blob.
    assert_eq!(tokens.load(std::sync::atomic::Ordering::SeqCst), 2);

    // With the wrong password, the realm refuses and so does the pull.
    s.ecr()
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("ghcr2")
        .upstream_registry_url(&base)
        .credential_arn(ARN_WRONG)
        .send()
        .await
        .unwrap();
    let e = s
        .ecr()
        .batch_get_image()
        .repository_name("ghcr2/org/tool")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnableToGetUpstreamImageException");
}

/// A rule made by a client signed for a region other than the default one is that region's:
/// it fills cache repositories there, through BatchGetImage and through `/v2` on the region's
/// registry host, and the default region sees neither the rule nor the repositories, nor
/// pulls through the rule.
#[tokio::test]
async fn a_rule_in_another_region_fills_cache_repositories_in_that_region_only() {
    use crate::harness::{ACCESS_KEY, SECRET_KEY, ecr_client_in};
    use crate::regions::{registry_host, skopeo_via};
    use aws_sdk_ecr::types::ImageIdentifier;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let up = Upstream::start();
    let api_layers = up.push(w, "team/api", "v1", &[random_bytes(80_000, 1671)]);
    let web_layers = up.push(
        w,
        "team/web",
        "v1",
        &[random_bytes(120_000, 1672), random_bytes(40_000, 1673)],
    );
    let s = berth_with(w, "registry-domain = \"localhost\"", &[]).await;
    let west = ecr_client_in(&s.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);
    let east = s.ecr();
    let west_host = registry_host(&s, "000000000000", "eu-west-1");
    west.create_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .upstream_registry_url(&up.url)
        .credential_arn(ARN_WEST)
        .send()
        .await
        .expect("create the rule in eu-west-1");
    let rules = west
        .describe_pull_through_cache_rules()
        .send()
        .await
        .unwrap();
    assert_eq!(rules.pull_through_cache_rules().len(), 1);
    let rules = east
        .describe_pull_through_cache_rules()
        .send()
        .await
        .unwrap();
    assert!(
        rules.pull_through_cache_rules().is_empty(),
        "the default region sees eu-west-1's rule: {rules:?}"
    );

    // The ECR API: BatchGetImage fills hub/team/api from the upstream.
    let v1 = ImageIdentifier::builder().image_tag("v1").build();
    let got = west
        .batch_get_image()
        .repository_name("hub/team/api")
        .image_ids(v1.clone())
        .send()
        .await
        .expect("BatchGetImage through the cache in eu-west-1");
    assert!(got.failures().is_empty(), "{:?}", got.failures());
    let manifest = got.images()[0].image_manifest().unwrap();
    assert!(manifest.contains(&api_layers[0].0), "{manifest}");

    // `/v2` on eu-west-1's registry host: skopeo fills hub/team/web, and a blob of hub/team/api
    // (whose manifest alone BatchGetImage cached) streams from the upstream.
    let token = west.get_authorization_token().send().await.unwrap();
    let token = token.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_owned();
    let work = w.join("skopeo");
    std::fs::create_dir_all(&work).unwrap();
    let (ok, err) = skopeo_via(
        &s,
        &work,
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds(&format!("Basic {token}")),
            &format!("docker://{west_host}/hub/team/web:v1"),
            &format!("oci:{}:v1", w.join("web").display()),
        ],
    );
    assert!(ok, "skopeo pull through the cache in eu-west-1: {err}");
    for (d, l) in &web_layers {
        assert!(&pulled_blob(w, "web", d) == l, "layer {d} differs");
    }
    let via = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&s.endpoint).unwrap())
        .build()
        .unwrap();
    let (d, l) = &api_layers[0];
    let r = via
        .get(format!("http://{west_host}/v2/hub/team/api/blobs/{d}"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(&r.bytes().await.unwrap()[..] == l, "layer {d} differs");

    // The cache repositories are eu-west-1's, with its ARNs, and nowhere else.
    let repos = west.describe_repositories().send().await.unwrap();
    let mut arns: Vec<&str> = repos
        .repositories()
        .iter()
        .filter_map(|r| r.repository_arn())
        .collect();
    arns.sort_unstable();
    assert_eq!(
        arns,
        [
            "arn:aws:ecr:eu-west-1:000000000000:repository/hub/team/api",
            "arn:aws:ecr:eu-west-1:000000000000:repository/hub/team/web",
        ]
    );
    let other = ecr_client_in(&s.endpoint, "ap-south-1", ACCESS_KEY, SECRET_KEY);
    for client in [&east, &other] {
        let repos = client.describe_repositories().send().await.unwrap();
        assert!(repos.repositories().is_empty(), "{repos:?}");
        // No rule there: a pull of the same name is a missing repository, not a fill.
        let e = client
            .batch_get_image()
            .repository_name("hub/team/api")
            .image_ids(v1.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "RepositoryNotFoundException");
    }
    // The bare host is the default region: no rule, no repository, nothing fetched.
    let oci = s.oci().await;
    let r = oci
        .req(reqwest::Method::GET, "/v2/hub/team/web/manifests/v1")
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");
    assert!(
        east.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
}
