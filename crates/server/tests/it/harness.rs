//! Starts `berth serve` as a child process on 127.0.0.1:0 and builds clients for it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecr::primitives::Blob;
use sha2::{Digest as _, Sha256};

pub const MIB: usize = 1024 * 1024;
/// The key the default test server knows and [`ecr_client`] signs with.
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "secret";

/// Whether the servers keep their blobs in S3 (`BERTH_TEST_BLOBS=s3`, with
/// `BERTH_TEST_S3_BUCKET` and the AWS environment naming the S3 server) instead of files.
pub fn blobs_on_s3() -> bool {
    std::env::var("BERTH_TEST_BLOBS").as_deref() == Ok("s3")
}

/// Prints why a test that is about local blob files does not run with blobs elsewhere, and
/// says whether to skip it.
pub fn skip_unless_local_blobs(why: &str) -> bool {
    if blobs_on_s3() {
        eprintln!("skipped with BERTH_TEST_BLOBS=s3: {why}");
        return true;
    }
    false
}

/// The `serve`/`gc`/`fsck` flags that choose the storage backends for data directory `dir`:
/// with `BERTH_TEST_BLOBS=s3`, blobs under a prefix of the test bucket named after `dir`, so
/// that each server has its own and a restart on the same directory finds its blobs again.
/// (`BERTH_TEST_METADATA` adds its flags here the same way.) A test that passes its own
/// `--blobs` in `given` keeps it.
pub fn backend_args(dir: &Path, given: &[impl AsRef<str>]) -> Vec<String> {
    let mut args = Vec::new();
    let chosen = |flag: &str| given.iter().any(|g| g.as_ref() == flag);
    if blobs_on_s3() && !chosen("--blobs") {
        let bucket = std::env::var("BERTH_TEST_S3_BUCKET")
            .expect("BERTH_TEST_BLOBS=s3 needs BERTH_TEST_S3_BUCKET and the AWS environment");
        // FNV-1a of the directory: stable across restarts, distinct between temp dirs.
        let hash = dir
            .to_string_lossy()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
        args.push("--blobs".to_owned());
        args.push(format!("s3://{bucket}/it-{hash:016x}"));
    }
    args
}

pub struct TestServer {
    child: Child,
    pub endpoint: String,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on a fresh, empty data directory that verifies signatures against the
    /// clients' key ([`ACCESS_KEY`], [`SECRET_KEY`]).
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with no access keys: it accepts any well-formed signature.
    pub async fn start_without_keys() -> Self {
        Self::start_without_keys_with(&[]).await
    }

    /// A server with no access keys and extra `serve` flags.
    pub async fn start_without_keys_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::spawn(
            tmp.path(),
            args.iter().map(|a| (*a).to_owned()).collect(),
            false,
        )
        .await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on a fresh data directory with extra `serve` flags.
    pub async fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::spawn(
            tmp.path(),
            args.iter().map(|a| (*a).to_owned()).collect(),
            true,
        )
        .await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on `data_dir`, which the caller keeps (to restart on it).
    pub async fn start_in(data_dir: &Path) -> Self {
        Self::spawn(data_dir, vec![], true).await
    }

    /// A server on `data_dir` with extra `serve` flags (e.g. an armed crash point).
    pub async fn start_in_with(data_dir: &Path, args: &[&str]) -> Self {
        Self::spawn(
            data_dir,
            args.iter().map(|a| (*a).to_owned()).collect(),
            true,
        )
        .await
    }

    /// Waits (at most 10 s) for the server process to end by itself; true if it did.
    pub async fn exited(&mut self) -> bool {
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// A server on a fresh data directory with extra `serve` flags and environment variables
    /// (e.g. another S3 endpoint).
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let mut s = Self::spawn_env(tmp.path(), args, true, env).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on `data_dir` (the caller keeps it) with extra `serve` flags and environment
    /// variables.
    pub async fn start_in_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::spawn_env(data_dir, args, true, env).await
    }

    async fn spawn(data_dir: &Path, extra: Vec<String>, with_keys: bool) -> Self {
        Self::spawn_env(data_dir, extra, with_keys, vec![]).await
    }

    async fn spawn_env(
        data_dir: &Path,
        extra: Vec<String>,
        with_keys: bool,
        env: Vec<(String, String)>,
    ) -> Self {
        let data_dir = data_dir.to_path_buf();
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&dir)
                .args(backend_args(&dir, &extra))
                .args(&extra)
                .envs(env);
            if let Some(url) = metadata_for(&dir) {
                cmd.env("BERTH_METADATA", url);
            }
            // Tests push faster than ECR's 10 PutImage/s: only the quota tests (which pass
            // --rate-limit, winning over the environment) have rate limits.
            cmd.env("BERTH_RATE_LIMITS", "*=0");
            if with_keys {
                cmd.env("BERTH_ACCESS_KEY_ID", ACCESS_KEY)
                    .env("BERTH_SECRET_ACCESS_KEY", SECRET_KEY);
            }
            let mut child = cmd
                .env("BERTH_LOG", "error")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start berth");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("read the ready line");
            let endpoint = line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                .to_owned();
            TestServer {
                child,
                endpoint,
                data_dir: dir,
                _tmp: None,
            }
        })
        .await
        .expect("spawn")
        .with_data_dir(data_dir)
    }

    fn with_data_dir(mut self, d: PathBuf) -> Self {
        self.data_dir = d;
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `kill -9`: no chance to flush or clean up.
    /// Where the filesystem store keeps the blob `digest` (`sha256:<hex>`).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.data_dir()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
    }

    /// The server's process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        ecr_client(&self.endpoint)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

pub fn ecr_client(endpoint: &str) -> aws_sdk_ecr::Client {
    ecr_client_as(endpoint, ACCESS_KEY, SECRET_KEY)
}

/// An `aws-sdk-ecr` client signing with the given key.
pub fn ecr_client_as(endpoint: &str, access_key: &str, secret: &str) -> aws_sdk_ecr::Client {
    ecr_client_in(endpoint, "us-east-1", access_key, secret)
}

/// An `aws-sdk-ecr` client signing with the given key for `region`.
pub fn ecr_client_in(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret: &str,
) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

/// An `aws-sdk-ecr` client (the clients' key) that sends each request once: for asserting what
/// one request answers while a service is down, where the SDK's retries would only add time.
pub fn ecr_client_without_retries(endpoint: &str) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .retry_config(aws_sdk_ecr::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

pub async fn create_repo(ecr: &aws_sdk_ecr::Client, name: &str) {
    ecr.create_repository()
        .repository_name(name)
        .send()
        .await
        .expect("create repository");
}

/// InitiateLayerUpload in `repo`; returns the upload ID.
pub async fn initiate_upload(ecr: &aws_sdk_ecr::Client, repo: &str) -> String {
    ecr.initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .expect("initiate")
        .upload_id()
        .expect("upload id")
        .to_owned()
}

/// Pushes `data` as one layer in parts of the given sizes; returns the digest ECR computed.
pub async fn push_layer(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    data: &[u8],
    part_sizes: &[usize],
) -> String {
    let id = initiate_upload(ecr, repo).await;
    let mut off = 0usize;
    for &size in part_sizes {
        let end = (off + size).min(data.len());
        let resp = ecr
            .upload_layer_part()
            .repository_name(repo)
            .upload_id(&id)
            .part_first_byte(off as i64)
            .part_last_byte(end as i64 - 1)
            .layer_part_blob(Blob::new(&data[off..end]))
            .send()
            .await
            .expect("upload part");
        assert_eq!(resp.last_byte_received(), Some(end as i64 - 1));
        off = end;
    }
    assert_eq!(off, data.len(), "part sizes must cover the layer");
    let done = ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(sha256_digest(data))
        .send()
        .await
        .expect("complete");
    done.layer_digest().expect("digest").to_owned()
}

/// An OCI image manifest for a config and layers given as (digest, size).
/// PutImage of `manifest` under `tag`, which must succeed; answers the image's digest.
pub async fn put_tagged(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    manifest: &str,
    tag: &str,
) -> String {
    let out = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest)
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    out.image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("PutImage answers the image's digest")
        .to_owned()
}

pub fn oci_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> String {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}))
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    })
    .to_string()
}

/// Pushes a small single-layer image and tags it; returns (manifest, digest, layer digest).
pub async fn push_small_image(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tag: &str,
    seed: u64,
) -> (String, String, String) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(1000 + seed as usize, seed);
    let cd = push_layer_or_existing(ecr, repo, &config).await;
    let ld = push_layer_or_existing(ecr, repo, &layer).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let out = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(&manifest)
        .image_tag(tag)
        .send()
        .await
        .expect("put image");
    let digest = out
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("digest")
        .to_owned();
    (manifest, digest, ld)
}

async fn push_layer_or_existing(ecr: &aws_sdk_ecr::Client, repo: &str, data: &[u8]) -> String {
    let d = sha256_digest(data);
    let check = ecr
        .batch_check_layer_availability()
        .repository_name(repo)
        .layer_digests(&d)
        .send()
        .await
        .expect("check");
    if check.layers()[0].layer_availability().map(|a| a.as_str()) == Some("AVAILABLE") {
        return d;
    }
    push_layer(ecr, repo, data, &[data.len()]).await
}

/// The modeled error code of an SDK error.
pub fn code<E: aws_sdk_ecr::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

impl TestServer {
    /// `Authorization` header value for `/v2`: Basic with the GetAuthorizationToken token,
    /// which is already base64("AWS:<password>").
    pub async fn basic_auth(&self) -> String {
        let out = self
            .ecr()
            .get_authorization_token()
            .send()
            .await
            .expect("token");
        format!(
            "Basic {}",
            out.authorization_data()[0]
                .authorization_token()
                .expect("token")
        )
    }

    /// A `/v2` client that sends the registry password on every request.
    pub async fn oci(&self) -> Oci {
        Oci {
            http: reqwest::Client::new(),
            base: self.endpoint.clone(),
            auth: self.basic_auth().await,
        }
    }
}

/// Raw `/v2` requests (the scripted tests drive skopeo; these check each endpoint exactly).
pub struct Oci {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

impl Oci {
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        self.http
            .request(method, url)
            .header("authorization", &self.auth)
    }

    /// POST + PUT ?digest= in one go (monolithic); returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256_digest(data);
        let r = self
            .req(
                reqwest::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "monolithic push of {d}");
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> reqwest::Response {
        self.req(
            reqwest::Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
        )
        .header("content-type", media_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
    }
}

/// The `/v2/...` path of a `Location` header, whether the server sent it absolute or not.
pub fn v2_path(location: &str) -> String {
    match location.split_once("/v2/") {
        Some((_, rest)) => format!("/v2/{rest}"),
        None => panic!("not a /v2 location: {location}"),
    }
}

/// Where a `/v2` upload stands, from its status (`Range: 0-<last byte>`): the next offset.
pub async fn upload_offset(oci: &Oci, path: &str) -> usize {
    let r = oci.req(reqwest::Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), 204, "upload status of {path}");
    let range = r.headers()["range"].to_str().unwrap().to_owned();
    let last: usize = range
        .strip_prefix("0-")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("range {range:?}"));
    last + 1
}

/// The `errors[0].code` of an OCI error body.
pub async fn oci_code(r: reqwest::Response) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or_default();
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// Runs `berth <args> --data-dir <dir>` to completion (e.g. `gc`, `fsck`): (exit code, stdout,
/// followed by stderr when the command failed, so that an assertion's message says why).
pub fn berth_cli(args: &[&str], dir: &Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(backend_args(dir, args));
    if let Some(url) = metadata_for(dir) {
        cmd.env("BERTH_METADATA", url);
    }
    let out = cmd.env("BERTH_LOG", "error").output().expect("run berth");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code().unwrap_or(-1), text)
}

/// Whether this run keeps the metadata in PostgreSQL (`BERTH_TEST_METADATA=postgres`, with
/// the server in `BERTH_TEST_POSTGRES_URL`) rather than SQLite in the data directory.
pub fn on_postgres() -> bool {
    std::env::var("BERTH_TEST_METADATA").is_ok_and(|m| m == "postgres")
}

/// For a test that cannot run on PostgreSQL (it works on SQLite's file or transaction):
/// true, with the reason printed, when this run is on PostgreSQL.
pub fn skip_on_postgres(why: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL: {why}");
    }
    on_postgres()
}

/// The `--metadata` of a server on `data_dir` in a PostgreSQL run: a database of its own,
/// named after the data directory, so that a restart on the same directory finds its data
/// and tests running side by side never meet. Created on first use.
pub fn metadata_for(data_dir: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    if !on_postgres() {
        return None;
    }
    let base = std::env::var("BERTH_TEST_POSTGRES_URL")
        .expect("BERTH_TEST_METADATA=postgres needs BERTH_TEST_POSTGRES_URL");
    // SipHash with fixed keys: the same directory gives the same name in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    let db = format!("berth_it_{:016x}", h.finish());
    let (server, _) = base
        .rsplit_once('/')
        .expect("BERTH_TEST_POSTGRES_URL is postgres://USER@HOST:PORT/DB");
    let url = format!("{server}/{db}");
    let create = url.clone();
    // On a thread of its own: callers may be inside a runtime or not.
    std::thread::spawn(move || {
        use sqlx::migrate::MigrateDatabase;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if !sqlx::Postgres::database_exists(&create).await.unwrap() {
                // Two starts on one directory may race; the loser finds it made.
                if let Err(e) = sqlx::Postgres::create_database(&create).await {
                    assert!(
                        sqlx::Postgres::database_exists(&create).await.unwrap(),
                        "create {create}: {e}"
                    );
                }
            }
        });
    })
    .join()
    .expect("create the test database");
    Some(url)
}

/// skopeo, bounded in time, with a private policy and temp dir; (success, stderr).
pub fn skopeo(work: &std::path::Path, args: &[&str]) -> (bool, String) {
    let policy = work.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg("skopeo")
        .arg("--policy")
        .arg(&policy)
        .arg("--tmpdir")
        .arg(work)
        .args(args)
        .env("REGISTRY_AUTH_FILE", work.join("auth.json"))
        .output()
        .expect("run skopeo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `AWS:<password>` pair skopeo's `--creds` takes, from a Basic header.
pub fn creds(basic: &str) -> String {
    let encoded = basic.strip_prefix("Basic ").unwrap();
    String::from_utf8(base64_simd::STANDARD.decode_to_vec(encoded).unwrap()).unwrap()
}
