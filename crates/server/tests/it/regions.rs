//! Regions: one deployment serves every region a client signs for, each (account, region) its
//! own registry; a data directory of the single-region berth opens as its configured region.

use std::path::{Path, PathBuf};

use crate::harness::*;

/// The committed data directory of the single-region berth (see its `make.sh`).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single-region")
}

/// Copies a directory tree (the fixture is never opened in place: opening writes to it).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A data directory written before regions existed opens as its configured region with
/// everything in it: repository, settings, policies, tags, the image and its blobs. It is
/// SQLite and files whatever the pass, since that is what the fixture holds.
#[tokio::test]
async fn a_single_region_data_directory_opens_as_its_region() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    copy_tree(&fixture().join("data"), &dir);
    let digest = std::fs::read_to_string(fixture().join("digest")).unwrap();
    let digest = digest.trim();
    let metadata = format!("sqlite://{}", dir.join("meta.sqlite").display());
    let server = TestServer::start_in_with(
        &dir,
        &[
            "--region",
            "eu-west-1",
            "--metadata",
            &metadata,
            "--blobs",
            "",
        ],
    )
    .await;
    let ecr = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);

    let repos = ecr.describe_repositories().send().await.unwrap();
    let repos = repos.repositories();
    assert_eq!(repos.len(), 1, "{repos:?}");
    let repo = &repos[0];
    assert_eq!(repo.repository_name(), Some("team/app"));
    assert_eq!(
        repo.repository_arn(),
        Some("arn:aws:ecr:eu-west-1:000000000000:repository/team/app")
    );
    assert!(
        repo.repository_uri().unwrap().ends_with("/team/app"),
        "{repo:?}"
    );

    let images = ecr
        .describe_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let images = images.image_details();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].image_digest(), Some(digest));
    assert_eq!(images[0].image_tags(), ["v1"]);

    // The image can be pulled, blob bytes and all.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(got.images()[0].image_manifest().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(layer)
        .send()
        .await
        .unwrap();
    let bytes = reqwest::get(url.download_url().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_digest(&bytes), layer);

    let policy = ecr
        .get_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert!(policy.policy_text().unwrap().contains("111111111111"));
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn("arn:aws:ecr:eu-west-1:000000000000:repository/team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), "team");
    let registry_policy = ecr.get_registry_policy().send().await.unwrap();
    assert!(
        registry_policy
            .policy_text()
            .unwrap()
            .contains("222222222222")
    );
    let templates = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    assert_eq!(templates.repository_creation_templates().len(), 1);
    assert_eq!(
        templates.repository_creation_templates()[0].prefix(),
        Some("team")
    );

    // The old data is the registry of its region only: another region of the same account is
    // a registry of its own, empty.
    let other = ecr_client_in(&server.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY);
    let repos = other.describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");
    assert_eq!(
        code(&other.get_registry_policy().send().await.unwrap_err()),
        "RegistryPolicyNotFoundException"
    );
}
