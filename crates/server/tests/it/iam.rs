//! Access control as IAM does it (issue 19): identity policies per access key, combined with
//! repository policies, with conditions on the connection and on tags, through aws-sdk-ecr,
//! raw `/v2` requests with each key's token, and skopeo.

use std::net::IpAddr;
use std::path::Path;

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageIdentifier, Tag};

use crate::harness::*;

const ACCOUNT: &str = "000000000000";

/// May push to `team-a/*` only (and get a token to do it over `/v2`).
const CI_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},
  {"Effect":"Allow","Action":["ecr:BatchCheckLayerAvailability","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:PutImage"],
   "Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"}]}"#;
/// May pull from every repository, and describe the repositories whose `team` tag is its own.
const DEV_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"],"Resource":"*"},
  {"Effect":"Allow","Action":"ecr:DescribeImages","Resource":"*",
   "Condition":{"StringEquals":{"ecr:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}"#;
const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;

/// A server with the admin, CI and developer keys (their secrets are `<id>-secret`), and the
/// extra `serve` flags.
async fn server(extra: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    let ci_policy = dir.path().join("ci-policy.json");
    std::fs::write(&ci_policy, CI_POLICY).unwrap();
    let toml = format!(
        "[[access-keys]]\nid = \"AKIDADMIN\"\nsecret = \"AKIDADMIN-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/admin\"\npolicy = '{ADMIN_POLICY}'\n\
         [[access-keys]]\nid = \"AKIDCI\"\nsecret = \"AKIDCI-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/ci\"\npolicy-file = {:?}\n\
         [[access-keys]]\nid = \"AKIDDEV\"\nsecret = \"AKIDDEV-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/dev\"\npolicy = '''{}'''\ntags = {{ team = \"a\" }}\n",
        ci_policy.to_str().unwrap(),
        DEV_POLICY.replace('\n', " "),
    );
    std::fs::write(&cfg, toml).unwrap();
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    (TestServer::start_with(&args).await, dir)
}

fn as_key(server: &TestServer, id: &str) -> aws_sdk_ecr::Client {
    ecr_client_as(&server.endpoint, id, &format!("{id}-secret"))
}

fn denied<E: aws_sdk_ecr::error::ProvideErrorMetadata>(e: &E) -> String {
    assert_eq!(code(e), "AccessDeniedException", "{:?}", e.message());
    e.message().unwrap_or_default().to_owned()
}

/// Basic header value for `/v2` from `ecr`'s GetAuthorizationToken.
async fn token(ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.expect("token");
    format!(
        "Basic {}",
        out.authorization_data()[0].authorization_token().unwrap()
    )
}

fn oci_as(server: &TestServer, auth: String) -> Oci {
    Oci {
        http: reqwest::Client::new(),
        base: server.endpoint.clone(),
        auth,
    }
}

#[tokio::test]
async fn push_only_pull_only_and_admin_keys_through_the_ecr_api() {
    let (server, _dir) = server(&[]).await;
    let (admin, ci, dev) = (
        as_key(&server, "AKIDADMIN"),
        as_key(&server, "AKIDCI"),
        as_key(&server, "AKIDDEV"),
    );
    for (name, team) in [("team-a/app", "a"), ("team-b/app", "b")] {
        admin
            .create_repository()
            .repository_name(name)
            .tags(Tag::builder().key("team").value(team).build().unwrap())
            .send()
            .await
            .unwrap();
    }
    // CI pushes to team-a, not to team-b, and cannot pull or create.
    let (_, digest, _) = push_small_image(&ci, "team-a/app", "v1", 1).await;
    let e = ci
        .initiate_layer_upload()
        .repository_name("team-b/app")
        .send()
        .await
        .unwrap_err();
    let msg = denied(&e);
    assert!(
        msg.contains("user/ci is not authorized to perform: ecr:InitiateLayerUpload")
            && msg.ends_with(
                "because no identity-based policy allows the ecr:InitiateLayerUpload action"
            ),
        "{msg}"
    );
    let by_digest = ImageIdentifier::builder().image_digest(&digest).build();
    let e = ci
        .batch_get_image()
        .repository_name("team-a/app")
        .image_ids(by_digest.clone())
        .send()
        .await
        .unwrap_err();
    denied(&e);
    let e = ci
        .create_repository()
        .repository_name("team-a/new")
        .send()
        .await
        .unwrap_err();
    denied(&e);
    // The developer pulls, and cannot push or delete.
    let got = dev
        .batch_get_image()
        .repository_name("team-a/app")
        .image_ids(by_digest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images().len(), 1);
    let e = dev
        .put_image()
        .repository_name("team-a/app")
        .image_manifest(got.images()[0].image_manifest().unwrap())
        .image_tag("v2")
        .send()
        .await
        .unwrap_err();
    denied(&e);
    let e = dev
        .batch_delete_image()
        .repository_name("team-a/app")
        .image_ids(by_digest.clone())
        .send()
        .await
        .unwrap_err();
    denied(&e);
    // DescribeImages only where the repository's team tag is the key's own (aws:PrincipalTag
    // against ecr:ResourceTag, through a policy variable).
    let d = dev
        .describe_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    assert_eq!(d.image_details().len(), 1);
    let e = dev
        .describe_images()
        .repository_name("team-b/app")
        .send()
        .await
        .unwrap_err();
    denied(&e);
    // An explicit Deny in a repository policy binds the admin too, and names the policy kind.
    admin
        .set_repository_policy()
        .repository_name("team-b/app")
        .policy_text(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:ListImages"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let e = admin
        .list_images()
        .repository_name("team-b/app")
        .send()
        .await
        .unwrap_err();
    assert!(
        denied(&e).ends_with("with an explicit deny in a resource-based policy"),
        "{:?}",
        e.message()
    );
    // Nothing was stored by the refused calls.
    let listed = admin
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_ids().len(), 1);
    let repos = admin.describe_repositories().send().await.unwrap();
    assert_eq!(repos.repositories().len(), 2);
}

#[tokio::test]
async fn a_key_without_get_authorization_token_gets_no_token() {
    let (server, _dir) = server(&[]).await;
    // The admin's policy allows ecr:*, which includes it; CI's names it; a policy without it
    // is refused, as ECR requires the permission in an identity policy.
    token(&as_key(&server, "AKIDADMIN")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(
        &cfg,
        "[[access-keys]]\nid = \"AKIDNOTOKEN\"\nsecret = \"AKIDNOTOKEN-secret\"\n\
         policy = '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ecr:BatchGetImage\",\"Resource\":\"*\"}]}'\n",
    )
    .unwrap();
    let other = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let e = as_key(&other, "AKIDNOTOKEN")
        .get_authorization_token()
        .send()
        .await
        .unwrap_err();
    assert!(
        denied(&e).contains(
            "ecr:GetAuthorizationToken on resource: * because no identity-based policy allows"
        ),
        "{:?}",
        e.message()
    );
    // ECR Public's token asks the same policy for `ecr-public:GetAuthorizationToken`.
    let public = aws_sdk_ecrpublic::Client::from_conf(
        aws_sdk_ecrpublic::Config::builder()
            .behavior_version(aws_sdk_ecrpublic::config::BehaviorVersion::latest())
            .region(aws_sdk_ecrpublic::config::Region::new("us-east-1"))
            .endpoint_url(&other.endpoint)
            .credentials_provider(aws_sdk_ecrpublic::config::Credentials::new(
                "AKIDNOTOKEN",
                "AKIDNOTOKEN-secret",
                None,
                None,
                "test",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build(),
    );
    let e = public.get_authorization_token().send().await.unwrap_err();
    let message = aws_sdk_ecrpublic::error::ProvideErrorMetadata::message(&e).unwrap_or_default();
    assert!(
        message.contains(
            "ecr-public:GetAuthorizationToken on resource: * because no identity-based policy allows"
        ),
        "{message}"
    );
    // The harness's own key has no policy: full access in its account.
    token(&other.ecr()).await;
}

#[tokio::test]
async fn v2_requests_follow_the_identity_policy_of_the_tokens_key() {
    let (server, _dir) = server(&[]).await;
    let admin = as_key(&server, "AKIDADMIN");
    for name in ["team-a/app", "team-b/app"] {
        create_repo(&admin, name).await;
    }
    let (ci, dev) = (
        oci_as(&server, token(&as_key(&server, "AKIDCI")).await),
        oci_as(&server, token(&as_key(&server, "AKIDDEV")).await),
    );
    let layer = random_bytes(3000, 3);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let ld = ci.push_blob("team-a/app", &layer).await;
    let cd = ci.push_blob("team-a/app", config).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let r = ci
        .put_manifest(
            "team-a/app",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    assert_eq!(r.status(), 201);
    // CI: no pull, no push elsewhere.
    let r = ci
        .req(reqwest::Method::GET, "/v2/team-a/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(oci_code(r).await, "DENIED");
    let r = ci
        .req(reqwest::Method::POST, "/v2/team-b/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Developer: pulls, no push.
    let r = dev
        .req(reqwest::Method::GET, "/v2/team-a/app/manifests/v1")
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), manifest.as_bytes());
    let r = dev
        .req(reqwest::Method::GET, &format!("/v2/team-a/app/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = dev
        .req(reqwest::Method::POST, "/v2/team-a/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(oci_code(r).await, "DENIED");
}

/// A client whose connections leave from `local` (any 127.0.0.0/8 address is this host's).
fn oci_from(server: &TestServer, auth: &str, local: &str) -> Oci {
    Oci {
        http: reqwest::Client::builder()
            .local_address(local.parse::<IpAddr>().unwrap())
            .build()
            .unwrap(),
        base: server.endpoint.clone(),
        auth: auth.to_owned(),
    }
}

const ONLY_FROM_127_0_0_1: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"IPAllow","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}]}"#;

#[tokio::test]
async fn a_source_ip_condition_tells_127_0_0_1_from_127_0_0_2() {
    let (server, _dir) = server(&[]).await;
    let admin = as_key(&server, "AKIDADMIN");
    create_repo(&admin, "team-a/app").await;
    let auth = token(&admin).await;
    let near = oci_from(&server, &auth, "127.0.0.1");
    let far = oci_from(&server, &auth, "127.0.0.2");
    let ld = near.push_blob("team-a/app", b"layer").await;
    let path = format!("/v2/team-a/app/blobs/{ld}");
    let status = |o: &Oci| {
        let r = o.req(reqwest::Method::HEAD, &path);
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((status(&near).await, status(&far).await), (200, 200));
    admin
        .set_repository_policy()
        .repository_name("team-a/app")
        .policy_text(ONLY_FROM_127_0_0_1)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!((status(&near).await, status(&far).await), (200, 403));
    // The ECR API reads the same address (the SDK connects from 127.0.0.1).
    admin
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    // A request from 127.0.0.2 stored nothing.
    let r = far
        .req(reqwest::Method::POST, "/v2/team-a/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_trusted_proxy_header_gives_the_source_ip() {
    let (server, _dir) = server(&["--trusted-proxy-header", "X-Forwarded-For"]).await;
    let admin = as_key(&server, "AKIDADMIN");
    create_repo(&admin, "team-a/app").await;
    admin
        .set_repository_policy()
        .repository_name("team-a/app")
        .policy_text(ONLY_FROM_127_0_0_1)
        .send()
        .await
        .unwrap();
    let oci = oci_as(&server, token(&admin).await);
    let status = |fwd: Option<&'static str>| {
        let mut r = oci.req(reqwest::Method::GET, "/v2/team-a/app/tags/list");
        if let Some(f) = fwd {
            r = r.header("x-forwarded-for", f);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 200, "the peer's address");
    assert_eq!(status(Some("127.0.0.1, 10.0.0.1")).await, 200);
    assert_eq!(status(Some("203.0.113.5, 127.0.0.1")).await, 403);
}

#[tokio::test]
async fn malformed_conditions_are_refused() {
    let (server, _dir) = server(&[]).await;
    let admin = as_key(&server, "AKIDADMIN");
    create_repo(&admin, "team-a/app").await;
    for bad in [
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEqualz":{"aws:username":"a"}}}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.2.3/8"}}}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"DateLessThan":{"aws:CurrentTime":"soon"}}}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":"aws:SecureTransport"}]}"#,
    ] {
        let e = admin
            .set_repository_policy()
            .repository_name("team-a/app")
            .policy_text(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{bad}");
        assert!(
            e.message()
                .unwrap_or_default()
                .starts_with("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided"),
            "{:?}",
            e.message()
        );
    }
    let e = admin
        .get_repository_policy()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryPolicyNotFoundException");
}

#[tokio::test]
async fn skopeo_pushes_and_pulls_with_each_keys_token() {
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but skopeo is missing"
        );
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let (server, dir) = server(&[]).await;
    let admin = as_key(&server, "AKIDADMIN");
    for name in ["team-a/src", "team-a/app", "team-b/app"] {
        create_repo(&admin, name).await;
    }
    let admin_auth = token(&admin).await;
    let ci_auth = token(&as_key(&server, "AKIDCI")).await;
    let dev_auth = token(&as_key(&server, "AKIDDEV")).await;
    // The admin's image, pushed over raw /v2.
    let src = oci_as(&server, admin_auth.clone());
    let layer = random_bytes(20_000, 9);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let ld = src.push_blob("team-a/src", &layer).await;
    let cd = src.push_blob("team-a/src", config).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let r = src
        .put_manifest(
            "team-a/src",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    assert_eq!(r.status(), 201);
    let host = server.endpoint.trim_start_matches("http://").to_owned();
    let work = dir.path().join("skopeo");
    std::fs::create_dir_all(&work).unwrap();
    let copy = |from: &str, from_auth: &str, to: &str, to_auth: &str| {
        skopeo(
            &work,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--src-creds",
                &creds(from_auth),
                "--dest-creds",
                &creds(to_auth),
                &format!("docker://{host}/{from}"),
                &format!("docker://{host}/{to}"),
            ],
        )
    };
    // CI pushes to team-a (reading the source with the admin's token), not to team-b.
    let (ok, err) = copy("team-a/src:v1", &admin_auth, "team-a/app:v1", &ci_auth);
    assert!(ok, "CI push to team-a: {err}");
    let (ok, err) = copy("team-a/src:v1", &admin_auth, "team-b/app:v1", &ci_auth);
    assert!(!ok, "CI pushed to team-b");
    assert!(err.contains("403"), "{err}");
    // The developer pulls, and cannot push; CI cannot pull.
    let layout = dir.path().join("pulled");
    let pull = |auth: &str| {
        skopeo(
            &work,
            &[
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &creds(auth),
                &format!("docker://{host}/team-a/app:v1"),
                &format!("oci:{}:v1", layout.display()),
            ],
        )
    };
    let (ok, err) = pull(&dev_auth);
    assert!(ok, "developer pull: {err}");
    let (ok, _) = pull(&ci_auth);
    assert!(!ok, "CI pulled");
    let (ok, _) = copy("team-a/src:v1", &admin_auth, "team-a/app:v2", &dev_auth);
    assert!(!ok, "the developer pushed");
    let tags = admin
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = tags
        .image_ids()
        .iter()
        .filter_map(|i| i.image_tag())
        .collect();
    assert_eq!(tags, ["v1"]);
    let b = admin
        .list_images()
        .repository_name("team-b/app")
        .send()
        .await
        .unwrap();
    assert!(b.image_ids().is_empty());
}

#[tokio::test]
async fn a_burst_past_the_rate_quota_is_throttled_on_both_apis() {
    let (server, _dir) = server(&[
        "--rate-limit",
        "ListImages=2",
        "--rate-limit",
        "ListTagsForResource=0",
        "--rate-limit-burst-secs",
        "1",
    ])
    .await;
    let admin = as_key(&server, "AKIDADMIN");
    create_repo(&admin, "team-a/app").await;
    // Each request once: the SDK would retry a ThrottlingException.
    let once = aws_sdk_ecr::Client::from_conf(
        admin
            .config()
            .to_builder()
            .retry_config(aws_sdk_ecr::config::retry::RetryConfig::disabled())
            .build(),
    );
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = once
            .list_images()
            .repository_name("team-a/app")
            .send()
            .await;
        outcomes.push(match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => {
                let raw = e.raw_response().expect("a response");
                assert_eq!(raw.status().as_u16(), 400);
                assert_eq!(raw.headers().get("retry-after"), Some("1"));
                assert_eq!(e.message(), Some("Rate exceeded"));
                code(&e)
            }
        });
    }
    // A bucket of two: the rest of a fast burst is refused (the bucket refills at 2/s, so a
    // slow machine may see one more pass).
    assert_eq!(outcomes[..2], ["ok", "ok"]);
    assert!(
        outcomes[2..]
            .iter()
            .filter(|o| *o == "ThrottlingException")
            .count()
            >= 2,
        "{outcomes:?}"
    );
    // Other principals and other operations have their own buckets.
    let e = as_key(&server, "AKIDDEV")
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap_err();
    denied(&e); // by its policy, not throttled
    server
        .ecr()
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    // /v2: tags/list is ListImages too; 429 TOOMANYREQUESTS with Retry-After.
    let oci = oci_as(&server, token(&admin).await);
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let r = oci
            .req(reqwest::Method::GET, "/v2/team-a/app/tags/list")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            last = Some(r);
        }
    }
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 2,
        "{statuses:?}"
    );
    let r = last.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(oci_code(r).await, "TOOMANYREQUESTS");
    // After a second the bucket has refilled.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    once.list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
}

/// Whether a tool the scripted tests need runs; skips (outside CI) when it does not.
fn have(program: &str, args: &[&str]) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {program} is missing"
        );
        eprintln!("skipped: {program} {args:?} does not run");
    }
    ok
}

#[tokio::test]
async fn boto3_with_push_only_pull_only_and_admin_keys() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let (server, _dir) = server(&[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/iam_boto3.py");
    let endpoint = server.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(["120", "python3", script, &endpoint])
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("audit").join("audit.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record a line"))
        .collect()
}

#[tokio::test]
async fn the_audit_trail_records_mutating_and_denied_calls_without_secrets() {
    let (server, _dir) = server(&[]).await;
    let admin = as_key(&server, "AKIDADMIN");
    let (ci, dev) = (as_key(&server, "AKIDCI"), as_key(&server, "AKIDDEV"));
    create_repo(&admin, "team-a/app").await;
    let (manifest, digest, _) = push_small_image(&ci, "team-a/app", "v1", 5).await;
    let dev_auth = token(&dev).await;
    // Read-only calls that pass leave no record; denied ones do.
    dev.batch_get_image()
        .repository_name("team-a/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    dev.put_image()
        .repository_name("team-a/app")
        .image_manifest(&manifest)
        .image_tag("v2")
        .send()
        .await
        .unwrap_err();
    let r = oci_as(&server, dev_auth.clone())
        .req(reqwest::Method::POST, "/v2/team-a/app/blobs/uploads/")
        .header("user-agent", "audit-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let records = audit_records(server.data_dir());
    let names: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|r| {
            (
                r["eventName"].as_str().unwrap(),
                r["userIdentity"]["userName"].as_str().unwrap_or_default(),
                r["errorCode"].as_str(),
            )
        })
        .collect();
    for expected in [
        ("CreateRepository", "admin", None),
        ("InitiateLayerUpload", "ci", None),
        ("UploadLayerPart", "ci", None),
        ("CompleteLayerUpload", "ci", None),
        ("PutImage", "ci", None),
        ("PutImage", "dev", Some("AccessDeniedException")),
        ("InitiateLayerUpload", "dev", Some("AccessDeniedException")),
    ] {
        assert!(names.contains(&expected), "{expected:?} not in {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|(n, _, _)| *n == "BatchGetImage" || *n == "BatchCheckLayerAvailability"),
        "allowed reads are not recorded: {names:?}"
    );
    let put = records
        .iter()
        .find(|r| r["eventName"] == "PutImage" && r["errorCode"].is_null())
        .unwrap();
    assert_eq!(put["eventSource"], "ecr.amazonaws.com");
    assert_eq!(put["awsRegion"], "us-east-1");
    assert_eq!(put["sourceIPAddress"], "127.0.0.1");
    assert_eq!(put["readOnly"], false);
    assert_eq!(put["userIdentity"]["type"], "IAMUser");
    assert_eq!(
        put["userIdentity"]["arn"],
        "arn:aws:iam::000000000000:user/ci"
    );
    assert_eq!(put["userIdentity"]["accessKeyId"], "AKIDCI");
    assert_eq!(put["requestParameters"]["repositoryName"], "team-a/app");
    assert!(
        put["userAgent"].as_str().unwrap().contains("aws-sdk-rust"),
        "{put}"
    );
    assert!(put["requestID"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(put["eventTime"].as_str().unwrap().ends_with('Z'));
    let v2 = records
        .iter()
        .find(|r| r["userAgent"] == "audit-test/1.0")
        .unwrap();
    assert_eq!(v2["errorCode"], "AccessDeniedException");
    assert!(
        v2["errorMessage"]
            .as_str()
            .unwrap()
            .contains("user/dev is not authorized"),
        "{v2}"
    );
    // No secret, token, signature or manifest in any record.
    let text = std::fs::read_to_string(server.data_dir().join("audit").join("audit.log")).unwrap();
    let password = creds(&dev_auth);
    let password = password.strip_prefix("AWS:").unwrap();
    for secret in [
        "AKIDADMIN-secret",
        "AKIDCI-secret",
        "AKIDDEV-secret",
        SECRET_KEY,
        password,
        &dev_auth,
        "Signature=",
        "schemaVersion",
        &digest,
    ] {
        assert!(!text.contains(secret), "the audit file holds {secret:?}");
    }
    // `berth audit` filters by principal, event, repository and time.
    let cli = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        let (code, out) = berth_cli(&all, server.data_dir());
        assert_eq!(code, 0, "{out}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let ci_puts = cli(&["--principal", "user/ci", "--event", "PutImage"]);
    assert_eq!(ci_puts.len(), 1);
    assert_eq!(ci_puts[0]["userIdentity"]["userName"], "ci");
    assert_eq!(cli(&["--principal", "AKIDDEV", "--errors"]).len(), 2);
    assert_eq!(
        cli(&["--repository", "team-a/app"]).len(),
        records.len(),
        "every record names the repository"
    );
    assert!(cli(&["--repository", "team-b/app"]).is_empty());
    assert!(cli(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        cli(&["--until", "2999-01-01T00:00:00Z"]).len(),
        records.len()
    );
}

/// A registry token outlives the key it was made for (12 hours). Removing the key from the
/// configuration must close what the token opens, not leave a key with no identity policy,
/// which berth treats as unrestricted in its account.
#[tokio::test]
async fn a_token_of_a_key_no_longer_configured_opens_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = format!(
        "[[access-keys]]\nid = \"AKIDADMIN\"\nsecret = \"AKIDADMIN-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/admin\"\npolicy = '{ADMIN_POLICY}'\n"
    );
    let with_ops = format!(
        "{admin}[[access-keys]]\nid = \"AKIDOPS\"\nsecret = \"AKIDOPS-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/ops\"\n"
    );
    let (before, after) = (
        dir.path().join("before.toml"),
        dir.path().join("after.toml"),
    );
    std::fs::write(&before, with_ops).unwrap();
    std::fs::write(&after, admin).unwrap();

    let server =
        TestServer::start_in_with(data.path(), &["--config", before.to_str().unwrap()]).await;
    let ops = as_key(&server, "AKIDOPS");
    create_repo(&ops, "kept").await;
    let auth = token(&ops).await;
    let r = oci_as(&server, auth.clone())
        .req(reqwest::Method::GET, "/v2/kept/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the key's token, while the key is configured"
    );
    drop(server);

    let server =
        TestServer::start_in_with(data.path(), &["--config", after.to_str().unwrap()]).await;
    let ops = oci_as(&server, auth);
    for (method, path) in [
        (reqwest::Method::GET, "/v2/kept/tags/list"),
        (reqwest::Method::POST, "/v2/kept/blobs/uploads/"),
    ] {
        let r = ops.req(method.clone(), path).send().await.unwrap();
        assert_eq!(
            r.status(),
            403,
            "{method} {path} with the removed key's token"
        );
        assert_eq!(oci_code(r).await, "DENIED");
    }
    // The admin key, still configured, is untouched.
    let admin = oci_as(&server, token(&as_key(&server, "AKIDADMIN")).await);
    let r = admin
        .req(reqwest::Method::GET, "/v2/kept/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
