//! Hostile and broken input, through both APIs: every case gets its exact ECR exception or OCI
//! error code, nothing stored changes, and the server stays up. The cases also write the table
//! in `docs/hostile-inputs.md`: run with `BERTH_WRITE_DOCS=1` to regenerate it; otherwise the
//! test fails when the committed table and the responses disagree.

use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// A well-formed signature: the server runs without keys, so what is checked is the input.
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd";
const IDLE_SECS: u64 = 2;
const REPO: &str = "hostile/repo";

struct Table {
    rows: Vec<String>,
    mismatches: Vec<String>,
}

impl Table {
    fn check(&mut self, api: &str, input: &str, want: (u16, &str), got: (u16, String)) {
        if (want.0, want.1) != (got.0, got.1.as_str()) {
            self.mismatches
                .push(format!("{api} {input}: want {want:?}, got {got:?}"));
        }
        self.rows.push(format!(
            "| {api} | {} | {} | `{}` |",
            input.replace('|', "\\|"),
            got.0,
            got.1
        ));
    }
}

fn ecr_request(
    server: &TestServer,
    op: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let req = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerRegistry_V20150921.{op}"),
        )
        .body(body);
    match auth {
        Some(a) => req.header("authorization", a),
        None => req,
    }
}

async fn ecr_json(
    server: &TestServer,
    op: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let resp = ecr_request(server, op, auth, body).send().await.unwrap();
    let status = resp.status().as_u16();
    let v = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    (status, v)
}

async fn ecr_raw(
    server: &TestServer,
    op: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let (status, v) = ecr_json(server, op, auth, body).await;
    (status, v["__type"].as_str().unwrap_or("<none>").to_owned())
}

/// The first failure code of a batch answer (ECR reports bad image ids per item, with 200).
async fn ecr_failure(server: &TestServer, op: &str, body: String) -> (u16, String) {
    let (status, v) = ecr_json(server, op, Some(AUTH), body.into_bytes()).await;
    let code = v["failures"][0]["failureCode"]
        .as_str()
        .map(|c| format!("failures[0].failureCode={c}"))
        .unwrap_or_else(|| v["__type"].as_str().unwrap_or("<none>").to_owned());
    (status, code)
}

/// The head of a signed ECR request declaring `content_length`, then `body_start` only.
fn ecr_head(op: &str, content_length: usize, body_start: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: AmazonEC2ContainerRegistry_V20150921.{op}\r\nauthorization: {AUTH}\r\ncontent-length: {content_length}\r\n\r\n{body_start}"
    )
}

/// A well-formed ECR Public signature for `scope` (`<region>/<service>`).
fn public_auth(scope: &str) -> String {
    AUTH.replace("us-east-1/ecr/", &format!("{scope}/"))
}

/// An ECR Public (`SpencerFrontendService`) request: the `__type` of its answer, or `OK`.
async fn public_raw(server: &TestServer, op: &str, scope: &str, body: Vec<u8>) -> (u16, String) {
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("SpencerFrontendService.{op}"))
        .header("authorization", public_auth(scope))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: serde_json::Value =
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    (status, v["__type"].as_str().unwrap_or("OK").to_owned())
}

async fn oci_send(r: reqwest::RequestBuilder) -> (u16, String) {
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, oci_code(resp).await)
}

/// Raw bytes on a fresh connection; returns what the server answered before closing, and
/// how long the connection stayed open.
async fn raw_tcp(server: &TestServer, send: &[u8], then_wait: Duration) -> (String, Duration) {
    let addr = server.endpoint.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(send).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(then_wait, conn.read_to_end(&mut got)).await;
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// A GET sent byte for byte: HTTP clients normalise `..` and `%2e%2e` away before sending.
async fn raw_get(server: &TestServer, auth: &str, path: &str) -> (u16, String) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nconnection: close\r\n\r\n"
    );
    let (resp, _) = raw_tcp(server, req.as_bytes(), Duration::from_secs(5)).await;
    (status_line(&resp), json_value(&resp, "errors"))
}

fn status_line(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn json_value(resp: &str, key: &str) -> String {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match key {
        "__type" => v["__type"].as_str(),
        _ => v["errors"][0]["code"].as_str(),
    }
    .unwrap_or("<none>")
    .to_owned()
}

#[tokio::test]
async fn hostile_inputs_get_exact_errors_and_change_nothing() {
    let idle = IDLE_SECS.to_string();
    let server = TestServer::start_without_keys_with(&[
        "--idle-timeout-secs",
        &idle,
        "--max-open-uploads",
        "3",
        // Small enough for one slow client to fill (see the throttling rows); every other
        // case runs alone and fits, or takes the whole budget.
        "--max-inflight-part-bytes",
        "16M",
        "--limit",
        "body-memory-wait-ms=300",
    ])
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, REPO).await;
    let (manifest, image_digest, layer_digest) = push_small_image(&ecr, REPO, "keep", 1).await;
    let oci = server.oci().await;
    let mut t = Table {
        rows: vec![],
        mismatches: vec![],
    };
    let json = |v: serde_json::Value| v.to_string().into_bytes();

    // --- ECR JSON API ---
    t.check(
        "ECR",
        "no Authorization header",
        (400, "MissingAuthenticationTokenException"),
        ecr_raw(&server, "DescribeRepositories", None, b"{}".to_vec()).await,
    );
    t.check(
        "ECR",
        "Authorization header without Signature",
        (400, "IncompleteSignatureException"),
        ecr_raw(
            &server,
            "DescribeRepositories",
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request"),
            b"{}".to_vec(),
        )
        .await,
    );
    t.check(
        "ECR",
        "unknown X-Amz-Target operation",
        (400, "UnknownOperationException"),
        ecr_raw(&server, "DropAllTables", Some(AUTH), b"{}".to_vec()).await,
    );
    // Regions: a malformed name, or one shaped like a storage key, is no region.
    for (input, region) in [
        ("signed for the region \"US-EAST-1\"", "US-EAST-1"),
        (
            "signed for the region \"us-east-1:x\" (the storage key separator)",
            "us-east-1:x",
        ),
        (
            "signed for the region \"deployment\" (a reserved storage key)",
            "deployment",
        ),
        (
            "signed for a region name of 40 characters",
            "us-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1",
        ),
    ] {
        let auth = AUTH.replace("/us-east-1/", &format!("/{region}/"));
        t.check(
            "ECR",
            input,
            (400, "InvalidSignatureException"),
            ecr_raw(&server, "DescribeRepositories", Some(&auth), b"{}".to_vec()).await,
        );
    }
    // Another region is another registry: the same name is a new repository there, and the
    // stored one is untouched (checked after every case).
    t.check(
        "ECR",
        "CreateRepository of the stored repository's name, signed for eu-west-3",
        (200, "<none>"),
        ecr_raw(
            &server,
            "CreateRepository",
            Some(&AUTH.replace("/us-east-1/", "/eu-west-3/")),
            json(serde_json::json!({ "repositoryName": REPO })),
        )
        .await,
    );
    t.check(
        "ECR",
        "body that is not JSON",
        (400, "SerializationException"),
        ecr_raw(&server, "CreateRepository", Some(AUTH), b"{\"repo".to_vec()).await,
    );
    t.check(
        "ECR",
        "body of invalid UTF-8",
        (400, "SerializationException"),
        ecr_raw(
            &server,
            "CreateRepository",
            Some(AUTH),
            b"{\"repositoryName\": \"\xff\xfe\"}".to_vec(),
        )
        .await,
    );
    t.check(
        "ECR",
        "JSON nested 100,000 arrays deep",
        (400, "SerializationException"),
        ecr_raw(
            &server,
            "CreateRepository",
            Some(AUTH),
            "[".repeat(100_000).into_bytes(),
        )
        .await,
    );
    t.check(
        "ECR",
        "member of the wrong JSON type",
        (400, "SerializationException"),
        ecr_raw(
            &server,
            "CreateRepository",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": ["a"]})),
        )
        .await,
    );
    t.check(
        "ECR",
        "repositoryName of 1 MiB",
        (400, "InvalidParameterException"),
        ecr_raw(
            &server,
            "CreateRepository",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": "a".repeat(MIB)})),
        )
        .await,
    );
    for name in [
        "../../etc",
        "a/../b",
        "UPPER",
        "a//b",
        "a\u{0}b",
        "a b",
        "/abs",
    ] {
        t.check(
            "ECR",
            &format!("repositoryName {name:?}"),
            (400, "InvalidParameterException"),
            ecr_raw(
                &server,
                "CreateRepository",
                Some(AUTH),
                json(serde_json::json!({ "repositoryName": name })),
            )
            .await,
        );
    }
    for tag in ["../x", "a/b", "-lead", "x".repeat(301).as_str()] {
        t.check(
            "ECR",
            &format!("PutImage imageTag {:?}", if tag.len() > 20 { "x × 301" } else { tag }),
            (400, "InvalidParameterException"),
            ecr_raw(
                &server,
                "PutImage",
                Some(AUTH),
                json(serde_json::json!({"repositoryName": REPO, "imageManifest": manifest, "imageTag": tag})),
            )
            .await,
        );
    }
    t.check(
        "ECR",
        "body over 40 MiB",
        (413, "SerializationException"),
        {
            // Refused on its Content-Length, before the body: send only the head.
            let head = ecr_head("UploadLayerPart", 41 * MIB, "");
            let (resp, _) = raw_tcp(&server, head.as_bytes(), Duration::from_secs(5)).await;
            (status_line(&resp), json_value(&resp, "__type"))
        },
    );
    t.check(
        "ECR",
        "PutImage manifest over 4 MiB",
        (400, "InvalidParameterException"),
        ecr_raw(
            &server,
            "PutImage",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": REPO, "imageManifest": format!("{{\"pad\":\"{}\"}}", "a".repeat(4 * MIB))})),
        )
        .await,
    );
    t.check(
        "ECR",
        "PutImage manifest that is not JSON",
        (400, "InvalidParameterException"),
        ecr_raw(
            &server,
            "PutImage",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": REPO, "imageManifest": "not json", "imageTag": "x"})),
        )
        .await,
    );
    let upload = initiate_upload(&ecr, REPO).await;
    let part = |first: i64, last: i64, blob: &str| {
        json(
            serde_json::json!({"repositoryName": REPO, "uploadId": upload, "partFirstByte": first, "partLastByte": last, "layerPartBlob": blob}),
        )
    };
    t.check(
        "ECR",
        "UploadLayerPart with invalid base64",
        (400, "SerializationException"),
        ecr_raw(&server, "UploadLayerPart", Some(AUTH), part(0, 3, "!!!!")).await,
    );
    t.check(
        "ECR",
        "UploadLayerPart starting past the received bytes",
        (400, "InvalidLayerPartException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            part(10, 13, "AAAAAA=="),
        )
        .await,
    );
    t.check(
        "ECR",
        "UploadLayerPart whose range disagrees with its length",
        (400, "InvalidLayerPartException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            part(0, 99, "AAAAAA=="),
        )
        .await,
    );
    t.check(
        "ECR",
        "UploadLayerPart with a negative partLastByte",
        (400, "InvalidParameterException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            part(0, -5, "AAAAAA=="),
        )
        .await,
    );
    let big = base64_simd::STANDARD.encode_to_string(vec![0u8; 20 * MIB + 1]);
    t.check(
        "ECR",
        "UploadLayerPart of 20 MiB + 1 byte",
        (400, "InvalidParameterException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            part(0, (20 * MIB) as i64, &big),
        )
        .await,
    );
    t.check(
        "ECR",
        "UploadLayerPart to an unknown uploadId",
        (400, "UploadNotFoundException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": REPO, "uploadId": "00000000-0000-0000-0000-000000000000", "partFirstByte": 0, "partLastByte": 0, "layerPartBlob": "AA=="})),
        )
        .await,
    );
    // Pull-through cache rules: an upstream URL is where berth will send requests, so one
    // that points at a host berth should not reach over plain http, or that smuggles
    // credentials or a path, is refused before anything is stored.
    let rule = |url: &str, prefix: &str| {
        json(serde_json::json!({"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": url}))
    };
    for (input, body, want) in [
        (
            "CreatePullThroughCacheRule upstream http://169.254.169.254",
            rule("http://169.254.169.254", "meta"),
            (400, "UnsupportedUpstreamRegistryException"),
        ),
        (
            "CreatePullThroughCacheRule upstream with user:password@",
            rule("https://user:pw@quay.io", "creds"),
            (400, "UnsupportedUpstreamRegistryException"),
        ),
        (
            "CreatePullThroughCacheRule upstream with a path",
            rule("https://quay.io/../admin", "path"),
            (400, "UnsupportedUpstreamRegistryException"),
        ),
        (
            "CreatePullThroughCacheRule ecrRepositoryPrefix \"../x\"",
            rule("quay.io", "../x"),
            (400, "InvalidParameterException"),
        ),
        (
            "DescribePullThroughCacheRules nextToken that is not a token",
            json(serde_json::json!({"nextToken": "%%%"})),
            (400, "InvalidParameterException"),
        ),
    ] {
        let op = input.split(' ').next().unwrap_or_default();
        t.check(
            "ECR",
            input,
            want,
            ecr_raw(&server, op, Some(AUTH), body).await,
        );
    }
    // Replication: a destination is where berth will copy images, so one it cannot reach
    // (its own registry, a region it does not serve, a malformed account) is refused before
    // anything is stored; filters are the model's lower-case names.
    let replication = |region: &str, registry: &str, filter: &str| {
        json(serde_json::json!({"replicationConfiguration": {"rules": [{
            "destinations": [{"region": region, "registryId": registry}],
            "repositoryFilters": [{"filter": filter, "filterType": "PREFIX_MATCH"}]}]}}))
    };
    for (input, body) in [
        (
            "PutReplicationConfiguration to its own registry",
            replication("us-east-1", "000000000000", "team"),
        ),
        (
            "PutReplicationConfiguration region \"moon-base\" (not a region name)",
            replication("moon-base", "111111111111", "team"),
        ),
        (
            "PutReplicationConfiguration region \"../x\"",
            replication("../x", "111111111111", "team"),
        ),
        (
            "PutReplicationConfiguration registryId \"1e11\"",
            replication("us-east-1", "1e11", "team"),
        ),
        (
            "PutReplicationConfiguration filter \"../\"",
            replication("us-east-1", "111111111111", "../"),
        ),
        (
            "PutReplicationConfiguration filter of 257 characters",
            replication("us-east-1", "111111111111", &"a".repeat(257)),
        ),
    ] {
        t.check(
            "ECR",
            input,
            (400, "InvalidParameterException"),
            ecr_raw(&server, "PutReplicationConfiguration", Some(AUTH), body).await,
        );
    }
    t.check(
        "ECR",
        "DescribeImageReplicationStatus imageTag \"../x\"",
        (400, "ImageNotFoundException"),
        ecr_raw(
            &server,
            "DescribeImageReplicationStatus",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": REPO, "imageId": {"imageTag": "../x"}})),
        )
        .await,
    );
    // A stored part, so that completion gets as far as the digest.
    let stored = ecr_raw(
        &server,
        "UploadLayerPart",
        Some(AUTH),
        part(0, 3, "AAAAAA=="),
    )
    .await;
    assert_eq!(stored.0, 200);
    for (what, digest) in [
        ("md5 digest", "md5:d41d8cd98f00b204e9800998ecf8427e"),
        ("sha256 digest of 10 hex digits", "sha256:0123456789"),
        (
            "sha256 digest in upper case",
            &"sha256:"
                .chars()
                .chain("A".repeat(64).chars())
                .collect::<String>(),
        ),
    ] {
        t.check(
            "ECR",
            &format!("CompleteLayerUpload with a {what}"),
            (400, "InvalidLayerException"),
            ecr_raw(
                &server,
                "CompleteLayerUpload",
                Some(AUTH),
                json(serde_json::json!({"repositoryName": REPO, "uploadId": upload, "layerDigests": [digest]})),
            )
            .await,
        );
        t.check(
            "ECR",
            &format!("BatchGetImage with a {what}"),
            (200, "failures[0].failureCode=InvalidImageDigest"),
            ecr_failure(
                &server,
                "BatchGetImage",
                serde_json::json!({"repositoryName": REPO, "imageIds": [{"imageDigest": digest}]})
                    .to_string(),
            )
            .await,
        );
    }
    t.check(
        "ECR",
        "BatchCheckLayerAvailability with a sha512 digest",
        (200, "failures[0].failureCode=InvalidLayerDigest"),
        ecr_failure(
            &server,
            "BatchCheckLayerAvailability",
            serde_json::json!({"repositoryName": REPO, "layerDigests": [format!("sha512:{}", "a".repeat(128))]}).to_string(),
        )
        .await,
    );
    // Lifecycle policy text is parsed by berth, not by the model: bounded, and every refusal
    // is ECR's InvalidParameterException.
    let lifecycle = |text: String| {
        serde_json::json!({"repositoryName": REPO, "lifecyclePolicyText": text})
            .to_string()
            .into_bytes()
    };
    let rule = |selection: &str| {
        format!(
            r#"{{"rulePriority":1,"description":"hostile","selection":{selection},"action":{{"type":"expire"}}}}"#
        )
    };
    for (what, text) in [
        (
            "PutLifecyclePolicy text nested 15,000 arrays deep",
            format!("{}{}", "[".repeat(15_000), "]".repeat(15_000)),
        ),
        (
            "PutLifecyclePolicy text over 30,720 characters",
            format!(
                r#"{{"rules":[{}]}}"#,
                rule(&format!(
                    r#"{{"tagStatus":"tagged","tagPrefixList":["{}"],"countType":"imageCountMoreThan","countNumber":1}}"#,
                    "a".repeat(31_000)
                ))
            ),
        ),
        (
            "PutLifecyclePolicy countNumber 1e30",
            format!(
                r#"{{"rules":[{}]}}"#,
                rule(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1e30}"#)
            ),
        ),
        (
            "PutLifecyclePolicy two rules of one rulePriority",
            format!(
                r#"{{"rules":[{0},{0}]}}"#,
                rule(
                    r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#
                )
            ),
        ),
        (
            "PutLifecyclePolicy tagPatternList entry of 5 wildcards",
            format!(
                r#"{{"rules":[{}]}}"#,
                rule(
                    r#"{"tagStatus":"tagged","tagPatternList":["*a*b*c*d*"],"countType":"imageCountMoreThan","countNumber":1}"#
                )
            ),
        ),
    ] {
        t.check(
            "ECR",
            what,
            (400, "InvalidParameterException"),
            ecr_raw(&server, "PutLifecyclePolicy", Some(AUTH), lifecycle(text)).await,
        );
    }
    // Open uploads past the per-repository cap (3 here; 1000 by default).
    create_repo(&ecr, "hostile/cap").await;
    let mut last = (0, String::new());
    for _ in 0..4 {
        last = ecr_raw(
            &server,
            "InitiateLayerUpload",
            Some(AUTH),
            json(serde_json::json!({ "repositoryName": "hostile/cap" })),
        )
        .await;
    }
    t.check(
        "ECR",
        "InitiateLayerUpload past the open-upload cap",
        (400, "LimitExceededException"),
        last,
    );
    // A body that stops arriving: the idle timeout answers, nothing is stored.
    let head = ecr_head("CreateRepository", 100, r#"{"repositoryName""#);
    let (resp, open_for) =
        raw_tcp(&server, head.as_bytes(), Duration::from_secs(IDLE_SECS * 5)).await;
    assert!(
        open_for < Duration::from_secs(IDLE_SECS * 4),
        "stalled body held {open_for:?}"
    );
    t.check(
        "ECR",
        "request body that stalls (idle timeout)",
        (408, "RequestTimeoutException"),
        (status_line(&resp), json_value(&resp, "__type")),
    );

    // Resource tags (issue 15): refusals leave the repository's tags as they were.
    let arn = format!("arn:aws:ecr:us-east-1:000000000000:repository/{REPO}");
    for (input, body, want) in [
        (
            "TagResource with a reserved 'aws:' key",
            serde_json::json!({"resourceArn": arn, "tags": [{"Key": "aws:owner", "Value": "x"}]}),
            (400, "InvalidTagParameterException"),
        ),
        (
            "TagResource with a 129-character key",
            serde_json::json!({"resourceArn": arn, "tags": [{"Key": "k".repeat(129), "Value": "x"}]}),
            (400, "InvalidTagParameterException"),
        ),
        (
            "TagResource with an ECR Public ARN",
            serde_json::json!({
                "resourceArn": format!("arn:aws:ecr-public::000000000000:repository/{REPO}"),
                "tags": [{"Key": "k", "Value": "v"}],
            }),
            (400, "InvalidParameterException"),
        ),
        (
            "TagResource with another region's ARN",
            serde_json::json!({
                "resourceArn": format!("arn:aws:ecr:eu-west-1:000000000000:repository/{REPO}"),
                "tags": [{"Key": "k", "Value": "v"}],
            }),
            (400, "InvalidParameterException"),
        ),
        (
            "TagResource with 51 tags",
            serde_json::json!({
                "resourceArn": arn,
                "tags": (0..51).map(|i| serde_json::json!({"Key": format!("k{i}"), "Value": "v"})).collect::<Vec<_>>(),
            }),
            (400, "TooManyTagsException"),
        ),
        (
            "TagResource with a tag without Value",
            serde_json::json!({"resourceArn": arn, "tags": [{"Key": "k"}]}),
            (400, "InvalidParameterException"),
        ),
    ] {
        t.check(
            "ECR",
            input,
            want,
            ecr_raw(&server, "TagResource", Some(AUTH), json(body)).await,
        );
    }
    t.check(
        "ECR",
        "UntagResource of a reserved 'aws:' key",
        (400, "InvalidTagParameterException"),
        ecr_raw(
            &server,
            "UntagResource",
            Some(AUTH),
            json(serde_json::json!({"resourceArn": arn, "tagKeys": ["AWS:cloudformation:stack-name"]})),
        )
        .await,
    );
    // Account settings: an unknown name, a value the setting lacks, a name past 64.
    for (input, op, body) in [
        (
            "PutAccountSetting of an unknown name",
            "PutAccountSetting",
            serde_json::json!({"name": "DROP_TABLES", "value": "ENABLED"}),
        ),
        (
            "PutAccountSetting BLOB_MOUNTING=maybe",
            "PutAccountSetting",
            serde_json::json!({"name": "BLOB_MOUNTING", "value": "maybe"}),
        ),
        (
            "PutAccountSetting without value",
            "PutAccountSetting",
            serde_json::json!({"name": "BLOB_MOUNTING"}),
        ),
        (
            "GetAccountSetting with a 65-character name",
            "GetAccountSetting",
            serde_json::json!({"name": "N".repeat(65)}),
        ),
    ] {
        t.check(
            "ECR",
            input,
            (400, "InvalidParameterException"),
            ecr_raw(&server, op, Some(AUTH), json(body)).await,
        );
    }
    let blob_mounting = ecr
        .get_account_setting()
        .name("BLOB_MOUNTING")
        .send()
        .await
        .unwrap();
    assert_eq!(
        blob_mounting.value(),
        Some("ENABLED"),
        "a refused put changed it"
    );
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(tags.tags().is_empty(), "refused tags were stored: {tags:?}");

    // Repository settings, scanning, referrers and creation templates (issue 15): requests no
    // SDK sends; none of them changes the repository or stores a template.
    let digest0 = format!("sha256:{}", "0".repeat(64));
    for (input, op, body, want) in [
        (
            "PutImageTagMutability without imageTagMutability",
            "PutImageTagMutability",
            serde_json::json!({"repositoryName": REPO}),
            "InvalidParameterException",
        ),
        (
            "PutImageTagMutability with filterType REGEX",
            "PutImageTagMutability",
            serde_json::json!({"repositoryName": REPO, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filterType": "REGEX", "filter": ".*"}]}),
            "InvalidParameterException",
        ),
        (
            "PutImageTagMutability with a 129-character filter",
            "PutImageTagMutability",
            serde_json::json!({"repositoryName": REPO, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "a".repeat(129)}]}),
            "InvalidParameterException",
        ),
        (
            "PutImageScanningConfiguration with scanOnPush \"yes\"",
            "PutImageScanningConfiguration",
            serde_json::json!({"repositoryName": REPO, "imageScanningConfiguration": {"scanOnPush": "yes"}}),
            "SerializationException",
        ),
        (
            "PutRegistryScanningConfiguration rule without repositoryFilters",
            "PutRegistryScanningConfiguration",
            serde_json::json!({"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH"}]}),
            "InvalidParameterException",
        ),
        (
            "PutRegistryScanningConfiguration with 101 filters",
            "PutRegistryScanningConfiguration",
            serde_json::json!({"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": (0..101).map(|i| serde_json::json!({"filter": format!("r{i}"), "filterType": "WILDCARD"})).collect::<Vec<_>>()}]}),
            "InvalidParameterException",
        ),
        (
            "BatchGetRepositoryScanningConfiguration with no names",
            "BatchGetRepositoryScanningConfiguration",
            serde_json::json!({"repositoryNames": []}),
            "InvalidParameterException",
        ),
        (
            "ListImageReferrers without subjectId",
            "ListImageReferrers",
            serde_json::json!({"repositoryName": REPO}),
            "InvalidParameterException",
        ),
        (
            "ListImageReferrers with maxResults 0",
            "ListImageReferrers",
            serde_json::json!({"repositoryName": REPO, "subjectId": {"imageDigest": digest0}, "maxResults": 0}),
            "InvalidParameterException",
        ),
        (
            "StartImageScan without imageId",
            "StartImageScan",
            serde_json::json!({"repositoryName": REPO}),
            "InvalidParameterException",
        ),
        (
            "UpdateImageStorageClass without targetStorageClass",
            "UpdateImageStorageClass",
            serde_json::json!({"repositoryName": REPO, "imageId": {"imageDigest": digest0}}),
            "InvalidParameterException",
        ),
        (
            "UpdateImageStorageClass targetStorageClass \"GLACIER\"",
            "UpdateImageStorageClass",
            serde_json::json!({"repositoryName": REPO, "imageId": {"imageDigest": digest0}, "targetStorageClass": "GLACIER"}),
            "InvalidParameterException",
        ),
        (
            "UpdateImageStorageClass imageId without digest or tag",
            "UpdateImageStorageClass",
            serde_json::json!({"repositoryName": REPO, "imageId": {}, "targetStorageClass": "ARCHIVE"}),
            "InvalidParameterException",
        ),
        (
            "RegisterPullTimeUpdateExclusion principalArn \"../x\"",
            "RegisterPullTimeUpdateExclusion",
            serde_json::json!({"principalArn": "../x"}),
            "InvalidParameterException",
        ),
        (
            "DeregisterPullTimeUpdateExclusion without principalArn",
            "DeregisterPullTimeUpdateExclusion",
            serde_json::json!({}),
            "InvalidParameterException",
        ),
        (
            "ListPullTimeUpdateExclusions with maxResults 0",
            "ListPullTimeUpdateExclusions",
            serde_json::json!({"maxResults": 0}),
            "InvalidParameterException",
        ),
        (
            "CreateRepositoryCreationTemplate without appliedFor",
            "CreateRepositoryCreationTemplate",
            serde_json::json!({"prefix": "team"}),
            "InvalidParameterException",
        ),
        (
            "CreateRepositoryCreationTemplate prefix \"../x\"",
            "CreateRepositoryCreationTemplate",
            serde_json::json!({"prefix": "../x", "appliedFor": ["CREATE_ON_PUSH"]}),
            "InvalidParameterException",
        ),
        (
            "CreateRepositoryCreationTemplate with a KMS key and AES256",
            "CreateRepositoryCreationTemplate",
            serde_json::json!({"prefix": "team", "appliedFor": ["CREATE_ON_PUSH"],
                "encryptionConfiguration": {"encryptionType": "AES256",
                    "kmsKey": "arn:aws:kms:us-east-1:000000000000:key/abc"}}),
            "InvalidParameterException",
        ),
        (
            "DeleteRepositoryCreationTemplate prefix of 257 characters",
            "DeleteRepositoryCreationTemplate",
            serde_json::json!({"prefix": "a".repeat(257)}),
            "InvalidParameterException",
        ),
    ] {
        t.check(
            "ECR",
            input,
            (400, want),
            ecr_raw(&server, op, Some(AUTH), json(body)).await,
        );
    }
    let repo_now = ecr
        .describe_repositories()
        .repository_names(REPO)
        .send()
        .await
        .unwrap();
    let r = &repo_now.repositories()[0];
    assert_eq!(
        r.image_tag_mutability().map(|m| m.as_str()),
        Some("MUTABLE")
    );
    assert!(r.image_tag_mutability_exclusion_filters().is_empty());
    let templates = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    assert!(templates.repository_creation_templates().is_empty());

    // --- OCI /v2 ---
    let get = |path: &str| oci.req(Method::GET, path);
    t.check(
        "OCI",
        "GET /v2/ without credentials",
        (401, "UNAUTHORIZED"),
        oci_send(server.http().get(format!("{}/v2/", server.endpoint))).await,
    );
    t.check(
        "OCI",
        "repository name in upper case",
        (400, "NAME_INVALID"),
        oci_send(get("/v2/Hostile/Repo/tags/list")).await,
    );
    t.check(
        "OCI",
        "percent-encoded ../ in the repository name",
        (400, "NAME_INVALID"),
        raw_get(
            &server,
            &oci.auth,
            "/v2/hostile/%2e%2e/%2e%2e/etc/tags/list",
        )
        .await,
    );
    t.check(
        "OCI",
        "../ in the repository name",
        (400, "NAME_INVALID"),
        raw_get(&server, &oci.auth, "/v2/hostile/../../etc/tags/list").await,
    );
    t.check(
        "OCI",
        "blob digest with the md5 algorithm",
        (400, "DIGEST_INVALID"),
        oci_send(get(&format!(
            "/v2/{REPO}/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"
        )))
        .await,
    );
    t.check(
        "OCI",
        "blob digest of the wrong length",
        (400, "DIGEST_INVALID"),
        oci_send(get(&format!("/v2/{REPO}/blobs/sha256:abc"))).await,
    );
    t.check(
        "OCI",
        "blob GET by a name that is not a digest",
        (404, "BLOB_UNKNOWN"),
        oci_send(get(&format!("/v2/{REPO}/blobs/latest"))).await,
    );
    t.check(
        "OCI",
        "referrers of a digest of the wrong length",
        (400, "DIGEST_INVALID"),
        oci_send(get(&format!("/v2/{REPO}/referrers/sha256:abc"))).await,
    );
    t.check(
        "OCI",
        "manifest GET by a reference that is neither tag nor digest",
        (404, "MANIFEST_UNKNOWN"),
        oci_send(get(&format!("/v2/{REPO}/manifests/-bad%21"))).await,
    );
    t.check(
        "OCI",
        "manifest HEAD of `.INVALID_MANIFEST_NAME` (no body on HEAD)",
        (404, "<none>"),
        oci_send(oci.req(
            Method::HEAD,
            &format!("/v2/{REPO}/manifests/.INVALID_MANIFEST_NAME"),
        ))
        .await,
    );
    let blob_range = |range: &'static str| {
        let req = get(&format!("/v2/{REPO}/blobs/{layer_digest}")).header("range", range);
        async move {
            let r = req.send().await.unwrap();
            let content_range = r
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("<none>")
                .to_owned();
            (
                r.status().as_u16(),
                format!("Content-Range: {content_range}"),
            )
        }
    };
    t.check(
        "OCI",
        "blob GET with Range `bytes=5000-`, past the end of 1001 bytes",
        (416, "Content-Range: bytes */1001"),
        blob_range("bytes=5000-").await,
    );
    t.check(
        "OCI",
        "blob GET with the empty suffix Range `bytes=-0`",
        (416, "Content-Range: bytes */1001"),
        blob_range("bytes=-0").await,
    );
    t.check(
        "OCI",
        "blob GET with a suffix Range longer than the blob, `bytes=-99999`",
        (206, "Content-Range: bytes 0-1000/1001"),
        blob_range("bytes=-99999").await,
    );
    t.check(
        "OCI",
        "blob DELETE of a layer an image references",
        (405, "DENIED"),
        oci_send(oci.req(Method::DELETE, &format!("/v2/{REPO}/blobs/{layer_digest}"))).await,
    );
    t.check(
        "OCI",
        "blob DELETE by `latest`, a name that is not a digest",
        (404, "BLOB_UNKNOWN"),
        oci_send(oci.req(Method::DELETE, &format!("/v2/{REPO}/blobs/latest"))).await,
    );
    t.check(
        "OCI",
        "tags/list with n=-1",
        (400, "PAGINATION_NUMBER_INVALID"),
        oci_send(get(&format!("/v2/{REPO}/tags/list?n=-1"))).await,
    );
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let put = |reference: &str, body: Vec<u8>| {
        oci.req(Method::PUT, &format!("/v2/{REPO}/manifests/{reference}"))
            .header("content-type", mt)
            .body(body)
    };
    t.check(
        "OCI",
        "manifest PUT with the tag `.INVALID_MANIFEST_NAME`",
        (400, "TAG_INVALID"),
        oci_send(put(".INVALID_MANIFEST_NAME", manifest.clone().into_bytes())).await,
    );
    t.check(
        "OCI",
        "manifest PUT over 4 MiB",
        (413, "MANIFEST_INVALID"),
        oci_send(put("big", vec![b' '; 4 * MIB + 1])).await,
    );
    t.check(
        "OCI",
        "manifest PUT that is not JSON",
        (400, "MANIFEST_INVALID"),
        oci_send(put("junk", b"{\"schemaVersion\":".to_vec())).await,
    );
    t.check(
        "OCI",
        "manifest PUT of invalid UTF-8",
        (400, "MANIFEST_INVALID"),
        oci_send(put(
            "junk",
            b"{\"schemaVersion\":2,\"x\":\"\xff\"}".to_vec(),
        ))
        .await,
    );
    t.check(
        "OCI",
        "manifest PUT naming a blob the repository lacks",
        (400, "MANIFEST_BLOB_UNKNOWN"),
        oci_send(put(
            "missing",
            oci_manifest(
                (&layer_digest, 1001),
                &[(&format!("sha256:{}", "0".repeat(64)), 5)],
            )
            .into_bytes(),
        ))
        .await,
    );
    t.check(
        "OCI",
        "manifest PUT by digest that does not match the body",
        (400, "DIGEST_INVALID"),
        oci_send(put(
            &format!("sha256:{}", "1".repeat(64)),
            manifest.clone().into_bytes(),
        ))
        .await,
    );
    let start = oci
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let patch = |range: &str, body: &'static [u8]| {
        oci.req(Method::PATCH, &location)
            .header("content-type", "application/octet-stream")
            .header("content-range", range)
            .body(body)
    };
    for (what, range) in [
        ("Content-Range not starting at the received offset", "5-9"),
        ("Content-Range that is not a range", "bytes=abc"),
        ("Content-Range with last before first", "4-0"),
        ("Content-Range whose length disagrees with the body", "0-99"),
    ] {
        t.check(
            "OCI",
            what,
            (416, "BLOB_UPLOAD_INVALID"),
            oci_send(patch(range, b"hello")).await,
        );
    }
    t.check(
        "OCI",
        "Content-Range past the 52,000 MiB layer limit (body never sent)",
        (403, "DENIED"),
        {
            let path = location.trim_start_matches(&server.endpoint);
            let head = format!(
                "PATCH {path} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/octet-stream\r\ncontent-range: 0-54525952000\r\ncontent-length: 54525952001\r\n\r\n",
                oci.auth
            );
            let (resp, _) = raw_tcp(&server, head.as_bytes(), Duration::from_secs(5)).await;
            (status_line(&resp), json_value(&resp, "errors"))
        },
    );
    t.check(
        "OCI",
        "upload finished with a digest its bytes do not have",
        (400, "DIGEST_INVALID"),
        oci_send(
            oci.req(
                Method::PUT,
                &format!("{location}?digest=sha256:{}", "2".repeat(64)),
            )
            .body(&b"abc"[..]),
        )
        .await,
    );
    t.check(
        "OCI",
        "upload session id `..%2f..%2fmeta.sqlite`",
        (404, "NOT_FOUND"),
        raw_get(
            &server,
            &oci.auth,
            &format!("/v2/{REPO}/blobs/uploads/..%2f..%2fmeta.sqlite"),
        )
        .await,
    );
    // The ECR upload from above, cancelled through /v2: the same session, gone for both APIs.
    let cancel = format!("/v2/{REPO}/blobs/uploads/{upload}");
    let r = oci.req(Method::DELETE, &cancel).send().await.unwrap();
    assert_eq!(r.status(), 204);
    t.check(
        "OCI",
        "upload session DELETE of a session already cancelled",
        (404, "BLOB_UPLOAD_UNKNOWN"),
        oci_send(oci.req(Method::DELETE, &cancel)).await,
    );
    t.check(
        "ECR",
        "UploadLayerPart to an upload cancelled through /v2",
        (400, "UploadNotFoundException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            part(0, 3, "AAAAAA=="),
        )
        .await,
    );
    t.check(
        "OCI",
        "blob mount (no `from`) of `../../etc/passwd`: a new upload session instead",
        (202, "<none>"),
        oci_send(oci.req(
            Method::POST,
            &format!("/v2/{REPO}/blobs/uploads/?mount=../../etc/passwd"),
        ))
        .await,
    );
    // A PATCH body that stops arriving: answered at the idle timeout, nothing acknowledged.
    let stalled = oci
        .req(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let stalled_at = stalled.headers()["location"].to_str().unwrap().to_owned();
    let head = format!(
        "PATCH {} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\nonly ten b",
        stalled_at.trim_start_matches(&server.endpoint),
        oci.auth
    );
    let (resp, open_for) =
        raw_tcp(&server, head.as_bytes(), Duration::from_secs(IDLE_SECS * 5)).await;
    assert!(
        open_for < Duration::from_secs(IDLE_SECS * 4),
        "stalled PATCH held {open_for:?}"
    );
    t.check(
        "OCI",
        "PATCH body that stalls (idle timeout)",
        (400, "BLOB_UPLOAD_INVALID"),
        (status_line(&resp), json_value(&resp, "errors")),
    );
    let status = oci.req(Method::GET, &stalled_at).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(
        status.headers()["range"],
        "0-0",
        "no byte of the stalled PATCH is acknowledged"
    );

    // A slow client declaring a large part holds the whole body budget (its reservation is
    // taken on its headers); parts of others are refused unread after the wait.
    let addr = server.endpoint.trim_start_matches("http://");
    let mut held = TcpStream::connect(addr).await.unwrap();
    held.write_all(ecr_head("UploadLayerPart", 30 * MIB, "{\"layerPartBlob\":\"").as_bytes())
        .await
        .unwrap();
    held.write_all(&vec![b'A'; MIB]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.check(
        "ECR",
        "UploadLayerPart while slow clients hold the whole `--max-inflight-part-bytes` budget",
        (400, "ThrottlingException"),
        ecr_raw(
            &server,
            "UploadLayerPart",
            Some(AUTH),
            json(serde_json::json!({"repositoryName": REPO, "uploadId": "00000000-0000-4000-8000-000000000000", "partFirstByte": 0, "partLastByte": 99_999, "layerPartBlob": base64_simd::STANDARD.encode_to_string(vec![0u8; 100_000])})),
        )
        .await,
    );
    t.check(
        "OCI",
        "PATCH while slow clients hold the whole `--max-inflight-part-bytes` budget",
        (429, "TOOMANYREQUESTS"),
        oci_send(
            oci.req(Method::PATCH, &stalled_at)
                .header("content-type", "application/octet-stream")
                .body(&b"hello"[..]),
        )
        .await,
    );
    drop(held);
    let status = oci.req(Method::GET, &stalled_at).send().await.unwrap();
    assert_eq!(
        status.headers()["range"],
        "0-0",
        "nothing throttled is stored"
    );

    // --- ECR Public JSON API (same server, same port) ---
    const PUB: &str = "us-east-1/ecr-public";
    let created = public_raw(
        &server,
        "CreateRepository",
        PUB,
        json(serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"description": "kept"}})),
    )
    .await;
    assert_eq!(created, (200, "OK".to_owned()));
    let big_logo = "A".repeat(512_004 / 3 * 4 + 4);
    // (input, operation, signature scope, body, expected answer)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, (u16, &'a str));
    let public_cases: Vec<Case> = vec![
        (
            "BatchGetImage, which ECR Public lacks",
            "BatchGetImage",
            PUB,
            json(serde_json::json!({"repositoryName": "hostile/public"})),
            (400, "UnknownOperationException"),
        ),
        (
            "GetDownloadUrlForLayer, which ECR Public lacks",
            "GetDownloadUrlForLayer",
            PUB,
            json(serde_json::json!({})),
            (400, "UnknownOperationException"),
        ),
        (
            "signed for the service ecr",
            "DescribeRegistries",
            "us-east-1/ecr",
            b"{}".to_vec(),
            (400, "InvalidSignatureException"),
        ),
        (
            "signed for us-west-2",
            "CreateRepository",
            "us-west-2/ecr-public",
            json(serde_json::json!({"repositoryName": "hostile/west"})),
            (400, "UnsupportedCommandException"),
        ),
        (
            "JSON nested 100,000 arrays deep",
            "CreateRepository",
            PUB,
            "[".repeat(100_000).into_bytes(),
            (400, "SerializationException"),
        ),
        (
            "repositoryName of 206 characters (ECR allows 256)",
            "CreateRepository",
            PUB,
            json(serde_json::json!({"repositoryName": "a".repeat(206)})),
            (400, "InvalidParameterException"),
        ),
        (
            "repositoryName \"a__b\" (ECR's pattern allows it)",
            "CreateRepository",
            PUB,
            json(serde_json::json!({"repositoryName": "a__b"})),
            (400, "InvalidParameterException"),
        ),
        (
            "repositoryName \"../../etc\"",
            "CreateRepository",
            PUB,
            json(serde_json::json!({"repositoryName": "../../etc"})),
            (400, "InvalidParameterException"),
        ),
        (
            "catalogData.description of 1 MiB",
            "PutRepositoryCatalogData",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"description": "d".repeat(MIB)}}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "catalogData.logoImageBlob of 512,001+ bytes",
            "PutRepositoryCatalogData",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"logoImageBlob": big_logo}}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "catalogData.logoImageBlob that is not base64",
            "PutRepositoryCatalogData",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"logoImageBlob": "<svg/>"}}),
            ),
            (400, "SerializationException"),
        ),
        (
            "catalogData.architectures of 51 entries",
            "PutRepositoryCatalogData",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"architectures": vec!["x"; 51]}}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "catalogData.operatingSystems entry of 51 characters",
            "PutRepositoryCatalogData",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "catalogData": {"operatingSystems": ["o".repeat(51)]}}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "tag key of 129 characters",
            "TagResource",
            PUB,
            json(
                serde_json::json!({"resourceArn": "arn:aws:ecr-public::000000000000:repository/hostile/public", "tags": [{"Key": "k".repeat(129), "Value": "v"}]}),
            ),
            (400, "InvalidTagParameterException"),
        ),
        (
            "201 tags in one call",
            "TagResource",
            PUB,
            json(
                serde_json::json!({"resourceArn": "arn:aws:ecr-public::000000000000:repository/hostile/public", "tags": (0..201).map(|i| serde_json::json!({"Key": format!("k{i}"), "Value": "v"})).collect::<Vec<_>>()}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "TagResource with a private (ecr) ARN",
            "TagResource",
            PUB,
            json(
                serde_json::json!({"resourceArn": format!("arn:aws:ecr:us-east-1:000000000000:repository/{REPO}"), "tags": []}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "resourceArn of 2049 characters",
            "ListTagsForResource",
            PUB,
            json(serde_json::json!({"resourceArn": "a".repeat(2049)})),
            (400, "InvalidParameterException"),
        ),
        (
            "registryId alias no registry has",
            "InitiateLayerUpload",
            PUB,
            json(
                serde_json::json!({"registryId": "nosuchalias", "repositoryName": "hostile/public"}),
            ),
            (400, "RegistryNotFoundException"),
        ),
        (
            "registryId \"../x\" where an account id is due",
            "DescribeImages",
            PUB,
            json(serde_json::json!({"registryId": "../x", "repositoryName": "hostile/public"})),
            (400, "InvalidParameterException"),
        ),
        (
            "maxResults 5000000000",
            "DescribeRepositories",
            PUB,
            json(serde_json::json!({"maxResults": 5_000_000_000u64})),
            (400, "InvalidParameterException"),
        ),
        (
            "displayName of 101 characters",
            "PutRegistryCatalogData",
            PUB,
            json(serde_json::json!({"displayName": "n".repeat(101)})),
            (400, "InvalidParameterException"),
        ),
        (
            "UploadLayerPart of 20 MiB + 1 byte",
            "UploadLayerPart",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "uploadId": "00000000-0000-4000-8000-000000000000", "partFirstByte": 0, "partLastByte": 20 * MIB, "layerPartBlob": base64_simd::STANDARD.encode_to_string(vec![0u8; 20 * MIB + 1])}),
            ),
            (400, "InvalidParameterException"),
        ),
        (
            "PutImage manifest that is not JSON",
            "PutImage",
            PUB,
            json(
                serde_json::json!({"repositoryName": "hostile/public", "imageManifest": "not json", "imageTag": "x"}),
            ),
            (400, "InvalidParameterException"),
        ),
    ];
    for (input, op, scope, body, want) in public_cases {
        t.check(
            "ECR Public",
            input,
            want,
            public_raw(&server, op, scope, body).await,
        );
    }
    // The public repository and its catalog data are as created; nothing else was made.
    let listed = public_raw(&server, "DescribeRepositories", PUB, b"{}".to_vec()).await;
    assert_eq!(listed.0, 200);
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header(
            "x-amz-target",
            "SpencerFrontendService.DescribeRepositories",
        )
        .header("authorization", public_auth(PUB))
        .body("{}")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["repositories"].as_array().map(Vec::len), Some(1), "{v}");
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header(
            "x-amz-target",
            "SpencerFrontendService.GetRepositoryCatalogData",
        )
        .header("authorization", public_auth(PUB))
        .body(r#"{"repositoryName":"hostile/public"}"#)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["catalogData"]["description"], "kept", "{v}");

    // --- The connection itself ---
    let (resp, open_for) = raw_tcp(
        &server,
        b"GET /v2/ HTTP/1.1\r\nhost: x\r\nx-slow: ",
        Duration::from_secs(IDLE_SECS * 5),
    )
    .await;
    assert!(
        open_for < Duration::from_secs(IDLE_SECS * 4)
            && open_for >= Duration::from_secs(IDLE_SECS - 1),
        "a client that never finishes its headers is cut off at the idle timeout, not before: {open_for:?}"
    );
    t.rows.push(format!(
        "| HTTP | request headers never finished (slow loris) | {} | connection closed after {IDLE_SECS} s (`--idle-timeout-secs`) |",
        if resp.is_empty() { "—".to_owned() } else { status_line(&resp).to_string() }
    ));
    let (_, open_for) = raw_tcp(&server, b"", Duration::from_secs(IDLE_SECS * 5)).await;
    assert!(
        open_for < Duration::from_secs(IDLE_SECS * 4),
        "idle connection held {open_for:?}"
    );
    t.rows.push(format!(
        "| HTTP | connection opened and left silent | — | closed after {IDLE_SECS} s |"
    ));

    // Nothing stored changed, and the server still serves.
    let got = ecr
        .batch_get_image()
        .repository_name(REPO)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("keep")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    assert_eq!(
        got.images()[0].image_id().unwrap().image_digest(),
        Some(image_digest.as_str())
    );
    let repos = ecr.describe_repositories().send().await.unwrap();
    assert_eq!(repos.repositories().len(), 2, "no repository was created");

    assert!(t.mismatches.is_empty(), "{}", t.mismatches.join("\n"));
    let doc = format!(
        "# Hostile inputs and what berth answers\n\n\
         Generated by `crates/server/tests/it/hostile.rs` from the responses of a real server \
         (regenerate with `BERTH_WRITE_DOCS=1 cargo test -p berth --test it hostile`; the test \
         fails when this table and the responses disagree). After every case the test checks \
         that the stored image is unchanged and the server still serves. ECR rows give the \
         awsJson `__type`; OCI rows the `errors[0].code`.\n\n\
         | API | input | status | answer |\n|---|---|---|---|\n{}\n",
        t.rows.join("\n")
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hostile-inputs.md");
    if std::env::var_os("BERTH_WRITE_DOCS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    } else {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == doc,
            "docs/hostile-inputs.md is out of date: run BERTH_WRITE_DOCS=1 cargo test -p berth --test it hostile"
        );
    }
}
