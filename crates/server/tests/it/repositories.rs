//! CreateRepository, DescribeRepositories, DeleteRepository.

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};

use crate::harness::*;

#[tokio::test]
async fn create_stores_and_returns_every_setting() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let created = ecr
        .create_repository()
        .repository_name("team/app")
        .tags(Tag::builder().key("env").value("dev").build().unwrap())
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .kms_key("alias/mine")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let r = created.repository().unwrap();
    assert_eq!(
        r.repository_arn(),
        Some("arn:aws:ecr:us-east-1:000000000000:repository/team/app")
    );
    assert_eq!(r.registry_id(), Some("000000000000"));
    assert!(r.repository_uri().unwrap().ends_with("/team/app"));
    assert!(r.created_at().is_some());

    let described = ecr
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap();
    let d = &described.repositories()[0];
    assert_eq!(
        d.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert_eq!(
        d.image_scanning_configuration().map(|c| c.scan_on_push()),
        Some(true)
    );
    let enc = d.encryption_configuration().unwrap();
    assert_eq!(
        (enc.encryption_type(), enc.kms_key()),
        (&EncryptionType::Kms, Some("alias/mine"))
    );
    assert_eq!(d.created_at(), r.created_at());

    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(r.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags(),
        [Tag::builder().key("env").value("dev").build().unwrap()]
    );
    let e = ecr
        .list_tags_for_resource()
        .resource_arn("arn:aws:s3:::bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    let e = ecr
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryAlreadyExistsException");
}

#[tokio::test]
async fn create_validates_its_input() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    for bad in ["Upper", "a", "trailing/", "double//slash", "x__-y"] {
        let e = ecr
            .create_repository()
            .repository_name(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{bad}");
    }
    let e = ecr
        .create_repository()
        .repository_name("ok-name")
        .registry_id("123")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = ecr
        .create_repository()
        .repository_name("ok-name")
        .image_tag_mutability(ImageTagMutability::from("SOMETIMES"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let mut too_many = ecr.create_repository().repository_name("ok-name");
    for i in 0..51 {
        too_many = too_many.tags(
            Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap(),
        );
    }
    assert_eq!(
        code(&too_many.send().await.unwrap_err()),
        "TooManyTagsException"
    );
    let e = ecr
        .create_repository()
        .repository_name("ok-name")
        .tags(
            Tag::builder()
                .key("k".repeat(129))
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidTagParameterException");
    // Nothing was created by any of the refused calls.
    let all = ecr.describe_repositories().send().await.unwrap();
    assert!(all.repositories().is_empty());
}

#[tokio::test]
async fn describe_paginates_and_requires_every_named_repository() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let names: Vec<String> = (0..7).map(|i| format!("repo-{i}")).collect();
    for n in &names {
        create_repo(&ecr, n).await;
    }
    let first = ecr
        .describe_repositories()
        .max_results(3)
        .send()
        .await
        .unwrap();
    assert_eq!(first.repositories().len(), 3);
    assert!(first.next_token().is_some());

    let mut seen = Vec::new();
    let mut pages = ecr
        .describe_repositories()
        .max_results(3)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        seen.extend(
            page.unwrap()
                .repositories()
                .iter()
                .map(|r| r.repository_name().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, names);

    let e = ecr
        .describe_repositories()
        .repository_names("repo-1")
        .repository_names("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
    let e = ecr
        .describe_repositories()
        .max_results(1001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = ecr
        .describe_repositories()
        .next_token("%%%")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[tokio::test]
async fn delete_needs_force_while_images_remain() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    push_small_image(&ecr, "team/app", "v1", 3).await;
    let e = ecr
        .delete_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotEmptyException");
    // Still intact after the refusal.
    let imgs = ecr
        .list_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(imgs.image_ids().len(), 1);

    let deleted = ecr
        .delete_repository()
        .repository_name("team/app")
        .force(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.repository().unwrap().repository_name(),
        Some("team/app")
    );
    let e = ecr
        .delete_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");

    // A new repository of the same name starts empty: nothing of the old one leaks in.
    create_repo(&ecr, "team/app").await;
    assert!(
        ecr.list_images()
            .repository_name("team/app")
            .send()
            .await
            .unwrap()
            .image_ids()
            .is_empty()
    );
    create_repo(&ecr, "empty/one").await;
    ecr.delete_repository()
        .repository_name("empty/one")
        .send()
        .await
        .unwrap();
}
