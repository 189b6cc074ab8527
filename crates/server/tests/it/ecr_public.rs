//! ECR Public (`SpencerFrontendService`) driven by the official `aws-sdk-ecrpublic` client:
//! every one of the 23 operations, their bad inputs, and the ways ECR Public differs from ECR.

use aws_sdk_ecrpublic::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecrpublic::error::ProvideErrorMetadata;
use aws_sdk_ecrpublic::primitives::Blob;
use aws_sdk_ecrpublic::types::{ImageIdentifier, RepositoryCatalogDataInput, Tag};

use crate::harness::*;

/// An `aws-sdk-ecrpublic` client for `region` (ECR Public's is `us-east-1`).
pub fn public_client_in(endpoint: &str, region: &str) -> aws_sdk_ecrpublic::Client {
    let conf = aws_sdk_ecrpublic::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .retry_config(aws_sdk_ecrpublic::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecrpublic::Client::from_conf(conf)
}

pub fn public_client(server: &TestServer) -> aws_sdk_ecrpublic::Client {
    public_client_in(&server.endpoint, "us-east-1")
}

/// The modeled error code and message of an SDK error.
fn err<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or("<none>").to_owned(),
        e.message().unwrap_or_default().to_owned(),
    )
}

fn host(server: &TestServer) -> String {
    server.endpoint.trim_start_matches("http://").to_owned()
}

/// The alias of the test account's public registry, from DescribeRegistries.
async fn alias(ecr: &aws_sdk_ecrpublic::Client) -> String {
    let r = ecr.describe_registries().send().await.unwrap();
    r.registries()[0].aliases()[0].name().to_owned()
}

async fn create(ecr: &aws_sdk_ecrpublic::Client, name: &str) {
    ecr.create_repository()
        .repository_name(name)
        .send()
        .await
        .expect("create public repository");
}

/// Pushes `data` as one layer through ECR Public's layer flow (optionally naming the
/// registry by `registry_id`, an account id or alias); answers the digest.
async fn push_public_layer(
    ecr: &aws_sdk_ecrpublic::Client,
    repo: &str,
    registry_id: Option<&str>,
    data: &[u8],
    parts: &[usize],
) -> String {
    let id = ecr
        .initiate_layer_upload()
        .repository_name(repo)
        .set_registry_id(registry_id.map(str::to_owned))
        .send()
        .await
        .expect("initiate")
        .upload_id()
        .unwrap()
        .to_owned();
    let mut off = 0;
    for &size in parts {
        let end = (off + size).min(data.len());
        let r = ecr
            .upload_layer_part()
            .repository_name(repo)
            .set_registry_id(registry_id.map(str::to_owned))
            .upload_id(&id)
            .part_first_byte(off as i64)
            .part_last_byte(end as i64 - 1)
            .layer_part_blob(Blob::new(&data[off..end]))
            .send()
            .await
            .expect("upload part");
        assert_eq!(r.last_byte_received(), Some(end as i64 - 1));
        assert_eq!(r.upload_id(), Some(id.as_str()));
        off = end;
    }
    let done = ecr
        .complete_layer_upload()
        .repository_name(repo)
        .set_registry_id(registry_id.map(str::to_owned))
        .upload_id(&id)
        .layer_digests(sha256_digest(data))
        .send()
        .await
        .expect("complete");
    assert_eq!(done.layer_digest(), Some(sha256_digest(data).as_str()));
    done.layer_digest().unwrap().to_owned()
}

/// Pushes a one-layer image tagged `tag` through ECR Public; answers (manifest, digest).
pub async fn push_public_image(
    ecr: &aws_sdk_ecrpublic::Client,
    repo: &str,
    tag: &str,
    seed: u64,
) -> (String, String) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(2000 + seed as usize, seed);
    let cd = push_public_layer(ecr, repo, None, &config, &[config.len()]).await;
    let ld = push_public_layer(ecr, repo, None, &layer, &[layer.len()]).await;
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
        .unwrap()
        .to_owned();
    (manifest, digest)
}

#[tokio::test]
async fn public_repository_with_catalog_data_and_tags() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    let alias = alias(&ecr).await;
    let logo = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    let created = ecr
        .create_repository()
        .repository_name("team/app")
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .description("An app")
                .architectures("x86-64")
                .architectures("ARM 64")
                .operating_systems("Linux")
                .about_text("# About")
                .usage_text("docker pull")
                .logo_image_blob(Blob::new(logo.clone()))
                .build(),
        )
        .tags(Tag::builder().key("team").value("core").build())
        .send()
        .await
        .unwrap();
    let repo = created.repository().unwrap();
    let account = repo.registry_id().unwrap().to_owned();
    assert_eq!(repo.repository_name(), Some("team/app"));
    assert_eq!(
        repo.repository_arn(),
        Some(format!("arn:aws:ecr-public::{account}:repository/team/app").as_str())
    );
    assert_eq!(
        repo.repository_uri(),
        Some(format!("{}/{alias}/team/app", host(&server)).as_str())
    );
    assert!(repo.created_at().is_some());
    let catalog = created.catalog_data().unwrap();
    assert_eq!(catalog.description(), Some("An app"));
    assert_eq!(catalog.architectures(), ["x86-64", "ARM 64"]);
    assert_eq!(catalog.marketplace_certified(), Some(false));
    // The logo is served at its URL, without authentication.
    let logo_url = catalog.logo_url().expect("logo url").to_owned();
    let got = reqwest::get(&logo_url).await.unwrap();
    assert_eq!(got.status(), 200, "{logo_url}");
    assert_eq!(got.bytes().await.unwrap().as_ref(), logo.as_slice());

    // The same name again is refused.
    let e = ecr
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryAlreadyExistsException");

    let got = ecr
        .get_repository_catalog_data()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let c = got.catalog_data().unwrap();
    assert_eq!(c.about_text(), Some("# About"));
    assert_eq!(c.usage_text(), Some("docker pull"));
    assert_eq!(c.operating_systems(), ["Linux"]);

    let put = ecr
        .put_repository_catalog_data()
        .repository_name("team/app")
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .description("Changed")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.catalog_data().unwrap().description(), Some("Changed"));
    let got = ecr
        .get_repository_catalog_data()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(got.catalog_data().unwrap().description(), Some("Changed"));
    assert_eq!(got.catalog_data().unwrap().about_text(), None);

    // Tags: listed by ARN, added, replaced in place and removed.
    let arn = format!("arn:aws:ecr-public::{account}:repository/team/app");
    let tags = |t: &[Tag]| -> Vec<(String, String)> {
        t.iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let listed = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags(listed.tags()), [("team".into(), "core".into())]);
    ecr.tag_resource()
        .resource_arn(&arn)
        .tags(Tag::builder().key("env").value("prod").build())
        .tags(Tag::builder().key("team").value("platform").build())
        .send()
        .await
        .unwrap();
    let listed = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(listed.tags()),
        [
            ("team".into(), "platform".into()),
            ("env".into(), "prod".into())
        ]
    );
    ecr.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let listed = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags(listed.tags()), [("env".into(), "prod".into())]);

    // Described by name and in the list of all; gone once deleted.
    let d = ecr
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(d.repositories().len(), 1);
    assert_eq!(d.repositories()[0].repository_uri(), repo.repository_uri());
    let all = ecr.describe_repositories().send().await.unwrap();
    assert_eq!(all.repositories().len(), 1);
    let deleted = ecr
        .delete_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.repository().unwrap().repository_arn(),
        Some(arn.as_str())
    );
    let e = ecr
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotFoundException");
    let e = ecr
        .get_repository_catalog_data()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotFoundException");
}

#[tokio::test]
async fn a_repository_without_catalog_data_has_an_empty_one() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    let created = ecr
        .create_repository()
        .repository_name("bare")
        .send()
        .await
        .unwrap();
    let c = created.catalog_data().unwrap();
    assert_eq!(c.description(), None);
    assert_eq!(c.logo_url(), None);
    let got = ecr
        .get_repository_catalog_data()
        .repository_name("bare")
        .send()
        .await
        .unwrap();
    assert_eq!(got.catalog_data().unwrap().description(), None);
}

#[tokio::test]
async fn public_and_private_repositories_of_one_name_are_separate() {
    let server = TestServer::start().await;
    let public = public_client(&server);
    let private = server.ecr();
    create(&public, "shared").await;
    create_repo(&private, "shared").await;
    let (_, digest) = push_public_image(&public, "shared", "v1", 1).await;
    // The private repository has no image; the public one has one.
    let listed = private
        .list_images()
        .repository_name("shared")
        .send()
        .await
        .unwrap();
    assert!(listed.image_ids().is_empty());
    let described = public
        .describe_images()
        .repository_name("shared")
        .send()
        .await
        .unwrap();
    assert_eq!(described.image_details().len(), 1);
    assert_eq!(
        described.image_details()[0].image_digest(),
        Some(digest.as_str())
    );
    // Deleting the private one leaves the public one.
    private
        .delete_repository()
        .repository_name("shared")
        .send()
        .await
        .unwrap();
    public
        .describe_repositories()
        .repository_names("shared")
        .send()
        .await
        .unwrap();
    // A private-only name is unknown to ECR Public.
    create_repo(&private, "private-only").await;
    let e = public
        .describe_repositories()
        .repository_names("private-only")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotFoundException");
    let all = public.describe_repositories().send().await.unwrap();
    let names: Vec<_> = all
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name())
        .collect();
    assert_eq!(names, ["shared"]);
}

#[tokio::test]
async fn public_layer_flow_images_and_tags() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    let alias = alias(&ecr).await;
    create(&ecr, "app").await;
    // A layer in two parts, naming the registry by its alias.
    let layer = random_bytes(5 * MIB + 100, 7);
    let digest = push_public_layer(&ecr, "app", Some(&alias), &layer, &[5 * MIB, 100]).await;
    let check = ecr
        .batch_check_layer_availability()
        .repository_name("app")
        .layer_digests(&digest)
        .layer_digests(sha256_digest(b"absent"))
        .layer_digests("sha256:zz")
        .send()
        .await
        .unwrap();
    let avail: Vec<_> = check
        .layers()
        .iter()
        .map(|l| l.layer_availability().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(avail, ["AVAILABLE", "UNAVAILABLE"]);
    assert_eq!(check.layers()[0].layer_size(), Some(layer.len() as i64));
    assert_eq!(
        check.failures()[0].failure_code().unwrap().as_str(),
        "InvalidLayerDigest"
    );

    let (manifest, image) = push_public_image(&ecr, "app", "v1", 3).await;
    // Tag the same image again.
    let again = ecr
        .put_image()
        .repository_name("app")
        .image_manifest(&manifest)
        .image_tag("latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.image().unwrap().image_id().unwrap().image_tag(),
        Some("latest")
    );
    let e = ecr
        .put_image()
        .repository_name("app")
        .image_manifest(&manifest)
        .image_tag("latest")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "ImageAlreadyExistsException");

    let d = ecr
        .describe_images()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(d.image_details().len(), 1);
    let detail = &d.image_details()[0];
    assert_eq!(detail.image_digest(), Some(image.as_str()));
    let mut tags = detail.image_tags().to_vec();
    tags.sort();
    assert_eq!(tags, ["latest", "v1"]);
    assert!(detail.image_size_in_bytes().unwrap() > 2000);
    assert_eq!(
        detail.image_manifest_media_type(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let by_id = ecr
        .describe_images()
        .repository_name("app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.image_details().len(), 1);

    let t = ecr
        .describe_image_tags()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    let mut listed: Vec<_> = t
        .image_tag_details()
        .iter()
        .map(|d| {
            (
                d.image_tag().unwrap().to_owned(),
                d.image_detail().unwrap().image_digest().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("latest".into(), image.clone()),
            ("v1".into(), image.clone())
        ]
    );

    // Deleting a tag, then the image by digest; a missing tag is a failure, not an error.
    let del = ecr
        .batch_delete_image()
        .repository_name("app")
        .image_ids(ImageIdentifier::builder().image_tag("latest").build())
        .image_ids(ImageIdentifier::builder().image_tag("nope").build())
        .send()
        .await
        .unwrap();
    assert_eq!(del.image_ids().len(), 1);
    assert_eq!(
        del.failures()[0].failure_code().unwrap().as_str(),
        "ImageNotFound"
    );
    // A repository holding images is not deleted without force.
    let e = ecr
        .delete_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotEmptyException");
    ecr.batch_delete_image()
        .repository_name("app")
        .image_ids(ImageIdentifier::builder().image_digest(&image).build())
        .send()
        .await
        .unwrap();
    let d = ecr
        .describe_images()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert!(d.image_details().is_empty());
    push_public_image(&ecr, "app", "v2", 4).await;
    ecr.delete_repository()
        .repository_name("app")
        .force(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn public_repository_policies() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    create(&ecr, "app").await;
    let e = ecr
        .get_repository_policy()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryPolicyNotFoundException");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"push","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr-public:PutImage"]}]}"#;
    let set = ecr
        .set_repository_policy()
        .repository_name("app")
        .policy_text(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(set.repository_name(), Some("app"));
    let got = ecr
        .get_repository_policy()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(got.policy_text().unwrap()).unwrap(),
        serde_json::from_str::<serde_json::Value>(policy).unwrap()
    );
    let e = ecr
        .set_repository_policy()
        .repository_name("app")
        .policy_text("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    ecr.delete_repository_policy()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    let e = ecr
        .delete_repository_policy()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryPolicyNotFoundException");
}

#[tokio::test]
async fn registries_catalog_data_and_token() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    let r = ecr.describe_registries().send().await.unwrap();
    assert_eq!(r.registries().len(), 1);
    assert_eq!(r.next_token(), None);
    let reg = &r.registries()[0];
    let account = reg.registry_id();
    assert_eq!(
        reg.registry_arn(),
        format!("arn:aws:ecr-public::{account}:registry/{account}")
    );
    assert!(!reg.verified());
    let a = &reg.aliases()[0];
    assert_eq!(a.status().as_str(), "ACTIVE");
    assert!(a.primary_registry_alias() && a.default_registry_alias());
    assert_eq!(
        reg.registry_uri(),
        format!("{}/{}", host(&server), a.name())
    );

    let got = ecr.get_registry_catalog_data().send().await.unwrap();
    assert_eq!(got.registry_catalog_data().unwrap().display_name(), None);
    let put = ecr
        .put_registry_catalog_data()
        .display_name("Acme")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.registry_catalog_data().unwrap().display_name(),
        Some("Acme")
    );
    let got = ecr.get_registry_catalog_data().send().await.unwrap();
    assert_eq!(
        got.registry_catalog_data().unwrap().display_name(),
        Some("Acme")
    );
    let e = ecr
        .put_registry_catalog_data()
        .display_name("x".repeat(101))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");

    let t = ecr.get_authorization_token().send().await.unwrap();
    let data = t.authorization_data().unwrap();
    let token = base64_simd::STANDARD
        .decode_to_vec(data.authorization_token().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    assert!(token.starts_with("AWS:"), "{token}");
    let expires = data.expires_at().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires - now - 12 * 3600).abs() < 60, "{expires} {now}");
}

#[tokio::test]
async fn a_configured_alias_is_primary_beside_the_generated_default() {
    let server = TestServer::start_with(&["--public-registry-alias", "acme"]).await;
    let ecr = public_client(&server);
    let r = ecr.describe_registries().send().await.unwrap();
    let reg = &r.registries()[0];
    let aliases: Vec<_> = reg
        .aliases()
        .iter()
        .map(|a| {
            (
                a.name().to_owned(),
                a.primary_registry_alias(),
                a.default_registry_alias(),
            )
        })
        .collect();
    assert_eq!(aliases.len(), 2, "{aliases:?}");
    assert_eq!(aliases[0], ("acme".to_owned(), true, false));
    let generated = aliases[1].0.clone();
    assert!(!aliases[1].1 && aliases[1].2, "{aliases:?}");
    assert_eq!(reg.registry_uri(), format!("{}/acme", host(&server)));
    let created = ecr
        .create_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.repository().unwrap().repository_uri(),
        Some(format!("{}/acme/app", host(&server)).as_str())
    );
    // Either alias names the registry where the model takes one.
    for alias in ["acme", generated.as_str()] {
        ecr.initiate_layer_upload()
            .registry_id(alias)
            .repository_name("app")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{alias}: {e:?}"));
    }
}

#[tokio::test]
async fn bad_inputs_get_ecr_publics_exceptions() {
    let server = TestServer::start().await;
    let ecr = public_client(&server);
    // Names: 205 characters at most (ECR allows 256), Public's pattern.
    let e = ecr
        .create_repository()
        .repository_name("a".repeat(206))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err(&e),
        (
            "InvalidParameterException".into(),
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length less than or equal to 205'".into()
        )
    );
    create(&ecr, &"a".repeat(205)).await;
    let e = ecr
        .create_repository()
        .repository_name("a__b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    assert!(
        err(&e).1.contains("must satisfy regular expression"),
        "{e:?}"
    );
    // Catalog data limits, the logo's size in decoded bytes.
    let e = ecr
        .create_repository()
        .repository_name("long-description")
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .description("d".repeat(1025))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err(&e).1,
        "Invalid parameter at 'catalogData.description' failed to satisfy constraint: 'Member must have length less than or equal to 1024'"
    );
    let e = ecr
        .create_repository()
        .repository_name("big-logo")
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .logo_image_blob(Blob::new(vec![0u8; 512_001]))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    assert!(err(&e).1.contains("catalogData.logoImageBlob"), "{e:?}");
    let e = ecr
        .create_repository()
        .repository_name("many-arch")
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .set_architectures(Some((0..51).map(|i| format!("a{i}")).collect()))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(err(&e).1.contains("catalogData.architectures"), "{e:?}");
    // Tag keys: InvalidTagParameterException.
    let e = ecr
        .create_repository()
        .repository_name("tagged")
        .tags(Tag::builder().key("k".repeat(129)).value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidTagParameterException");
    // None of the refused creations made a repository.
    let all = ecr.describe_repositories().send().await.unwrap();
    assert_eq!(all.repositories().len(), 1);
    // Paging.
    let e = ecr
        .describe_repositories()
        .max_results(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    let e = ecr
        .describe_registries()
        .max_results(1001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    // ARNs: ECR Public's form only.
    for arn in [
        "arn:aws:ecr:us-east-1:123456789012:repository/x",
        "not an arn",
    ] {
        let e = ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err(&e).0, "InvalidParameterException", "{arn}");
    }
    // An alias no registry has.
    let e = ecr
        .initiate_layer_upload()
        .registry_id("nosuchalias")
        .repository_name("some/repo")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RegistryNotFoundException");
    // registryId where the model wants an account id.
    let e = ecr
        .describe_images()
        .registry_id("nosuchalias")
        .repository_name("some/repo")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err(&e).1,
        "Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''"
    );
    // Layer flow: unknown upload, bad digest, bad upload id.
    create(&ecr, "flow").await;
    let e = ecr
        .complete_layer_upload()
        .repository_name("flow")
        .upload_id("00000000-0000-0000-0000-000000000000")
        .layer_digests(sha256_digest(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "UploadNotFoundException");
    let e = ecr
        .complete_layer_upload()
        .repository_name("flow")
        .upload_id("not-an-id")
        .layer_digests(sha256_digest(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "InvalidParameterException");
    let e = ecr
        .put_image()
        .repository_name("flow")
        .image_manifest(oci_manifest((&sha256_digest(b"c"), 1), &[]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "LayersNotFoundException");
    let e = ecr
        .describe_images()
        .repository_name("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "RepositoryNotFoundException");
    // Past the 50 tags a repository may have: refused whole.
    let arn = ecr
        .describe_repositories()
        .repository_names("flow")
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .repository_arn()
        .unwrap()
        .to_owned();
    let e = ecr
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(
            (0..51)
                .map(|i| Tag::builder().key(format!("k{i}")).value("v").build())
                .collect(),
        ))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "TooManyTagsException");
    let listed = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(listed.tags().is_empty());
}

#[tokio::test]
async fn other_regions_answer_unsupported_command() {
    let server = TestServer::start().await;
    let ecr = public_client_in(&server.endpoint, "us-west-2");
    let e = ecr.describe_registries().send().await.unwrap_err();
    assert_eq!(
        err(&e),
        (
            "UnsupportedCommandException".into(),
            "DescribeRegistries command is only supported in us-east-1.".into()
        )
    );
    let e = ecr.get_authorization_token().send().await.unwrap_err();
    assert_eq!(err(&e).0, "UnsupportedCommandException");
    let e = ecr
        .create_repository()
        .repository_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err(&e).0, "UnsupportedCommandException");
    // Nothing was made.
    let all = public_client(&server)
        .describe_repositories()
        .send()
        .await
        .unwrap();
    assert!(all.repositories().is_empty());
}

#[tokio::test]
async fn the_public_region_can_be_configured() {
    let server = TestServer::start_with(&["--public-region", "eu-west-1"]).await;
    public_client_in(&server.endpoint, "eu-west-1")
        .describe_registries()
        .send()
        .await
        .unwrap();
    let e = public_client(&server)
        .describe_registries()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err(&e),
        (
            "UnsupportedCommandException".into(),
            "DescribeRegistries command is only supported in eu-west-1.".into()
        )
    );
    // ECR keeps its own region.
    server.ecr().describe_repositories().send().await.unwrap();
}

/// A raw SpencerFrontendService request with a fixed (well-formed) signature for `scope`.
async fn raw_public(
    server: &TestServer,
    op: &str,
    scope: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/{scope}/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd"
    );
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("SpencerFrontendService.{op}"))
        .header("authorization", auth)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    (status, json)
}

#[tokio::test]
async fn framing_of_the_public_target() {
    // No keys: any well-formed signature passes, so the framing itself is what is checked.
    let server = TestServer::start_without_keys().await;
    let kind = |b: &serde_json::Value| b["__type"].as_str().unwrap_or_default().to_owned();
    // ECR Public has no BatchGetImage nor GetDownloadUrlForLayer.
    for op in [
        "BatchGetImage",
        "GetDownloadUrlForLayer",
        "ListImages",
        "Nope",
    ] {
        let (s, b) = raw_public(&server, op, "us-east-1/ecr-public", "{}").await;
        assert_eq!(
            (s, kind(&b)),
            (400, "UnknownOperationException".into()),
            "{op}"
        );
    }
    // Signed for ECR: the scope names the wrong service.
    let (s, b) = raw_public(&server, "DescribeRegistries", "us-east-1/ecr", "{}").await;
    assert_eq!((s, kind(&b)), (400, "InvalidSignatureException".into()));
    assert!(
        b["message"].as_str().unwrap().contains("'ecr-public'"),
        "{b}"
    );
    // And an ECR target signed for ECR Public, the other way round.
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr-public/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Bodies: not JSON, wrong types, bad base64, empty.
    let (s, b) = raw_public(&server, "CreateRepository", "us-east-1/ecr-public", "{x").await;
    assert_eq!((s, kind(&b)), (400, "SerializationException".into()));
    let (s, b) = raw_public(
        &server,
        "CreateRepository",
        "us-east-1/ecr-public",
        r#"{"repositoryName":["x"]}"#,
    )
    .await;
    assert_eq!((s, kind(&b)), (400, "SerializationException".into()));
    let (s, b) = raw_public(
        &server,
        "CreateRepository",
        "us-east-1/ecr-public",
        r#"{"repositoryName":"x1","catalogData":{"logoImageBlob":"%%%"}}"#,
    )
    .await;
    assert_eq!((s, kind(&b)), (400, "SerializationException".into()));
    let (s, b) = raw_public(&server, "CreateRepository", "us-east-1/ecr-public", "").await;
    assert_eq!(
        (s, kind(&b), b["message"].as_str().unwrap_or_default()),
        (
            400,
            "InvalidParameterException".into(),
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'"
        )
    );
    let (s, b) = raw_public(&server, "DescribeRegistries", "us-east-1/ecr-public", "").await;
    assert_eq!(s, 200, "{b}");
    // Enum-free shapes still refuse what the model bounds: a tag key list over 200.
    let keys: Vec<String> = (0..201).map(|i| format!("k{i}")).collect();
    let (s, b) = raw_public(
        &server,
        "UntagResource",
        "us-east-1/ecr-public",
        &serde_json::json!({"resourceArn": "arn:aws:ecr-public::000000000000:repository/x", "tagKeys": keys}).to_string(),
    )
    .await;
    assert_eq!(
        (s, kind(&b)),
        (400, "InvalidParameterException".into()),
        "{b}"
    );
}
