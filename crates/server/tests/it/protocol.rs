//! The awsJson 1.1 framing, checked with raw requests an SDK would not send, and
//! GetAuthorizationToken.

use crate::harness::*;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd";

async fn raw(
    server: &TestServer,
    target: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut req = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerRegistry_V20150921.{target}"),
        )
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json =
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(serde_json::Value::Null);
    (status, json, headers)
}

/// InitiateLayerUpload as a raw request: the upload id.
async fn initiate_raw(server: &TestServer, repo: &str) -> String {
    let (s, b, _) = raw(
        server,
        "InitiateLayerUpload",
        Some(AUTH),
        &format!(r#"{{"repositoryName":"{repo}"}}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["uploadId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn framing_errors_use_aws_exception_names() {
    // No keys: the fixed signature below passes, so the framing itself is what is checked.
    let server = TestServer::start_without_keys().await;
    let (s, b, h) = raw(&server, "DescribeRepositories", None, "{}").await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("MissingAuthenticationTokenException"))
    );
    assert!(h.contains_key("x-amzn-requestid"));
    let (s, b, _) = raw(
        &server,
        "DescribeRepositories",
        Some("AWS4-HMAC-SHA256 Credential=x"),
        "{}",
    )
    .await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("IncompleteSignatureException"))
    );
    let (s, b, h) = raw(&server, "NoSuchThing", Some(AUTH), "{}").await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    assert_eq!(h["x-amzn-errortype"], "UnknownOperationException");
    let (s, b, _) = raw(&server, "CreateRepository", Some(AUTH), "{not json").await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let (s, b, _) = raw(
        &server,
        "CreateRepository",
        Some(AUTH),
        r#"{"repositoryName": 5}"#,
    )
    .await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let (s, b, _) = raw(&server, "CreateRepository", Some(AUTH), "{}").await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    assert!(b["message"].as_str().unwrap().contains("repositoryName"));
    // The credential scope must name this service and a region (every well-formed region
    // name is served: see regions.rs).
    let (s, b, _) = raw(
        &server,
        "DescribeRepositories",
        Some(&AUTH.replace("us-east-1", "eu-west")),
        "{}",
    )
    .await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    assert!(b["message"].as_str().unwrap().contains("valid region"));
    let (s, b, _) = raw(
        &server,
        "DescribeRepositories",
        Some(&AUTH.replace("/ecr/", "/s3/")),
        "{}",
    )
    .await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    // An empty body is `{}`; a successful response is awsJson with a request id.
    let (s, b, h) = raw(&server, "DescribeRepositories", Some(AUTH), "").await;
    assert_eq!((s, &b), (200, &serde_json::json!({"repositories": []})));
    assert_eq!(h["content-type"], "application/x-amz-json-1.1");
    // Invalid base64 in a blob member.
    raw(
        &server,
        "CreateRepository",
        Some(AUTH),
        r#"{"repositoryName":"team/app"}"#,
    )
    .await;
    let body = format!(
        r#"{{"repositoryName":"team/app","uploadId":"{}","partFirstByte":0,"partLastByte":3,"layerPartBlob":"!!!!"}}"#,
        initiate_raw(&server, "team/app").await
    );
    let (s, b, _) = raw(&server, "UploadLayerPart", Some(AUTH), &body).await;
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("SerializationException"))
    );
}

#[tokio::test]
async fn authorization_token_is_a_docker_login_password() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let out = ecr.get_authorization_token().send().await.unwrap();
    let data = &out.authorization_data()[0];
    let decoded = base64_simd::STANDARD
        .decode_to_vec(data.authorization_token().unwrap())
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let (user, password) = decoded.split_once(':').unwrap();
    assert_eq!(user, "AWS");
    assert!(
        !password.is_empty() && !password.contains(':'),
        "the aws CLI splits on ':'"
    );
    assert_eq!(data.proxy_endpoint(), Some(server.endpoint.as_str()));
    let expires = data.expires_at().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 12 * 3600 - 60..=now + 12 * 3600 + 60).contains(&expires),
        "12 hours"
    );
    #[allow(deprecated)]
    let e = ecr
        .get_authorization_token()
        .registry_ids("12")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

/// A `layerPartBlob` with JSON escapes (`\/` and `\u0041`, which botocore never writes but JSON
/// allows) is the same base64 text: the part decodes to the bytes it encodes, as does one
/// without escapes, which is decoded where it lies in the request body.
#[tokio::test]
async fn layer_part_blob_is_decoded_with_and_without_json_escapes() {
    let server = TestServer::start_without_keys().await;
    let (s, _, _) = raw(
        &server,
        "CreateRepository",
        Some(AUTH),
        r#"{"repositoryName":"esc/app"}"#,
    )
    .await;
    assert_eq!(s, 200);
    for escape in [true, false] {
        // 0xff bytes put '/' into the base64 text; a layer of its own each time.
        let mut data = vec![0xffu8; 300];
        data.extend(random_bytes(70_000, escape as u64));
        let text = base64_simd::STANDARD.encode_to_string(&data);
        assert!(text.contains('/') && text.contains('A'));
        let blob = if escape {
            text.replace('/', "\\/").replacen('A', "\\u0041", 1)
        } else {
            text
        };
        let id = initiate_raw(&server, "esc/app").await;
        let body = format!(
            r#"{{"repositoryName":"esc/app","uploadId":"{id}","partFirstByte":0,"partLastByte":{},"layerPartBlob":"{blob}"}}"#,
            data.len() - 1
        );
        let (s, b, _) = raw(&server, "UploadLayerPart", Some(AUTH), &body).await;
        assert_eq!(
            (s, b["lastByteReceived"].as_i64()),
            (200, Some(data.len() as i64 - 1)),
            "{b}"
        );
        let digest = sha256_digest(&data);
        let (s, b, _) = raw(
            &server,
            "CompleteLayerUpload",
            Some(AUTH),
            &format!(
                r#"{{"repositoryName":"esc/app","uploadId":"{id}","layerDigests":["{digest}"]}}"#
            ),
        )
        .await;
        assert_eq!(
            (s, b["layerDigest"].as_str()),
            (200, Some(digest.as_str())),
            "{b}"
        );
    }
}
