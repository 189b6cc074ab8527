//! Blobs on S3 (`--blobs s3://...`), against the S3 test server `scripts/s3-server` starts
//! (`BERTH_TEST_S3_BUCKET` and the AWS environment). These run in every pass, whatever
//! `BERTH_TEST_BLOBS` says; CI must have the server.

use aws_sdk_ecr::primitives::Blob;
use reqwest::Method;

use crate::harness::*;

/// `--blobs` for a fresh prefix of the test bucket, or `None` (skipped) without an S3 server.
fn fresh_blobs_url() -> Option<String> {
    let Ok(bucket) = std::env::var("BERTH_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the S3 tests: BERTH_TEST_S3_BUCKET is not set (scripts/s3-server)"
        );
        eprintln!("skipped: BERTH_TEST_S3_BUCKET is not set (no S3 test server)");
        return None;
    };
    let tag = random_bytes(8, std::process::id() as u64 ^ nanos())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Some(format!("s3://{bucket}/it-s3-{tag}"))
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test]
async fn layers_download_from_presigned_s3_urls_when_redirects_are_on() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    let server = TestServer::start_with(&["--blobs", &blobs, "--blob-redirect"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "s3/app").await;
    let (_, _, layer) = push_small_image(&ecr, "s3/app", "v1", 7).await;
    let expected = random_bytes(1007, 7);
    assert_eq!(layer, sha256_digest(&expected));

    let url = ecr
        .get_download_url_for_layer()
        .repository_name("s3/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    let s3 = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap();
    assert!(url.starts_with(&s3), "a presigned S3 URL: {url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    // A bare GET, as clients of GetDownloadUrlForLayer send.
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.status(), 200);
    assert!(body.bytes().await.unwrap() == expected);

    // `/v2`: 307 to a presigned URL; HEAD still answers from berth.
    let oci = server.oci().await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(format!("{}/v2/s3/app/blobs/{layer}", server.endpoint))
        .header("authorization", &oci.auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3), "{location}");
    let ranged = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert!(ranged.bytes().await.unwrap() == expected[10..20]);
    let head = oci
        .req(Method::HEAD, &format!("/v2/s3/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "1007");
}

#[tokio::test]
async fn downloads_stream_through_berth_when_redirects_are_off() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    let server = TestServer::start_with(&["--blobs", &blobs, "--blob-redirect=false"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "s3/app").await;
    let (_, _, layer) = push_small_image(&ecr, "s3/app", "v1", 9).await;
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("s3/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&server.endpoint), "berth's own URL: {url}");
    assert!(reqwest::get(&url).await.unwrap().bytes().await.unwrap() == random_bytes(1009, 9));
    let oci = server.oci().await;
    let r = oci
        .req(Method::GET, &format!("/v2/s3/app/blobs/{layer}"))
        .header("range", "bytes=5-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == random_bytes(1009, 9)[5..10]);
}

/// Two nodes on one data directory's metadata and one bucket: an upload's `/v2` chunks (far
/// below S3's 5 MiB part minimum, and some above it) and ECR parts alternate between them, and
/// the blob completes on either and reads back byte for byte from the other.
#[tokio::test]
async fn an_upload_moves_between_nodes_in_chunks_of_any_size() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = ["--blobs", blobs.as_str(), "--gc-interval-secs", "0"];
    let a = TestServer::start_in_with(dir.path(), &args).await;
    let b = TestServer::start_in_with(dir.path(), &args).await;
    create_repo(&a.ecr(), "s3/moving").await;

    // `/v2`: chunk sizes from 1 byte to past one S3 part.
    let data = random_bytes(14 * MIB + 3, 42);
    let digest = sha256_digest(&data);
    let (oa, ob) = (a.oci().await, b.oci().await);
    let r = oa
        .req(Method::POST, "/v2/s3/moving/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut location = r.headers()["location"].to_str().unwrap().to_owned();
    let sizes = [1, 100, 3 * MIB, 7 * MIB, 1, 2 * MIB, 5];
    let mut off = 0;
    for (i, n) in sizes.iter().chain(std::iter::once(&usize::MAX)).enumerate() {
        let end = off + (*n).min(data.len() - off);
        let node = if i % 2 == 0 { &ob } else { &oa };
        let path = location
            .split_once("/v2/")
            .map(|(_, p)| format!("/v2/{p}"))
            .unwrap();
        let r = node
            .req(Method::PATCH, &path)
            .header("content-range", format!("{off}-{}", end - 1))
            .header("content-type", "application/octet-stream")
            .body(data[off..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "chunk {i}");
        location = r.headers()["location"].to_str().unwrap().to_owned();
        off = end;
        if off == data.len() {
            break;
        }
    }
    let path = location
        .split_once("/v2/")
        .map(|(_, p)| format!("/v2/{p}"))
        .unwrap();
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = oa
        .req(Method::PUT, &format!("{path}{sep}digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = ob
        .req(Method::GET, &format!("/v2/s3/moving/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert!(
        got.bytes().await.unwrap() == data,
        "the blob reads back from the other node"
    );

    // ECR: 5 MiB parts and a short last one, alternating nodes; the same digest again
    // completes as LayerAlreadyExists and is stored once.
    let layer = random_bytes(11 * MIB + 17, 43);
    let ecr = [a.ecr(), b.ecr()];
    let id = initiate_upload(&ecr[0], "s3/moving").await;
    for (i, at) in (0..layer.len()).step_by(5 * MIB).enumerate() {
        let end = (at + 5 * MIB).min(layer.len());
        ecr[i % 2]
            .upload_layer_part()
            .repository_name("s3/moving")
            .upload_id(&id)
            .part_first_byte(at as i64)
            .part_last_byte(end as i64 - 1)
            .layer_part_blob(Blob::new(&layer[at..end]))
            .send()
            .await
            .expect("part");
    }
    let done = ecr[1]
        .complete_layer_upload()
        .repository_name("s3/moving")
        .upload_id(&id)
        .layer_digests(sha256_digest(&layer))
        .send()
        .await
        .expect("complete");
    assert_eq!(done.layer_digest(), Some(sha256_digest(&layer).as_str()));
    let r = oa
        .req(
            Method::GET,
            &format!("/v2/s3/moving/blobs/{}", sha256_digest(&layer)),
        )
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.unwrap() == layer);

    // Nothing staged is left behind, and fsck (reading every blob back from S3) is clean.
    let (rc, out) = berth_cli(&["fsck", "--blobs", &blobs], dir.path());
    assert_eq!(rc, 0, "{out}");
}

/// S3 unreachable (nothing listens at its endpoint): after the client's retries, pushes fail
/// cleanly — `ServerException` on the ECR API, 503 `UNAVAILABLE` on `/v2` — and nothing is
/// acknowledged.
#[tokio::test]
async fn an_s3_outage_is_a_clean_server_error() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    // A loopback port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = TestServer::start_with_env(
        &["--blobs", &blobs],
        &[
            ("AWS_ENDPOINT_URL_S3", &endpoint),
            ("AWS_ENDPOINT_URL", &endpoint),
        ],
    )
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, "s3/down").await;
    let id = initiate_upload(&ecr, "s3/down").await;
    let err = ecr
        .upload_layer_part()
        .repository_name("s3/down")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(9)
        .layer_part_blob(Blob::new(vec![7u8; 10]))
        .send()
        .await
        .expect_err("S3 is down");
    assert_eq!(code(&err), "ServerException");
    let r = server
        .oci()
        .await
        .req(
            Method::POST,
            &format!("/v2/s3/down/blobs/uploads/?digest={}", sha256_digest(b"x")),
        )
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(oci_code(r).await, "UNAVAILABLE");
    // Nothing was acknowledged: the upload still stands at byte 0.
    let err = ecr
        .upload_layer_part()
        .repository_name("s3/down")
        .upload_id(&id)
        .part_first_byte(10)
        .part_last_byte(19)
        .layer_part_blob(Blob::new(vec![7u8; 10]))
        .send()
        .await
        .expect_err("not after a part that was never stored");
    assert_eq!(code(&err), "InvalidLayerPartException");
}

/// What the S3 test server holds under `prefix` of `bucket`, asked with the aws CLI:
/// (multipart uploads in progress, object keys).
fn bucket_listing(bucket: &str, prefix: &str) -> (Vec<String>, Vec<String>) {
    let endpoint = std::env::var("BERTH_TEST_S3_ENDPOINT").expect("the S3 test server");
    let ask = |what: &[&str], query: &str| -> Vec<String> {
        let out = std::process::Command::new("aws")
            .args(["s3api"])
            .args(what)
            .args([
                "--bucket",
                bucket,
                "--prefix",
                prefix,
                "--endpoint-url",
                &endpoint,
            ])
            .args(["--query", query, "--output", "text"])
            .output()
            .expect("the aws CLI");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|w| *w != "None")
            .map(str::to_owned)
            .collect()
    };
    (
        ask(&["list-multipart-uploads"], "Uploads[].Key"),
        ask(&["list-objects-v2"], "Contents[].Key"),
    )
}

/// An upload left to expire gives its S3 multipart upload back (aborted) and its staging
/// objects, so no orphaned parts pile up in the bucket; a completed layer stays.
#[tokio::test]
async fn expired_uploads_leave_no_multipart_upload_in_the_bucket() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    let (bucket, prefix) = blobs
        .trim_start_matches("s3://")
        .split_once('/')
        .map(|(b, p)| (b.to_owned(), p.to_owned()))
        .unwrap();
    let server = TestServer::start_with(&[
        "--blobs",
        &blobs,
        "--upload-expiry-secs",
        "2",
        "--gc-interval-secs",
        "0",
    ])
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, "s3/expiry").await;
    let (_, _, kept) = push_small_image(&ecr, "s3/expiry", "v1", 9).await;
    // 9 MiB: one whole 8 MiB S3 part (a multipart upload begun) and a 1 MiB segment.
    let id = initiate_upload(&ecr, "s3/expiry").await;
    let data = random_bytes(9 * MIB, 10);
    ecr.upload_layer_part()
        .repository_name("s3/expiry")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(data.len() as i64 - 1)
        .layer_part_blob(Blob::new(data))
        .send()
        .await
        .unwrap();
    let (multipart, objects) = bucket_listing(&bucket, &prefix);
    assert_eq!(multipart.len(), 1, "the part began a multipart upload");
    assert!(
        objects
            .iter()
            .any(|k| k.contains(&format!("uploads/{id}/"))),
        "the upload's staging objects: {objects:?}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (rc, out) = berth_cli(
        &["gc", "--blobs", &blobs, "--upload-expiry-secs", "2"],
        server.data_dir(),
    );
    assert_eq!(rc, 0, "{out}");
    let (multipart, objects) = bucket_listing(&bucket, &prefix);
    assert!(multipart.is_empty(), "aborted: {multipart:?}");
    assert!(
        !objects.iter().any(|k| k.contains("uploads/")),
        "no staging object is left: {objects:?}"
    );
    // The image pushed before is untouched.
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("s3/expiry")
        .layer_digest(&kept)
        .send()
        .await
        .unwrap();
    let got = reqwest::get(url.download_url().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_digest(&got), kept);
}

/// The S3 settings follow the AWS profile conventions (issue 13): with no access key or region
/// in the environment, those of `AWS_PROFILE` in the shared credentials and config files serve;
/// a profile named but absent stops the server at start instead of signing with nothing.
#[tokio::test]
async fn s3_credentials_and_region_come_from_the_aws_profile() {
    let Some(blobs) = fresh_blobs_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (credentials, config) = (dir.path().join("credentials"), dir.path().join("config"));
    let key = std::env::var("AWS_ACCESS_KEY_ID").expect("the S3 test server's key");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("the S3 test server's secret");
    std::fs::write(
        &credentials,
        format!("[berth-it]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::fs::write(&config, "[profile berth-it]\nregion = us-east-1\n").unwrap();
    let env = |profile: &'static str| {
        [
            ("AWS_PROFILE", profile),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            // Empty is unset, for berth as for the SDKs.
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", ""),
        ]
    };
    let server = TestServer::start_with_env(&["--blobs", &blobs], &env("berth-it")).await;
    let ecr = server.ecr();
    create_repo(&ecr, "profile/app").await;
    let (_, _, layer) = push_small_image(&ecr, "profile/app", "v1", 21).await;
    let oci = server.oci().await;
    let r = oci
        .req(Method::GET, &format!("/v2/profile/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), random_bytes(1021, 21));

    // A profile that is not in the files.
    let data = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--blobs", &blobs])
        .envs(env("nowhere"))
        .env("BERTH_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(url) = metadata_for(data.path()) {
        cmd.env("BERTH_METADATA", url);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("berth started with AWS_PROFILE naming no profile");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("AWS_PROFILE"), "{stderr}");
}
