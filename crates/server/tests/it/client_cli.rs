//! `berth push`, `berth pull` and `berth login`: the real `berth` binary as the client, with
//! the AWS credential chain pointed at the test server, against a real server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    ACCESS_KEY, MIB, SECRET_KEY, TestServer, create_repo, random_bytes, sha256_digest, skopeo,
};

/// `berth <args>` as a client of `server`: credentials and region from the environment (the
/// normal chain), no profile files, resume state under `state`.
fn client(server: &TestServer, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.env("AWS_ENDPOINT_URL_ECR", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", state.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            state.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BERTH_STATE_DIR", state)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

/// Runs a client command to completion (at most 10 minutes) and asserts it succeeded.
fn run_ok(server: &TestServer, state: &Path, args: &[&str]) -> Output {
    let out = run(server, state, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run(server: &TestServer, state: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("600").arg(env!("CARGO_BIN_EXE_berth")).args(args);
    // Same environment as `client`, through `timeout`.
    let c = client(server, state);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("run berth")
}

/// A blob written into the layout at `dir`; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256_digest(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// An image (config and uncompressed layers) in the layout at `dir`; returns the manifest's
/// descriptor with its platform.
fn put_image(dir: &Path, arch: &str, layers: &[Vec<u8>]) -> serde_json::Value {
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| put_blob(dir, "application/vnd.oci.image.layer.v1.tar", l))
        .collect();
    let diff_ids: Vec<_> = layer_descs.iter().map(|d| d["digest"].clone()).collect();
    let config = json!({
        "architecture": arch, "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layer_descs,
    });
    let mut d = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    d["platform"] = json!({"architecture": arch, "os": "linux"});
    d
}

/// An empty OCI layout at `dir` whose index.json will name `top` as `name`.
fn new_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn write_index(dir: &Path, top: &serde_json::Value, name: &str) {
    let mut top = top.clone();
    top.as_object_mut().unwrap().remove("platform");
    top["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Every blob file of a layout: name -> bytes.
fn blobs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[tokio::test]
async fn multi_platform_layout_round_trips_byte_identical() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "cli/multi").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("state"),
    );
    new_layout(&src);
    // A base layer both platforms share, and one of their own each (one past a part).
    let base = random_bytes(3 * MIB, 1);
    let amd = put_image(
        &src,
        "amd64",
        &[base.clone(), random_bytes(21 * MIB + 5, 2)],
    );
    let arm = put_image(&src, "arm64", &[base, random_bytes(777, 3)]);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd, arm],
    });
    let top = put_blob(
        &src,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    write_index(&src, &top, "v1");
    let src_path = src.to_str().unwrap();

    let out = run_ok(
        &server,
        &state,
        &["push", &format!("oci:{src_path}:v1"), "cli/multi:v1"],
    );
    assert_eq!(stdout_line(&out), top["digest"].as_str().unwrap());
    // Every platform is an image of its own in the repository, and the tag names the index.
    let listed = ecr
        .list_images()
        .repository_name("cli/multi")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_ids().len(), 3, "{listed:?}");

    // A second push finds every blob there and sends none.
    let again = run_ok(&server, &state, &["push", src_path, "cli/multi:v1"]);
    assert!(
        stderr(&again).contains("(0 blobs sent, 5 already there)"),
        "{}",
        stderr(&again)
    );

    let dst_path = format!("oci:{}:v1", dst.display());
    let out = run_ok(&server, &state, &["pull", "cli/multi:v1", &dst_path]);
    assert_eq!(stdout_line(&out), top["digest"].as_str().unwrap());
    assert!(
        stderr(&out).contains("pulled cli/multi@"),
        "{}",
        stderr(&out)
    );
    // Byte for byte the blobs that were pushed (manifests included), and nothing else.
    assert_eq!(blobs(&dst), blobs(&src));
    let names: Vec<_> = std::fs::read_dir(dst.join("blobs/sha256"))
        .unwrap()
        .collect();
    assert_eq!(names.len(), blobs(&src).len(), "no temporary file is left");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dst.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], top["digest"]);

    // skopeo reads the pulled layout, every platform, checking every digest.
    let (ok, err) = skopeo(
        tmp.path(),
        &[
            "copy",
            "--all",
            &dst_path,
            &format!("dir:{}", tmp.path().join("copied").display()),
        ],
    );
    assert!(ok, "skopeo could not read the pulled layout: {err}");
}

#[tokio::test]
async fn docker_save_tarball_round_trips() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "cli/saved").await;
    create_repo(&ecr, "cli/again").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (tmp.path().join("src"), tmp.path().join("state"));
    new_layout(&src);
    let layers = [random_bytes(6 * MIB, 11), random_bytes(1234, 12)];
    let image = put_image(&src, "amd64", &layers);
    write_index(&src, &image, "v1");
    // A real `docker save`-format tarball (manifest.json, <id>.json, <id>.tar), by skopeo.
    let saved = tmp.path().join("saved.tar");
    let (ok, err) = skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("oci:{}:v1", src.display()),
            &format!("docker-archive:{}:cli/saved:v1", saved.display()),
        ],
    );
    assert!(ok, "skopeo could not write the tarball: {err}");

    let pushed = run_ok(
        &server,
        &state,
        &["push", saved.to_str().unwrap(), "cli/saved:v1"],
    );
    let digest = stdout_line(&pushed);
    let pulled = tmp.path().join("pulled.tar");
    let out = run_ok(
        &server,
        &state,
        &["pull", "cli/saved:v1", pulled.to_str().unwrap()],
    );
    assert_eq!(stdout_line(&out), digest);
    assert!(!tmp.path().join(".pulled.tar.layout.partial").exists());

    // The pulled tarball holds the same image: pushed again it is the same manifest...
    let again = run_ok(
        &server,
        &state,
        &["push", pulled.to_str().unwrap(), "cli/again:v1"],
    );
    assert_eq!(stdout_line(&again), digest);
    // ...and skopeo reads it as a docker archive, with the layers that went in.
    let out_dir = tmp.path().join("from-archive");
    let (ok, err) = skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("docker-archive:{}", pulled.display()),
            &format!("dir:{}", out_dir.display()),
        ],
    );
    assert!(ok, "skopeo could not read the pulled tarball: {err}");
    for l in &layers {
        let d = sha256_digest(l);
        assert_eq!(
            std::fs::read(out_dir.join(&d[7..])).unwrap(),
            *l,
            "layer {d}"
        );
    }
}

/// Sums `berth_http_requests_total` for one ECR operation and status class.
async fn requests(server: &TestServer, op: &str, class: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = format!("operation=\"{op}\"");
    let class = format!("status_class=\"{class}\"");
    text.lines()
        .filter(|l| {
            l.starts_with("berth_http_requests_total{") && l.contains(&want) && l.contains(&class)
        })
        .filter(|l| l.contains("api=\"ecr\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// ECR requests the server is serving now.
async fn in_flight(server: &TestServer) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("berth_http_requests_in_flight{") && l.contains("api=\"ecr\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

#[tokio::test]
async fn interrupted_push_resumes_where_the_registry_stopped() {
    const LAYER: usize = 300 * MIB;
    // The config in one part, the layer in 15 of 20 MiB.
    const PARTS: u64 = 16;
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "cli/big").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (tmp.path().join("src"), tmp.path().join("state"));
    new_layout(&src);
    let image = put_image(&src, "amd64", &[random_bytes(LAYER, 21)]);
    write_index(&src, &image, "v1");
    let src_arg = format!("oci:{}:v1", src.display());

    // Ctrl-C once a few parts are in.
    let mut child = client(&server, &state)
        .args(["push", &src_arg, "cli/big:v1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    // (The config, one small part, is complete by then: one upload is left in progress.)
    while requests(&server, "UploadLayerPart", "2xx").await < 3
        || requests(&server, "CompleteLayerUpload", "2xx").await < 1
    {
        assert!(Instant::now() < deadline, "the push made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    assert!(stderr(&first).contains("run the same command again to resume"));
    // Let a part that was in flight end on the server (accepted or not).
    for _ in 0..200 {
        if in_flight(&server).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted_before = requests(&server, "UploadLayerPart", "2xx").await;
    assert!(
        (3..PARTS).contains(&accepted_before),
        "interrupted halfway: {accepted_before} parts"
    );

    // The state names the upload; forget where it stood, so that only the registry's
    // InvalidLayerPartException can say where to go on from (as after a dropped connection).
    let files: Vec<PathBuf> = std::fs::read_dir(state.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one upload in progress: {files:?}");
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    // At least the first layer part (the third accepted part may not be recorded yet).
    assert!(saved["nextByte"].as_u64().unwrap() >= 20 * MIB as u64);
    saved["nextByte"] = json!(0);
    std::fs::write(&files[0], serde_json::to_vec(&saved).unwrap()).unwrap();

    let second = run_ok(&server, &state, &["push", &src_arg, "cli/big:v1"]);
    let err = stderr(&second);
    assert!(err.contains("resuming upload"), "{err}");
    assert!(err.contains("the registry has"), "{err}");
    assert_eq!(stdout_line(&second), image["digest"].as_str().unwrap());
    // Every part was accepted exactly once over the two runs: nothing started over.
    assert_eq!(requests(&server, "UploadLayerPart", "2xx").await, PARTS);
    assert_eq!(
        requests(&server, "InitiateLayerUpload", "2xx").await,
        2,
        "config + layer, once each"
    );
    assert!(
        std::fs::read_dir(state.join("uploads"))
            .unwrap()
            .next()
            .is_none(),
        "the state of a finished upload is removed"
    );
    // The registry checked the digest on completion; the image is there.
    let got = ecr
        .batch_get_image()
        .repository_name("cli/big")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images().len(), 1);
}

#[tokio::test]
async fn login_writes_credentials_skopeo_uses() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "cli/login").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (tmp.path().join("src"), tmp.path().join("state"));
    new_layout(&src);
    let image = put_image(&src, "amd64", &[random_bytes(4096, 31)]);
    write_index(&src, &image, "v1");
    let host = server.endpoint.split_once("://").unwrap().1.to_owned();
    let authfile = tmp.path().join("auth.json");
    std::fs::write(&authfile, r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#).unwrap();
    run_ok(
        &server,
        &state,
        &[
            "login",
            "--registry",
            &server.endpoint,
            "--authfile",
            authfile.to_str().unwrap(),
        ],
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert_eq!(
        written["auths"]["other.example"]["auth"], "eDp5",
        "other entries kept"
    );
    assert!(written["auths"][&host]["auth"].is_string(), "{written}");
    // skopeo pushes with nothing but that file (the harness points it at auth.json).
    let (ok, err) = skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{host}/cli/login:v1"),
        ],
    );
    assert!(ok, "skopeo with berth login's credentials: {err}");
    let auth = written["auths"][&host]["auth"].as_str().unwrap();
    let pair = String::from_utf8(base64_simd::STANDARD.decode_to_vec(auth).unwrap()).unwrap();
    assert!(pair.starts_with("AWS:"), "{pair}");
    // --print gives the password alone, for `docker login --password-stdin`.
    let printed = run_ok(&server, &state, &["login", "--print"]);
    assert!(!stdout_line(&printed).is_empty() && !stdout_line(&printed).contains(':'));
}

#[tokio::test]
async fn pull_of_a_corrupt_blob_fails_and_leaves_nothing_under_its_name() {
    if crate::harness::skip_unless_local_blobs("corrupts a blob file in the data directory") {
        return;
    }
    let server = TestServer::start().await;
    create_repo(&server.ecr(), "cli/corrupt").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, state) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("state"),
    );
    new_layout(&src);
    let (good, bad) = (random_bytes(9 * MIB, 41), random_bytes(17 * MIB + 3, 42));
    let image = put_image(&src, "amd64", &[good.clone(), bad.clone()]);
    write_index(&src, &image, "v1");
    run_ok(
        &server,
        &state,
        &[
            "push",
            &format!("oci:{}:v1", src.display()),
            "cli/corrupt:v1",
        ],
    );
    // The same length, one byte changed, in the middle of a range.
    let bad_digest = sha256_digest(&bad);
    let mut flipped = bad.clone();
    flipped[10 * MIB] ^= 1;
    std::fs::write(server.blob_file(&bad_digest), &flipped).unwrap();

    let dst_arg = format!("oci:{}:v1", dst.display());
    let out = run(&server, &state, &["pull", "cli/corrupt:v1", &dst_arg]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("blob {bad_digest} downloaded with the digest")),
        "{}",
        stderr(&out)
    );
    let files: Vec<String> = std::fs::read_dir(dst.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains(&bad_digest[7..])),
        "nothing of the corrupt blob is left: {files:?}"
    );
    assert!(!dst.join("index.json").exists(), "no image is named");

    // Repaired on the server, the next pull completes, byte for byte.
    std::fs::write(server.blob_file(&bad_digest), &bad).unwrap();
    run_ok(&server, &state, &["pull", "cli/corrupt:v1", &dst_arg]);
    assert_eq!(blobs(&dst), blobs(&src));
}

/// A TCP proxy to `upstream` that, once `drop_after` bytes have gone up, drops the first
/// connection whose answer then comes back, before passing the answer on: the registry has
/// done the request, the client never hears of it. Returns the proxy's endpoint.
async fn answer_dropping_proxy(upstream: &str, drop_after: u64) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (sent, dropped, upstream) = (sent.clone(), dropped.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = ri.read(&mut buf).await {
                        if n == 0 || wo.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent.fetch_add(n as u64, Ordering::SeqCst);
                    }
                };
                let down = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = ro.read(&mut buf).await {
                        if n == 0
                            || (sent.load(Ordering::SeqCst) > drop_after
                                && !dropped.swap(true, Ordering::SeqCst))
                            || wi.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                };
                tokio::select! { () = up => {}, () = down => {} }
            });
        }
    });
    endpoint
}

#[tokio::test]
async fn push_goes_on_after_a_dropped_connection_from_where_the_registry_stopped() {
    let server = TestServer::start().await;
    create_repo(&server.ecr(), "cli/dropped").await;
    let tmp = tempfile::tempdir().unwrap();
    let (src, state) = (tmp.path().join("src"), tmp.path().join("state"));
    new_layout(&src);
    // 5 parts of 20 MiB; the answer after some 50 MiB of JSON (the second or third part) is lost.
    let image = put_image(&src, "amd64", &[random_bytes(100 * MIB, 51)]);
    write_index(&src, &image, "v1");
    let proxy = answer_dropping_proxy(&server.endpoint, 50 * MIB as u64).await;
    let src_arg = format!("oci:{}:v1", src.display());
    let args = ["push", "--endpoint-url", &proxy, &src_arg, "cli/dropped:v1"];
    // The client runs on a blocking thread: the proxy's tasks need this test's runtime.
    let mut cmd = client(&server, &state);
    cmd.args(args).env("AWS_ENDPOINT_URL_ECR", &proxy);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("the registry has"), "{err}");
    assert_eq!(stdout_line(&out), image["digest"].as_str().unwrap());
    // Config 1 + layer 5: the part whose answer was lost was not accepted twice.
    assert_eq!(requests(&server, "UploadLayerPart", "2xx").await, 6);
    assert!(requests(&server, "UploadLayerPart", "4xx").await >= 1);
}
