//! SigV4 verification and accounts: right keys pass, every kind of bad signature gets AWS's
//! exception, and one account cannot reach another's registry.

use auth::sigv4::{self, RequestParts};
use sha2::{Digest as _, Sha256};

use crate::harness::*;

fn client(server: &TestServer, akid: &str, secret: &str) -> aws_sdk_ecr::Client {
    ecr_client_as(&server.endpoint, akid, secret)
}

#[tokio::test]
async fn wrong_secret_and_unknown_key_are_refused() {
    let server = TestServer::start().await;
    server
        .ecr()
        .describe_repositories()
        .send()
        .await
        .expect("the right key passes");
    let e = client(&server, ACCESS_KEY, "not-the-secret")
        .describe_repositories()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException");
    let e = client(&server, "AKIDUNKNOWN", SECRET_KEY)
        .describe_repositories()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnrecognizedClientException");
    // A refused request changed nothing.
    let e = client(&server, ACCESS_KEY, "nope")
        .create_repository()
        .repository_name("x1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException");
    assert!(
        server
            .ecr()
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
}

/// A raw request signed by berth's own signer (checked against AWS's test suite), so that the
/// test can then tamper with exactly one thing.
struct Raw {
    target: String,
    body: String,
    amz_date: String,
    signed: Vec<&'static str>,
}

impl Raw {
    fn new(target: &str, body: &str) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Raw {
            target: format!("AmazonEC2ContainerRegistry_V20150921.{target}"),
            body: body.to_owned(),
            amz_date: sigv4::format_amz_date(now),
            signed: vec!["content-type", "host", "x-amz-date", "x-amz-target"],
        }
    }

    fn authorization(&self, host: &str) -> (String, String) {
        let headers: Vec<(String, String)> = [
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("host", host.to_owned()),
            ("x-amz-date", self.amz_date.clone()),
            ("x-amz-target", self.target.clone()),
        ]
        .into_iter()
        .filter(|(n, _)| self.signed.contains(n))
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
        let signed_headers: Vec<String> = self.signed.iter().map(|s| (*s).to_owned()).collect();
        let auth = sigv4::Authorization {
            access_key_id: ACCESS_KEY.into(),
            date: self.amz_date[..8].to_owned(),
            region: "us-east-1".into(),
            service: "ecr".into(),
            signed_headers: signed_headers.clone(),
            signature: String::new(),
        };
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers,
            payload_sha256: hex::encode(Sha256::digest(self.body.as_bytes())),
        };
        let sig = sigv4::expected_signature(SECRET_KEY, &auth, &self.amz_date, &parts);
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}/us-east-1/ecr/aws4_request, SignedHeaders={}, Signature={sig}",
            &self.amz_date[..8],
            signed_headers.join(";")
        );
        (header, sig)
    }

    /// Sends the request, after `tamper` has changed (target, body, date) post-signing.
    async fn send(
        &self,
        server: &TestServer,
        tamper: impl FnOnce(&mut String, &mut String, &mut String),
    ) -> (u16, serde_json::Value, String) {
        let host = server.endpoint.trim_start_matches("http://").to_owned();
        let (authz, sig) = self.authorization(&host);
        let (mut target, mut body, mut date) = (
            self.target.clone(),
            self.body.clone(),
            self.amz_date.clone(),
        );
        tamper(&mut target, &mut body, &mut date);
        let mut req = server
            .http()
            .post(format!("{}/", server.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header("authorization", authz)
            .body(body);
        if !date.is_empty() {
            req = req.header("x-amz-date", date);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_default(), sig)
    }
}

#[tokio::test]
async fn tampered_expired_and_incomplete_signatures() {
    let server = TestServer::start().await;
    let raw = Raw::new("CreateRepository", r#"{"repositoryName":"team/app"}"#);
    let kind = |v: &serde_json::Value| v["__type"].as_str().unwrap_or("").to_owned();

    let (s, v, _) = raw.send(&server, |_, _, _| {}).await;
    assert_eq!(
        (s, v["repository"]["repositoryName"].as_str()),
        (200, Some("team/app")),
        "{v}"
    );

    let (s, v, sig) = raw
        .send(&server, |_, b, _| {
            *b = r#"{"repositoryName":"team/evil"}"#.into()
        })
        .await;
    assert_eq!(
        (s, kind(&v).as_str()),
        (400, "InvalidSignatureException"),
        "tampered body"
    );
    let text = v.to_string();
    assert!(
        !text.contains(&sig) && !text.contains(SECRET_KEY),
        "never reveal the signature or the secret"
    );
    let (_, v, _) = raw
        .send(&server, |t, _, _| {
            *t = t.replace("CreateRepository", "DeleteRepository")
        })
        .await;
    assert_eq!(
        kind(&v),
        "InvalidSignatureException",
        "tampered signed header"
    );

    let old = Raw {
        amz_date: sigv4::format_amz_date(sigv4::parse_amz_date(&raw.amz_date).unwrap() - 20 * 60),
        ..Raw::new("DescribeRepositories", "{}")
    };
    let (_, v, _) = old.send(&server, |_, _, _| {}).await;
    assert_eq!(kind(&v), "InvalidSignatureException");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired: "),
        "{v}"
    );
    let future = Raw {
        amz_date: sigv4::format_amz_date(sigv4::parse_amz_date(&raw.amz_date).unwrap() + 20 * 60),
        ..Raw::new("DescribeRepositories", "{}")
    };
    let (_, v, _) = future.send(&server, |_, _, _| {}).await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature not yet current: "),
        "{v}"
    );

    let (_, v, _) = raw.send(&server, |_, _, d| d.clear()).await;
    assert_eq!(kind(&v), "IncompleteSignatureException", "no X-Amz-Date");
    let unsigned_host = Raw {
        signed: vec!["content-type", "x-amz-date", "x-amz-target"],
        ..Raw::new("DescribeRepositories", "{}")
    };
    let (_, v, _) = unsigned_host.send(&server, |_, _, _| {}).await;
    assert_eq!(
        kind(&v),
        "IncompleteSignatureException",
        "host must be signed"
    );
}

#[tokio::test]
async fn accounts_are_separate_registries() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(
        &cfg,
        "[[access-keys]]\nid = \"AKIDOTHER\"\nsecret = \"other-secret\"\naccount-id = \"111111111111\"\narn = \"arn:aws:iam::111111111111:user/other\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let mine = server.ecr();
    let theirs = client(&server, "AKIDOTHER", "other-secret");
    create_repo(&mine, "team/app").await;
    let created = theirs
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.repository().unwrap().registry_id(),
        Some("111111111111"),
        "registryId defaults to the caller's account"
    );
    push_small_image(&mine, "team/app", "v1", 1).await;
    assert!(
        theirs
            .list_images()
            .repository_name("team/app")
            .send()
            .await
            .unwrap()
            .image_ids()
            .is_empty()
    );

    // Another account's registry needs a policy that allows it; berth has none yet.
    let e = theirs
        .describe_repositories()
        .registry_id("000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(format!("{:?}", e).contains("arn:aws:iam::111111111111:user/other"));
    let e = theirs
        .batch_get_image()
        .registry_id("000000000000")
        .repository_name("team/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    // Their registry password works on /v2 for their registry only.
    let out = theirs.get_authorization_token().send().await.unwrap();
    let auth = format!(
        "Basic {}",
        out.authorization_data()[0].authorization_token().unwrap()
    );
    let r = server
        .http()
        .get(format!("{}/v2/_catalog", server.endpoint))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["team/app"]));
    let r = server
        .http()
        .get(format!("{}/v2/team/app/tags/list", server.endpoint))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!([]), "their team/app, not ours");
}

/// A large part (its body hashed on another thread while it arrives) whose bytes were changed
/// after signing is refused and leaves the upload where it was: the next part at the same
/// offset is taken, and the layer's digest covers only the parts acknowledged.
#[tokio::test]
async fn a_tampered_part_leaves_the_upload_where_it_was() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let id = initiate_upload(&ecr, "team/app").await;
    let kind = |v: &serde_json::Value| v["__type"].as_str().unwrap_or("").to_owned();
    let part = |data: &[u8], first: usize| {
        Raw::new(
            "UploadLayerPart",
            &format!(
                r#"{{"repositoryName":"team/app","uploadId":"{id}","partFirstByte":{first},"partLastByte":{},"layerPartBlob":"{}"}}"#,
                first + data.len() - 1,
                base64_simd::STANDARD.encode_to_string(data)
            ),
        )
    };
    // One base64 character changed in the middle: same length, valid JSON and base64.
    let flip = |b: &mut String| {
        let at = b.len() / 2;
        let c = if &b[at..=at] == "A" { "B" } else { "A" };
        b.replace_range(at..=at, c);
    };
    let first = random_bytes(5 * 1024 * 1024, 1);
    let second = random_bytes(2 * 1024 * 1024, 2);

    let (s, v, _) = part(&first, 0).send(&server, |_, b, _| flip(b)).await;
    assert_eq!(
        (s, kind(&v).as_str()),
        (400, "InvalidSignatureException"),
        "{v}"
    );
    let (s, v, _) = part(&first, 0).send(&server, |_, _, _| {}).await;
    assert_eq!(
        (s, v["lastByteReceived"].as_i64()),
        (200, Some(first.len() as i64 - 1)),
        "{v}"
    );
    let (s, v, _) = part(&second, first.len())
        .send(&server, |_, b, _| flip(b))
        .await;
    assert_eq!(
        (s, kind(&v).as_str()),
        (400, "InvalidSignatureException"),
        "{v}"
    );
    let (s, v, _) = part(&second, first.len()).send(&server, |_, _, _| {}).await;
    assert_eq!(
        (s, v["lastByteReceived"].as_i64()),
        (200, Some((first.len() + second.len()) as i64 - 1)),
        "{v}"
    );
    let layer = [first, second].concat();
    let done = ecr
        .complete_layer_upload()
        .repository_name("team/app")
        .upload_id(&id)
        .layer_digests(sha256_digest(&layer))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(&layer).as_str()));
}
