//! Outages of the scale-out services in the middle of a push: PostgreSQL stopped and started
//! again, and the S3 server cut off in the middle of a part. During the outage every answer is
//! a clean error (ECR `ServerException`, `/v2` 503 `UNAVAILABLE`); afterwards nothing that was
//! not acknowledged is reported as stored, every acknowledged byte is still there, and the
//! retried push succeeds and pulls back byte for byte.
//!
//! Each test has a service of its own, so that the outage never reaches tests running beside
//! it: a private PostgreSQL cluster (`initdb` + `pg_ctl` on a free loopback port), and for S3 a
//! TCP relay of its own in front of the shared test server. They run in the second pass of
//! `scripts/test` (PostgreSQL + S3).
//!
//! Why a relay rather than killing the S3 server itself: moto, the suite's S3 server, keeps its
//! objects in memory only (moto 5's server has no persistence for S3), so killing it would lose
//! the acknowledged bytes the test is there to check; a file-backed server (s3s-fs) is a
//! minutes-long `cargo install` here. To berth, the relay going away is what a killed S3
//! server is: connections cut in the middle of a request, then refused on the same port until
//! it is back, with the bucket's contents as they were when it went away.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::ImageIdentifier;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// True, with the reason printed, unless this run is the PostgreSQL + S3 pass. Under
/// `CI=true` a run with one of them set must have both.
fn skip_unless_scaled_out() -> bool {
    if on_postgres() && blobs_on_s3() {
        return false;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true") || !(on_postgres() || blobs_on_s3()),
        "CI's second pass must set both BERTH_TEST_METADATA=postgres and BERTH_TEST_BLOBS=s3"
    );
    eprintln!(
        "skipped: the outage tests run with BERTH_TEST_METADATA=postgres BERTH_TEST_BLOBS=s3"
    );
    true
}

/// A private PostgreSQL cluster, in the PostgreSQL + S3 pass; `None` (with the reason
/// printed) elsewhere, or where PostgreSQL's server programs are missing, which CI may not be.
pub(crate) fn private_postgres_for_this_pass() -> Option<PrivatePostgres> {
    if skip_unless_scaled_out() {
        return None;
    }
    let pg = PrivatePostgres::start();
    if pg.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have PostgreSQL's server programs (initdb, pg_ctl)"
        );
        eprintln!("skipped: no initdb/pg_ctl to run a private PostgreSQL cluster");
    }
    pg
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL cluster of the test's own in a temp dir, on a free loopback port. Stopped by
/// its postmaster's PID (fast shutdown) when dropped.
pub(crate) struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` when PostgreSQL's server programs are not installed.
    fn start() -> Option<Self> {
        let bin = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .chain(
                std::fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|v| v.path().join("bin")),
            )
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())?;
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: as root, the cluster belongs to the postgres user.
        if is_root() {
            assert!(
                Command::new("chown")
                    .arg("postgres")
                    .arg(dir.path())
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
        };
        pg.run(&format!(
            "initdb -D {} -A trust -U berth --no-sync >{}/initdb.log 2>&1",
            pg.data().display(),
            pg.dir.path().display()
        ));
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `--metadata` of a berth on this cluster.
    pub(crate) fn url(&self) -> String {
        format!("postgres://berth@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a shell command line of PostgreSQL's programs, as the postgres user when root.
    fn run(&self, line: &str) {
        let line = format!("{}/{line}", self.bin.display());
        let status = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &line])
                .status()
        } else {
            Command::new("sh").args(["-c", &line]).status()
        }
        .unwrap();
        assert!(status.success(), "{line}");
    }

    /// Starts (again) on the same port, and waits until it accepts connections.
    pub(crate) fn start_again(&self) {
        self.run(&format!(
            "pg_ctl -D {data} -l {dir}/server.log -w -o \"-h 127.0.0.1 -p {port} -k {dir}\" start >/dev/null",
            data = self.data().display(),
            dir = self.dir.path().display(),
            port = self.port
        ));
    }

    /// Stops the server (fast shutdown: open sessions are cut) and waits until it is gone.
    pub(crate) fn stop(&self) {
        self.run(&format!(
            "pg_ctl -D {} -m fast -w stop >/dev/null",
            self.data().display()
        ));
    }

    fn pid(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next().map(str::to_owned)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            for _ in 0..100 {
                let alive = Command::new("kill")
                    .args(["-0", &pid])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !alive {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

async fn part(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    id: &str,
    data: &[u8],
    from: usize,
    to: usize,
) -> Result<(), aws_sdk_ecr::error::SdkError<UploadLayerPartError>> {
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(id)
        .part_first_byte(from as i64)
        .part_last_byte(to as i64 - 1)
        .layer_part_blob(Blob::new(&data[from..to]))
        .send()
        .await
        .map(|r| assert_eq!(r.last_byte_received(), Some(to as i64 - 1)))
}

/// The upload's last acknowledged byte, as a part sent past it learns from the refusal:
/// `InvalidLayerPartException` with `lastValidByteReceived`.
async fn last_acknowledged(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    id: &str,
    past: usize,
) -> Option<i64> {
    let probe = vec![1u8; 16];
    let err = ecr
        .upload_layer_part()
        .repository_name(repo)
        .upload_id(id)
        .part_first_byte(past as i64)
        .part_last_byte((past + probe.len()) as i64 - 1)
        .layer_part_blob(Blob::new(probe))
        .send()
        .await
        .expect_err("a part past the acknowledged end is refused")
        .into_service_error();
    let UploadLayerPartError::InvalidLayerPartException(e) = err else {
        panic!("{err:?}")
    };
    e.last_valid_byte_received()
}

/// Pulls `tag` of `repo` through both APIs and checks manifest and layer byte for byte.
async fn pulls_back(server: &TestServer, repo: &str, tag: &str, manifest: &str, layer: &[u8]) {
    let got = server
        .ecr()
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest));
    let r = server
        .oci()
        .await
        .req(
            Method::GET,
            &format!("/v2/{repo}/blobs/{}", sha256_digest(layer)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == layer, "{repo}:{tag} layer");
}

/// After an outage, the retried push goes to its end: the layer completes to its digest, the
/// image and a `/v2` blob go in, the image pulls back byte for byte, and the image pushed
/// before the outage (tag `base`) is unchanged.
#[allow(clippy::too_many_arguments)]
async fn finish_push(
    server: &TestServer,
    oci: &Oci,
    repo: &str,
    upload_id: &str,
    layer: &[u8],
    manifest: &str,
    blob: &[u8],
    base: &str,
) {
    let ecr = server.ecr();
    let done = ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(upload_id)
        .layer_digests(sha256_digest(layer))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(layer).as_str()));
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(manifest)
        .image_tag("v1")
        .send()
        .await
        .unwrap();
    oci.push_blob(repo, blob).await;
    pulls_back(server, repo, "v1", manifest, layer).await;
    let got = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag("base").build())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(base));
}

/// Calls `f` until it succeeds, at most `tries` times 250 ms apart: a client retrying after
/// an outage.
async fn until_ok<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    tries: usize,
    mut f: impl FnMut() -> F,
) -> T {
    let mut last = None;
    for _ in 0..tries {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("still failing after {tries} tries: {last:?}")
}

#[tokio::test]
async fn postgres_stopped_in_the_middle_of_a_push() {
    let Some(pg) = private_postgres_for_this_pass() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let meta = pg.url();
    let args = ["--metadata", meta.as_str(), "--gc-interval-secs", "0"];
    let server = TestServer::start_in_with(dir.path(), &args).await;
    let ecr = server.ecr();
    let once = ecr_client_without_retries(&server.endpoint);
    let oci = server.oci().await;
    let repo = "pg/app";
    create_repo(&ecr, repo).await;
    let (base, _, _) = push_small_image(&ecr, repo, "base", 1).await;

    // A push under way: the config stored, the first part of the layer acknowledged.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = push_layer(&ecr, repo, &config, &[config.len()]).await;
    let layer = random_bytes(12 * MIB + 9, 61);
    let id = initiate_upload(&ecr, repo).await;
    part(&ecr, repo, &id, &layer, 0, 5 * MIB).await.unwrap();
    let manifest = oci_manifest(
        (&config_digest, config.len()),
        &[(&sha256_digest(&layer), layer.len())],
    );

    // And a `/v2` upload with one chunk acknowledged and the next one half sent when the
    // database goes away.
    let blob = random_bytes(3 * MIB + 1, 63);
    let r = oci
        .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let path = v2_path(r.headers()["location"].to_str().unwrap());
    let r = oci
        .req(Method::PATCH, &path)
        .header("content-range", format!("0-{}", MIB - 1))
        .header("content-type", "application/octet-stream")
        .body(blob[..MIB].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let path = v2_path(r.headers()["location"].to_str().unwrap());
    let host = server.endpoint.trim_start_matches("http://").to_owned();
    let mut held = tokio::net::TcpStream::connect(&host).await.unwrap();
    held.write_all(
        format!(
            "PATCH {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\n\
             content-type: application/octet-stream\r\ncontent-range: {MIB}-{}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            oci.auth,
            blob.len() - 1,
            blob.len() - MIB
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    held.write_all(&blob[MIB..2 * MIB]).await.unwrap();
    held.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    pg.stop();
    // During the outage: the rest of the held chunk, the next part, a PutImage, a pull and a
    // `/v2` blob push, at once, each sent once. Each fails cleanly.
    let small = random_bytes(3000, 62);
    let t0 = Instant::now();
    let finish_held = async {
        // The server may answer before it has read everything: a failed write is no failure.
        let _ = held.write_all(&blob[2 * MIB..]).await;
        let mut answer = Vec::new();
        let _ = held.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let (held_answer, next, put, get, v2) = tokio::join!(
        finish_held,
        part(&once, repo, &id, &layer, 5 * MIB, 10 * MIB),
        once.put_image()
            .repository_name(repo)
            .image_manifest(&base)
            .image_tag("during")
            .send(),
        once.batch_get_image()
            .repository_name(repo)
            .image_ids(ImageIdentifier::builder().image_tag("base").build())
            .send(),
        oci.req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256_digest(&small)),
        )
        .body(small.clone())
        .send(),
    );
    let outage_answer = t0.elapsed();
    assert!(
        held_answer.starts_with("HTTP/1.1 503"),
        "the chunk in flight is refused: {held_answer:?}"
    );
    assert_eq!(code(&next.unwrap_err()), "ServerException");
    assert_eq!(code(&put.unwrap_err()), "ServerException");
    assert_eq!(code(&get.unwrap_err()), "ServerException");
    let v2 = v2.unwrap();
    assert_eq!(v2.status(), 503);
    assert_eq!(oci_code(v2).await, "UNAVAILABLE");

    pg.start_again();
    let t0 = Instant::now();
    until_ok(40, || ecr.describe_repositories().send()).await;
    let recovered = t0.elapsed();

    // Nothing from the outage is reported as stored; everything acknowledged before it is.
    assert_eq!(
        last_acknowledged(&ecr, repo, &id, 10 * MIB).await,
        Some(5 * MIB as i64 - 1),
        "the first part still counts, the refused one does not"
    );
    let head = oci
        .req(
            Method::HEAD,
            &format!("/v2/{repo}/blobs/{}", sha256_digest(&small)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "the refused /v2 push stored nothing");
    let gone = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag("during").build())
        .send()
        .await
        .unwrap();
    assert!(
        gone.images().is_empty(),
        "the refused PutImage tagged nothing"
    );

    assert_eq!(
        upload_offset(&oci, &path).await,
        MIB,
        "the /v2 upload stands after its acknowledged chunk, not the refused one"
    );

    // The retried pushes go through and pull back byte for byte. The chunk cut off by the
    // outage may still hold its claim on the upload (15 s, it could not be released with the
    // database gone): the client retries a refused chunk (416) once a second, at most 40 times.
    let mut resent = false;
    for _ in 0..40 {
        let r = oci
            .req(Method::PATCH, &path)
            .header("content-range", format!("{MIB}-{}", blob.len() - 1))
            .header("content-type", "application/octet-stream")
            .body(blob[MIB..].to_vec())
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => {
                let done = v2_path(r.headers()["location"].to_str().unwrap());
                let sep = if done.contains('?') { '&' } else { '?' };
                let r = oci
                    .req(
                        Method::PUT,
                        &format!("{done}{sep}digest={}", sha256_digest(&blob)),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                resent = true;
                break;
            }
            416 => tokio::time::sleep(Duration::from_secs(1)).await,
            s => panic!("resent chunk: {s} {}", r.text().await.unwrap()),
        }
    }
    assert!(resent, "the chunk goes through after the outage");
    let r = oci
        .req(
            Method::GET,
            &format!("/v2/{repo}/blobs/{}", sha256_digest(&blob)),
        )
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.unwrap() == blob);
    part(&ecr, repo, &id, &layer, 5 * MIB, 10 * MIB)
        .await
        .unwrap();
    part(&ecr, repo, &id, &layer, 10 * MIB, layer.len())
        .await
        .unwrap();
    finish_push(&server, &oci, repo, &id, &layer, &manifest, &small, &base).await;

    let (rc, out) = berth_cli(&["fsck", "--metadata", &meta], dir.path());
    assert_eq!(rc, 0, "{out}");
    eprintln!(
        "PostgreSQL outage: the failing requests answered in {outage_answer:?}; \
         berth served again {recovered:?} after the restart"
    );
}

/// A TCP relay on a loopback port of its own in front of the S3 test server: what berth
/// calls its S3 server in the S3 outage test. [`S3Relay::cut_after`] makes it go away after
/// that many more bytes towards S3, in the middle of whatever request carries them.
struct S3Relay {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<RelayState>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

struct RelayState {
    forwarded: AtomicU64,
    cut_at: AtomicU64,
    down: tokio::sync::watch::Sender<bool>,
}

impl S3Relay {
    async fn start() -> Self {
        let upstream = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .expect("the S3 test server's endpoint (scripts/s3-server)");
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("a loopback http:// endpoint");
        let mut relay = S3Relay {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            upstream,
            state: Arc::new(RelayState {
                forwarded: AtomicU64::new(0),
                cut_at: AtomicU64::new(u64::MAX),
                down: tokio::sync::watch::channel(false).0,
            }),
            accept: None,
        };
        relay.up().await;
        relay
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (Re)opens the relay on its port.
    async fn up(&mut self) {
        self.state.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.state.down.send_replace(false);
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let (state, upstream) = (self.state.clone(), self.upstream);
        self.accept = Some(tokio::spawn(async move {
            let mut down = state.down.subscribe();
            // Dropping the set when the relay goes down aborts every connection: both sides
            // are closed in the middle of whatever they carry.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = down.wait_for(|d| *d) => break,
                    Ok((client, _)) = listener.accept() => {
                        connections.spawn(relay(client, upstream, state.clone()));
                    }
                }
            }
        }));
    }

    /// Goes down once `bytes` more have been relayed towards S3.
    fn cut_after(&self, bytes: u64) {
        let at = self.state.forwarded.load(Ordering::SeqCst) + bytes;
        self.state.cut_at.store(at, Ordering::SeqCst);
    }

    /// Waits (at most 60 s) until the relay has gone down; true if it did.
    async fn went_down(&mut self) -> bool {
        let Some(accept) = self.accept.as_mut() else {
            return true;
        };
        let done = tokio::time::timeout(Duration::from_secs(60), accept)
            .await
            .is_ok();
        if done {
            self.accept = None;
        }
        done
    }
}

impl Drop for S3Relay {
    fn drop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
    }
}

async fn relay(mut client: tokio::net::TcpStream, upstream: SocketAddr, state: Arc<RelayState>) {
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let towards_s3 = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return server_write.shutdown().await;
            }
            let total = state.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= state.cut_at.load(Ordering::SeqCst) {
                // The server "dies" here: these bytes never reach it.
                state.down.send_replace(true);
                return Ok(());
            }
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let back = tokio::io::copy(&mut server_read, &mut client_write);
    let _ = tokio::join!(towards_s3, back);
}

#[tokio::test]
async fn s3_cut_off_in_the_middle_of_a_part() {
    if skip_unless_scaled_out() {
        return;
    }
    let bucket = std::env::var("BERTH_TEST_S3_BUCKET").expect("BERTH_TEST_BLOBS=s3 has a bucket");
    let prefix = hex::encode(random_bytes(8, std::process::id() as u64 ^ nanos()));
    let blobs = format!("s3://{bucket}/it-outage-{prefix}");
    let mut s3 = S3Relay::start().await;
    let endpoint = s3.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in_with_env(
        dir.path(),
        &["--blobs", &blobs, "--gc-interval-secs", "0"],
        &[
            ("AWS_ENDPOINT_URL_S3", &endpoint),
            ("AWS_ENDPOINT_URL", &endpoint),
        ],
    )
    .await;
    let ecr = server.ecr();
    let once = ecr_client_without_retries(&server.endpoint);
    let oci = server.oci().await;
    let repo = "s3/outage";
    create_repo(&ecr, repo).await;
    let (base, _, _) = push_small_image(&ecr, repo, "base", 2).await;
    let config = br#"{"architecture":"arm64","os":"linux"}"#.to_vec();
    let config_digest = push_layer(&ecr, repo, &config, &[config.len()]).await;

    // A first part of 6 MiB acknowledged (in S3 as a multipart part), then S3 goes away
    // 3 MiB into the next one (8 MiB, one S3 part in the making).
    let layer = random_bytes(17 * MIB + 5, 71);
    let id = initiate_upload(&ecr, repo).await;
    part(&ecr, repo, &id, &layer, 0, 6 * MIB).await.unwrap();
    s3.cut_after(3 * MIB as u64);
    let t0 = Instant::now();
    let cut = part(&once, repo, &id, &layer, 6 * MIB, 14 * MIB).await;
    let failed_after = t0.elapsed();
    assert!(s3.went_down().await, "the part reached S3 and was cut");
    assert_eq!(code(&cut.unwrap_err()), "ServerException");
    // Still down: a `/v2` push answers 503 UNAVAILABLE.
    let small = random_bytes(2000, 72);
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256_digest(&small)),
        )
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(oci_code(r).await, "UNAVAILABLE");

    // S3 back on the same port, its bucket as it was.
    s3.up().await;
    assert_eq!(
        last_acknowledged(&ecr, repo, &id, 14 * MIB).await,
        Some(6 * MIB as i64 - 1),
        "the cut part is not reported; the acknowledged one is"
    );
    // The client retries the part (bounded), and the push goes on to the end.
    until_ok(20, || part(&ecr, repo, &id, &layer, 6 * MIB, 14 * MIB)).await;
    part(&ecr, repo, &id, &layer, 14 * MIB, layer.len())
        .await
        .unwrap();
    let manifest = oci_manifest(
        (&config_digest, config.len()),
        &[(&sha256_digest(&layer), layer.len())],
    );
    finish_push(&server, &oci, repo, &id, &layer, &manifest, &small, &base).await;

    // fsck reads every blob back (straight from the S3 server: same bucket and prefix).
    let (rc, out) = berth_cli(&["fsck", "--blobs", &blobs], dir.path());
    assert_eq!(rc, 0, "{out}");
    eprintln!("S3 outage: the cut part failed after {failed_after:?}");
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Production databases want TLS: with `sslmode=verify-full` berth talks to PostgreSQL over
/// TLS and checks its certificate against `sslrootcert`; a server it cannot verify is refused
/// at start instead of being used in the clear.
#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    let Some(pg) = private_postgres_for_this_pass() else {
        return;
    };
    // A test CA and a server certificate for localhost, as tests/e2e/tls_flow.sh makes them.
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path().display().to_string();
    let d = pg.data().display().to_string();
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -e; cd {c}
             openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=berth test CA' -keyout ca.key -out ca.pem
             openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr
             printf 'subjectAltName=DNS:localhost\\n' > ext
             openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.crt
             cp server.crt server.key {d}/
             chown postgres {d}/server.crt {d}/server.key 2>/dev/null || true
             chmod 600 {d}/server.key
             printf 'ssl = on\\n' >> {d}/postgresql.conf"
        ))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    pg.stop();
    pg.start_again();

    let base = pg.url().replace("127.0.0.1", "localhost");
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={c}/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in_with(
        dir.path(),
        &["--metadata", verified.as_str(), "--gc-interval-secs", "0"],
    )
    .await;
    create_repo(&server.ecr(), "tls/app").await;
    push_small_image(&server.ecr(), "tls/app", "v1", 1).await;
    // Every session of berth's is encrypted: PostgreSQL says so of each.
    let sessions = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "berth", "-d", "postgres"])
        .args(["-Atc", "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'"])
        .output()
        .unwrap();
    let sessions = String::from_utf8_lossy(&sessions.stdout).trim().to_owned();
    let (count, all_tls) = sessions.split_once('|').expect("psql answered");
    assert!(count.parse::<u32>().unwrap() > 0, "{sessions}");
    assert_eq!(all_tls, "t", "every berth session uses TLS: {sessions}");
    drop(server);

    // Without the CA, the certificate cannot be verified: berth does not start.
    let unverified = format!("{base}?sslmode=verify-full");
    let failed = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["fsck", "--data-dir"])
        .arg(dir.path())
        .env("BERTH_METADATA", &unverified)
        .env("BERTH_LOG", "error")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("UnknownIssuer"), "{err}");
}
