//! The ECR operations on the generated shapes (issue 15), driven by `aws-sdk-ecr`: resource
//! tags (TagResource, UntagResource), account settings (GetAccountSetting,
//! PutAccountSetting) and BLOB_MOUNTING's effect on `/v2`, and their refusals.

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{LayerAvailability, Tag};
use reqwest::Method;

use crate::harness::*;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

/// The modeled error code and message of an SDK error.
fn err<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or("<none>").to_owned(),
        e.message().unwrap_or_default().to_owned(),
    )
}

async fn create(ecr: &aws_sdk_ecr::Client, name: &str) -> String {
    ecr.create_repository()
        .repository_name(name)
        .tags(tag("team", "a"))
        .send()
        .await
        .unwrap()
        .repository()
        .unwrap()
        .repository_arn()
        .unwrap()
        .to_owned()
}

async fn tags_of(ecr: &aws_sdk_ecr::Client, arn: &str) -> Vec<(String, String)> {
    ecr.list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn tag_resource_adds_and_replaces_and_untag_removes() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let arn = create(&ecr, "tagged/app").await;
    ecr.tag_resource()
        .resource_arn(&arn)
        .tags(tag("env", "dev"))
        .tags(tag("team", "b"))
        .send()
        .await
        .unwrap();
    // A replaced value keeps its key's place; a new key follows.
    assert_eq!(
        tags_of(&ecr, &arn).await,
        pairs(&[("team", "b"), ("env", "dev")])
    );
    ecr.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&ecr, &arn).await, pairs(&[("env", "dev")]));
    // DescribeRepositories' repository is the same one the tags are on.
    let described = ecr
        .describe_repositories()
        .repository_names("tagged/app")
        .send()
        .await
        .unwrap();
    assert_eq!(described.repositories()[0].repository_arn(), Some(&*arn));
}

#[tokio::test]
async fn tag_resource_refusals_change_nothing() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let arn = create(&ecr, "refused").await;
    let before = tags_of(&ecr, &arn).await;

    // ARNs that name no private repository of this region.
    for bad in [
        "not-an-arn",
        "arn:aws:ecr:eu-west-1:000000000000:repository/refused",
        "arn:aws:ecr-public::000000000000:repository/refused",
        "arn:aws:ecr:us-east-1:123:repository/refused",
        "arn:aws:ecr:us-east-1:000000000000:repository/Bad_Name",
        "arn:aws:ecr:us-east-1:000000000000:refused",
    ] {
        let e = ecr
            .tag_resource()
            .resource_arn(bad)
            .tags(tag("k", "v"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err(&e),
            (
                "InvalidParameterException".into(),
                "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'"
                    .into()
            ),
            "{bad}"
        );
        let e = ecr
            .untag_resource()
            .resource_arn(bad)
            .tag_keys("k")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err(&e).0, "InvalidParameterException", "{bad}");
    }
    let missing = "arn:aws:ecr:us-east-1:000000000000:repository/missing";
    let e = ecr
        .tag_resource()
        .resource_arn(missing)
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotFoundException");

    // The reserved `aws:` namespace, in any case, for setting and for removing.
    for key in ["aws:createdBy", "AWS:x", "Aws:"] {
        let e = ecr
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag("fine", "v"))
            .tags(tag(key, "v"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err(&e).0, "InvalidTagParameterException", "{key}");
        assert!(err(&e).1.contains("'aws:'"), "{e:?}");
        let e = ecr
            .untag_resource()
            .resource_arn(&arn)
            .tag_keys(key)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err(&e).0, "InvalidTagParameterException", "{key}");
    }
    // `aws` without the colon is an ordinary key.
    ecr.tag_resource()
        .resource_arn(&arn)
        .tags(tag("awsome", "v"))
        .send()
        .await
        .unwrap();
    ecr.untag_resource()
        .resource_arn(&arn)
        .tag_keys("awsome")
        .send()
        .await
        .unwrap();

    // Lengths: key 1..=128, value ..=256.
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    for (k, v, path) in [
        ("", "v", "tags.member.Key"),
        (long_key.as_str(), "v", "tags.member.Key"),
        ("k", long_value.as_str(), "tags.member.Value"),
    ] {
        let e = ecr
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag(k, v))
            .send()
            .await
            .unwrap_err();
        let (code, message) = err(&e);
        assert_eq!(code, "InvalidTagParameterException");
        assert!(
            message.starts_with(&format!("Invalid parameter at '{path}'")),
            "{message}"
        );
    }
    let ok_key = "k".repeat(128);
    let ok_value = "v".repeat(256);
    ecr.tag_resource()
        .resource_arn(&arn)
        .tags(tag(&ok_key, &ok_value))
        .send()
        .await
        .unwrap();
    ecr.untag_resource()
        .resource_arn(&arn)
        .tag_keys(&ok_key)
        .send()
        .await
        .unwrap();
    let e = ecr
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys(&long_key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidTagParameterException");

    // Past 50 tags in all: refused whole (the repository has one already).
    let e = ecr
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some((0..50).map(|i| tag(&format!("k{i}"), "v")).collect()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "TooManyTagsException");
    assert_eq!(tags_of(&ecr, &arn).await, before);
    // Exactly 50 is allowed.
    ecr.tag_resource()
        .resource_arn(&arn)
        .set_tags(Some((0..49).map(|i| tag(&format!("k{i}"), "v")).collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&ecr, &arn).await.len(), 50);
}

/// A signature berth accepts when it has no access keys (see `protocol.rs`).
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd";

/// A request no SDK would send: its status and JSON body.
async fn raw(server: &TestServer, op: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerRegistry_V20150921.{op}"),
        )
        .header("authorization", AUTH)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    (status, json)
}

#[tokio::test]
async fn tag_resource_without_members_is_refused_by_the_model() {
    let server = TestServer::start_without_keys().await;
    create(&server.ecr(), "raw").await;
    let arn = "arn:aws:ecr:us-east-1:000000000000:repository/raw";
    for (body, path) in [
        (serde_json::json!({"tags": []}), "resourceArn"),
        (serde_json::json!({"resourceArn": arn}), "tags"),
        (
            serde_json::json!({"resourceArn": arn, "tags": [{"Key": "k"}]}),
            "tags.member.Value",
        ),
    ] {
        let (status, b) = raw(&server, "TagResource", &body.to_string()).await;
        assert_eq!(
            (status, b["__type"].as_str(), b["message"].as_str()),
            (
                400,
                Some("InvalidParameterException"),
                Some(&*format!(
                    "Invalid parameter at '{path}' failed to satisfy constraint: 'Member must not be null'"
                ))
            ),
            "{body}"
        );
    }
    let (status, b) = raw(
        &server,
        "UntagResource",
        &serde_json::json!({"resourceArn": arn}).to_string(),
    )
    .await;
    assert_eq!(
        (status, b["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let (status, b) = raw(&server, "TagResource", r#"{"resourceArn":"x","tags":"no"}"#).await;
    assert_eq!(
        (status, b["__type"].as_str()),
        (400, Some("SerializationException"))
    );
}

async fn setting(ecr: &aws_sdk_ecr::Client, name: &str) -> (String, String) {
    let out = ecr.get_account_setting().name(name).send().await.unwrap();
    (
        out.name().unwrap_or_default().to_owned(),
        out.value().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn account_settings_have_defaults_and_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TestServer::start_in(dir.path()).await;
        let ecr = server.ecr();
        for (name, default) in [
            ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE"),
            ("REGISTRY_POLICY_SCOPE", "V2"),
            ("BLOB_MOUNTING", "ENABLED"),
        ] {
            assert_eq!(setting(&ecr, name).await, (name.into(), default.into()));
        }
        for (name, value) in [
            ("BASIC_SCAN_TYPE_VERSION", "CLAIR"),
            ("REGISTRY_POLICY_SCOPE", "V1"),
            ("BLOB_MOUNTING", "DISABLED"),
        ] {
            let put = ecr
                .put_account_setting()
                .name(name)
                .value(value)
                .send()
                .await
                .unwrap();
            assert_eq!((put.name(), put.value()), (Some(name), Some(value)));
        }
        // Refusals change nothing.
        let e = ecr
            .put_account_setting()
            .name("BLOB_MOUNTING")
            .value("enabled")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err(&e).0, "InvalidParameterException");
        let e = ecr
            .put_account_setting()
            .name("NO_SUCH_SETTING")
            .value("V2")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err(&e),
            (
                "InvalidParameterException".into(),
                "Invalid parameter at 'name' failed to satisfy constraint: 'Member must satisfy enum value set: [BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE, BLOB_MOUNTING]'".into()
            )
        );
        let e = ecr
            .get_account_setting()
            .name("x".repeat(65))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err(&e),
            (
                "InvalidParameterException".into(),
                "Invalid parameter at 'name' failed to satisfy constraint: 'Member must have length less than or equal to 64'".into()
            )
        );
        let e = ecr.get_account_setting().name("").send().await.unwrap_err();
        assert_eq!(err(&e).0, "InvalidParameterException");
    }
    // Durable: a restarted server on the same data answers the stored values.
    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    assert_eq!(setting(&ecr, "BASIC_SCAN_TYPE_VERSION").await.1, "CLAIR");
    assert_eq!(setting(&ecr, "REGISTRY_POLICY_SCOPE").await.1, "V1");
    assert_eq!(setting(&ecr, "BLOB_MOUNTING").await.1, "DISABLED");
}

/// A `/v2` mount request's status and `Location`.
async fn mount(oci: &Oci, to: &str, digest: &str, from: Option<&str>) -> (u16, String) {
    let from = from.map(|f| format!("&from={f}")).unwrap_or_default();
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/{to}/blobs/uploads/?mount={digest}{from}"),
        )
        .send()
        .await
        .unwrap();
    (
        r.status().as_u16(),
        r.headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn blob_mounting_disabled_makes_v2_mounts_uploads() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    for repo in ["mnt/a", "mnt/b", "mnt/c"] {
        ecr.create_repository()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
    }
    let oci = server.oci().await;
    let data = random_bytes(5000, 7);
    let d = oci.push_blob("mnt/a", &data).await;

    ecr.put_account_setting()
        .name("BLOB_MOUNTING")
        .value("DISABLED")
        .send()
        .await
        .unwrap();
    // With `from` and without: 202 and a new upload session, as ECR answers.
    for from in [Some("mnt/a"), None] {
        let (status, location) = mount(&oci, "mnt/b", &d, from).await;
        assert_eq!(status, 202, "{from:?}");
        assert!(
            location.starts_with("/v2/mnt/b/blobs/uploads/"),
            "{location}"
        );
    }
    let avail = ecr
        .batch_check_layer_availability()
        .repository_name("mnt/b")
        .layer_digests(&d)
        .send()
        .await
        .unwrap();
    assert_eq!(
        avail.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable),
        "nothing was mounted"
    );

    // Enabled again: the same requests mount.
    ecr.put_account_setting()
        .name("BLOB_MOUNTING")
        .value("ENABLED")
        .send()
        .await
        .unwrap();
    assert_eq!(
        mount(&oci, "mnt/b", &d, Some("mnt/a")).await,
        (201, format!("/v2/mnt/b/blobs/{d}"))
    );
    assert_eq!(
        mount(&oci, "mnt/c", &d, None).await,
        (201, format!("/v2/mnt/c/blobs/{d}"))
    );
}

#[tokio::test]
async fn describe_registry_names_the_callers_registry_without_replication() {
    let server = TestServer::start().await;
    let out = server.ecr().describe_registry().send().await.unwrap();
    assert_eq!(out.registry_id(), Some("000000000000"));
    assert_eq!(
        out.replication_configuration().map(|c| c.rules().len()),
        Some(0)
    );
    // Raw: the rule list is present and empty, as ECR sends it.
    let server = TestServer::start_without_keys().await;
    let (status, b) = raw(&server, "DescribeRegistry", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        b,
        serde_json::json!({"registryId": "000000000000", "replicationConfiguration": {"rules": []}})
    );
}
