//! Repository and registry policies: managed through the API and applied to every ECR call
//! and every `/v2` call (which map to the ECR action names).

use aws_sdk_ecr::types::ImageIdentifier;

use crate::harness::*;

const OTHER: &str = "111111111111";

fn client(server: &TestServer, akid: &str, secret: &str) -> aws_sdk_ecr::Client {
    ecr_client_as(&server.endpoint, akid, secret)
}

/// The owner (account 000000000000), another account, and a restricted user of the owner's
/// account.
async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[access-keys]]\nid = \"AKIDOTHER\"\nsecret = \"other\"\naccount-id = \"{OTHER}\"\n\
             [[access-keys]]\nid = \"AKIDRESTRICTED\"\nsecret = \"restricted\"\narn = \"arn:aws:iam::000000000000:user/restricted\"\n"
        ),
    )
    .unwrap();
    (
        TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await,
        dir,
    )
}

fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

#[tokio::test]
async fn policies_are_managed_and_validated() {
    let (server, _dir) = server().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let e = ecr
        .get_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryPolicyNotFoundException");
    for bad in [
        "not json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#,
    ] {
        let e = ecr
            .set_repository_policy()
            .repository_name("team/app")
            .policy_text(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{bad}");
    }
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{OTHER}"}},"Action":"ecr:BatchGetImage"}}]}}"#
    );
    let set = ecr
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&text)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (set.registry_id(), set.policy_text()),
        (Some("000000000000"), Some(text.as_str()))
    );
    let got = ecr
        .get_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy_text(), Some(text.as_str()));
    let deleted = ecr
        .delete_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.policy_text(), Some(text.as_str()));
    let e = ecr
        .delete_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryPolicyNotFoundException");

    let e = ecr.get_registry_policy().send().await.unwrap_err();
    assert_eq!(code(&e), "RegistryPolicyNotFoundException");
    let e = ecr
        .put_registry_policy()
        .policy_text(&text)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "InvalidParameterException",
        "registry statements must name resources"
    );
    let reg = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"ecr:CreateRepository","Resource":"*"}]}"#;
    assert_eq!(
        ecr.put_registry_policy()
            .policy_text(reg)
            .send()
            .await
            .unwrap()
            .registry_id(),
        Some("000000000000")
    );
    assert_eq!(
        ecr.get_registry_policy()
            .send()
            .await
            .unwrap()
            .policy_text(),
        Some(reg)
    );
    assert_eq!(
        ecr.delete_registry_policy()
            .send()
            .await
            .unwrap()
            .policy_text(),
        Some(reg)
    );

    // The lock-out check: a policy denying its author the next SetRepositoryPolicy needs force.
    let lockout = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:SetRepositoryPolicy"}]}"#;
    let e = ecr
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(lockout)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    ecr.set_repository_policy()
        .repository_name("team/app")
        .policy_text(lockout)
        .force(true)
        .send()
        .await
        .unwrap();
    let e = ecr
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&text)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
}

#[tokio::test]
async fn another_account_is_denied_until_a_repository_policy_allows_it() {
    let (server, _dir) = server().await;
    let owner = server.ecr();
    let other = client(&server, "AKIDOTHER", "other");
    create_repo(&owner, "team/app").await;
    let (manifest, _, layer) = push_small_image(&owner, "team/app", "v1", 1).await;
    let pull = || {
        other
            .batch_get_image()
            .registry_id("000000000000")
            .repository_name("team/app")
            .image_ids(by_tag("v1"))
            .send()
    };

    let e = pull().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(format!("{e:?}").contains("ecr:BatchGetImage"));
    // Not even whether a repository exists leaks to another account.
    let e = other
        .describe_images()
        .registry_id("000000000000")
        .repository_name("team/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"pull","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OTHER}:root"}},
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}}]}}"#
    );
    owner
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&policy)
        .send()
        .await
        .unwrap();
    let got = pull().await.unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    let url = other
        .get_download_url_for_layer()
        .registry_id("000000000000")
        .repository_name("team/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap();
    assert!(url.download_url().is_some());
    // Only what the policy names.
    let e = other
        .put_image()
        .registry_id("000000000000")
        .repository_name("team/app")
        .image_manifest(&manifest)
        .image_tag("theirs")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");

    // An explicit Deny beats the Allow.
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"ecr:*"}},
            {{"Effect":"Deny","Principal":{{"AWS":"{OTHER}"}},"Action":"ecr:BatchGetImage"}}]}}"#
    );
    owner
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&deny)
        .send()
        .await
        .unwrap();
    let e = pull().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    assert!(format!("{e:?}").contains("explicit deny"));
    other
        .describe_images()
        .registry_id("000000000000")
        .repository_name("team/app")
        .send()
        .await
        .expect("allowed by the *");
}

#[tokio::test]
async fn registry_policy_and_repository_policy_combine() {
    let (server, _dir) = server().await;
    let owner = server.ecr();
    let other = client(&server, "AKIDOTHER", "other");
    create_repo(&owner, "team/app").await;
    create_repo(&owner, "private/app").await;
    let reg = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{OTHER}"}},"Action":["ecr:DescribeImages","ecr:CreateRepository"],
            "Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team/*"}}]}}"#
    );
    owner
        .put_registry_policy()
        .policy_text(&reg)
        .send()
        .await
        .unwrap();
    let describe = |name: &'static str| {
        other
            .describe_images()
            .registry_id("000000000000")
            .repository_name(name)
            .send()
    };
    describe("team/app")
        .await
        .expect("the registry policy allows team/*");
    assert_eq!(
        code(&describe("private/app").await.unwrap_err()),
        "AccessDeniedException"
    );
    let created = other
        .create_repository()
        .registry_id("000000000000")
        .repository_name("team/theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.repository().unwrap().registry_id(),
        Some("000000000000")
    );
    // A repository policy's Deny overrides the registry policy's Allow.
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":{{"AWS":"{OTHER}"}},"Action":"ecr:DescribeImages"}}]}}"#
    );
    owner
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&deny)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(&describe("team/app").await.unwrap_err()),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn v2_calls_are_checked_as_their_ecr_actions() {
    let (server, _dir) = server().await;
    let owner = server.ecr();
    create_repo(&owner, "team/app").await;
    push_small_image(&owner, "team/app", "v1", 1).await;
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/restricted"},"Action":["ecr:BatchGetImage","ecr:PutImage"]}]}"#;
    owner
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(deny)
        .send()
        .await
        .unwrap();

    let restricted = client(&server, "AKIDRESTRICTED", "restricted");
    let token = restricted.get_authorization_token().send().await.unwrap();
    let auth = format!(
        "Basic {}",
        token.authorization_data()[0].authorization_token().unwrap()
    );
    let http = server.http();
    let url = format!("{}/v2/team/app/manifests/v1", server.endpoint);
    let r = http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(oci_code(r).await, "DENIED");
    // Listing tags is ecr:ListImages, which the policy leaves alone.
    let r = http
        .get(format!("{}/v2/team/app/tags/list", server.endpoint))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The owner's own token still pulls.
    let r = http
        .get(&url)
        .header("authorization", server.basic_auth().await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn v2_mount_without_from_and_blob_delete_follow_the_policies() {
    let (server, _dir) = server().await;
    let owner = server.ecr();
    for repo in ["team/secret", "team/open", "team/mine"] {
        create_repo(&owner, repo).await;
    }
    let oci = server.oci().await;
    let secret_only = oci.push_blob("team/secret", &random_bytes(3000, 61)).await;
    let both_bytes = random_bytes(3000, 62);
    let in_both = oci.push_blob("team/secret", &both_bytes).await;
    oci.push_blob("team/open", &both_bytes).await;
    let deny = |action: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::000000000000:user/restricted"}},"Action":"{action}"}}]}}"#
        )
    };
    owner
        .set_repository_policy()
        .repository_name("team/secret")
        .policy_text(deny("ecr:GetDownloadUrlForLayer"))
        .send()
        .await
        .unwrap();
    owner
        .set_repository_policy()
        .repository_name("team/mine")
        .policy_text(deny("ecr:BatchDeleteImage"))
        .send()
        .await
        .unwrap();

    let restricted = client(&server, "AKIDRESTRICTED", "restricted");
    let token = restricted.get_authorization_token().send().await.unwrap();
    let as_restricted = Oci {
        http: reqwest::Client::new(),
        base: server.endpoint.clone(),
        auth: format!(
            "Basic {}",
            token.authorization_data()[0].authorization_token().unwrap()
        ),
    };
    let mount = |d: &str| {
        as_restricted
            .req(
                reqwest::Method::POST,
                &format!("/v2/team/mine/blobs/uploads/?mount={d}"),
            )
            .send()
    };
    // Only in a repository the caller may not read: no mount, a new upload session instead,
    // and the blob stays out of reach.
    let r = mount(&secret_only).await.unwrap();
    assert_eq!(r.status(), 202);
    let r = as_restricted
        .req(
            reqwest::Method::GET,
            &format!("/v2/team/mine/blobs/{secret_only}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Also in one it may read: mounted from there.
    let r = mount(&in_both).await.unwrap();
    assert_eq!(r.status(), 201);
    let r = as_restricted
        .req(
            reqwest::Method::GET,
            &format!("/v2/team/mine/blobs/{in_both}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &both_bytes[..]);

    // Blob DELETE is ecr:BatchDeleteImage: denied for the restricted user, allowed the owner.
    let delete = |oci: &Oci| {
        oci.req(
            reqwest::Method::DELETE,
            &format!("/v2/team/mine/blobs/{in_both}"),
        )
        .send()
    };
    let r = delete(&as_restricted).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(oci_code(r).await, "DENIED");
    assert_eq!(delete(&oci).await.unwrap().status(), 202);
}
