//! PutImage rules, ListImages, DescribeImages and BatchDeleteImage.

use aws_sdk_ecr::types::{
    ImageFailureCode, ImageIdentifier, ImageTagMutability, ListImagesFilter, TagStatus,
};

use crate::harness::*;

fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

fn by_digest(d: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(d).build()
}

fn index_of(children: &[(&str, usize)]) -> String {
    let m: Vec<serde_json::Value> = children
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
                                          "platform": {"architecture": "amd64", "os": "linux"}}))
        .collect();
    serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": m}).to_string()
}

#[tokio::test]
async fn put_image_checks_references_digest_and_duplicates() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let put = |manifest: String, tag: Option<&str>| {
        let ecr = ecr.clone();
        let tag = tag.map(str::to_owned);
        async move {
            ecr.put_image()
                .repository_name("team/app")
                .image_manifest(manifest)
                .set_image_tag(tag)
                .send()
                .await
        }
    };

    let missing = sha256_digest(b"not uploaded");
    let e = put(oci_manifest((&missing, 12), &[]), Some("x"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LayersNotFoundException");
    let e = put("{not json".into(), None).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = put(r#"{"schemaVersion":2}"#.into(), None)
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "InvalidParameterException",
        "no media type given or inside"
    );

    let (manifest, digest, _) = push_small_image(&ecr, "team/app", "v1", 1).await;
    let e = put(manifest.clone(), Some("v1")).await.unwrap_err();
    assert_eq!(code(&e), "ImageAlreadyExistsException");
    let e = put(manifest.clone(), None).await.unwrap_err();
    assert_eq!(code(&e), "ImageAlreadyExistsException");
    // A new tag on an existing manifest is a retag.
    let retag = put(manifest.clone(), Some("stable")).await.unwrap();
    assert_eq!(
        retag.image().unwrap().image_id().unwrap().image_digest(),
        Some(digest.as_str())
    );
    let e = ecr
        .put_image()
        .repository_name("team/app")
        .image_manifest(&manifest)
        .image_tag("v9")
        .image_digest(sha256_digest(b"something else"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ImageDigestDoesNotMatchException");
    let e = put(manifest.clone(), Some("bad+tag")).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // An index needs its children first.
    let absent = sha256_digest(b"absent child");
    let e = put(
        index_of(&[(&digest, manifest.len()), (&absent, 10)]),
        Some("multi"),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "ReferencedImagesNotFoundException");
    let index = index_of(&[(&digest, manifest.len())]);
    let out = ecr
        .put_image()
        .repository_name("team/app")
        .image_manifest(&index)
        .image_tag("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.image().unwrap().image_manifest_media_type(),
        Some("application/vnd.oci.image.index.v1+json")
    );

    // The child of an index cannot be deleted by digest; the index can.
    let del = ecr
        .batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageReferencedByManifestList)
    );
    let del = ecr
        .batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_tag("multi"))
        .send()
        .await
        .unwrap();
    assert!(del.failures().is_empty());
    let del = ecr
        .batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = del
        .image_ids()
        .iter()
        .map(|i| i.image_tag().unwrap().to_owned())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["stable", "v1"],
        "deleting by digest removes the image and all its tags"
    );
}

#[tokio::test]
async fn immutable_tags_cannot_move() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    ecr.create_repository()
        .repository_name("team/frozen")
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    push_small_image(&ecr, "team/frozen", "v1", 1).await;
    let (m2, _, _) = push_small_image(&ecr, "team/frozen", "v2", 2).await;
    let e = ecr
        .put_image()
        .repository_name("team/frozen")
        .image_manifest(&m2)
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ImageTagAlreadyExistsException");

    // In a mutable repository the tag moves and the old image stays, untagged.
    create_repo(&ecr, "team/app").await;
    let (_, d1, _) = push_small_image(&ecr, "team/app", "latest", 1).await;
    let (m2, d2, _) = push_small_image(&ecr, "team/app", "v2", 2).await;
    ecr.put_image()
        .repository_name("team/app")
        .image_manifest(&m2)
        .image_tag("latest")
        .send()
        .await
        .unwrap();
    let untagged = ecr
        .list_images()
        .repository_name("team/app")
        .filter(
            ListImagesFilter::builder()
                .tag_status(TagStatus::Untagged)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(untagged.image_ids().len(), 1);
    assert_eq!(untagged.image_ids()[0].image_digest(), Some(d1.as_str()));
    assert_eq!(untagged.image_ids()[0].image_tag(), None);
    let latest = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        latest.images()[0].image_id().unwrap().image_digest(),
        Some(d2.as_str())
    );
}

#[tokio::test]
async fn listing_and_describing_paginate_over_tags_and_images() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    for i in 0..5u64 {
        push_small_image(&ecr, "team/app", &format!("v{i}"), i).await;
    }
    // A second tag on one image: ListImages has one entry per tag.
    let first = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v0"))
        .send()
        .await
        .unwrap();
    let m0 = first.images()[0].image_manifest().unwrap().to_owned();
    ecr.put_image()
        .repository_name("team/app")
        .image_manifest(&m0)
        .image_tag("extra")
        .send()
        .await
        .unwrap();

    let mut ids = Vec::new();
    let mut pages = ecr
        .list_images()
        .repository_name("team/app")
        .max_results(2)
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        let p = p.unwrap();
        assert!(p.image_ids().len() <= 2);
        ids.extend(
            p.image_ids()
                .iter()
                .map(|i| i.image_tag().unwrap().to_owned()),
        );
    }
    ids.sort();
    assert_eq!(ids, ["extra", "v0", "v1", "v2", "v3", "v4"]);

    let mut details = Vec::new();
    let mut pages = ecr
        .describe_images()
        .repository_name("team/app")
        .max_results(2)
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        details.extend(p.unwrap().image_details().to_vec());
    }
    assert_eq!(details.len(), 5, "one detail per image");
    let d0 = details
        .iter()
        .find(|d| d.image_tags().contains(&"v0".to_owned()))
        .unwrap();
    let mut t = d0.image_tags().to_vec();
    t.sort();
    assert_eq!(t, ["extra", "v0"]);

    let e = ecr
        .describe_images()
        .repository_name("team/app")
        .image_ids(by_tag("nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ImageNotFoundException");
    let named = ecr
        .describe_images()
        .repository_name("team/app")
        .image_ids(by_tag("v3"))
        .send()
        .await
        .unwrap();
    assert_eq!(named.image_details().len(), 1);

    // Deleting one of two tags keeps the image; deleting the last deletes it.
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_tag("extra"))
        .send()
        .await
        .unwrap();
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_tag("v0"))
        .send()
        .await
        .unwrap();
    let all = ecr
        .describe_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(all.image_details().len(), 4);
    let del = ecr
        .batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_tag("v0"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageNotFound)
    );
}

#[tokio::test]
async fn page_tokens_resume_their_own_listing_and_no_other() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    create_repo(&ecr, "team/other").await;
    let mut digests = Vec::new();
    for i in 0..4 {
        digests.push(
            push_small_image(&ecr, "team/app", &format!("v{i}"), i)
                .await
                .1,
        );
    }
    // An image with two tags, and one left untagged by a moved tag.
    let m = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_manifest()
        .unwrap()
        .to_owned();
    ecr.put_image()
        .repository_name("team/app")
        .image_manifest(&m)
        .image_tag("v1-again")
        .send()
        .await
        .unwrap();
    push_small_image(&ecr, "team/app", "v3", 4).await;
    let mut untagged_seen = Vec::new();
    for status in [TagStatus::Any, TagStatus::Tagged, TagStatus::Untagged] {
        let all = ecr
            .list_images()
            .repository_name("team/app")
            .filter(
                ListImagesFilter::builder()
                    .tag_status(status.clone())
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .image_ids()
            .to_vec();
        let mut paged = Vec::new();
        let mut pages = ecr
            .list_images()
            .repository_name("team/app")
            .filter(
                ListImagesFilter::builder()
                    .tag_status(status.clone())
                    .build(),
            )
            .max_results(1)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            paged.extend(p.unwrap().image_ids().to_vec());
        }
        assert_eq!(paged, all, "{status:?}");
        if status == TagStatus::Untagged {
            untagged_seen = all;
        }
    }
    assert_eq!(untagged_seen.len(), 1);
    assert_eq!(untagged_seen[0].image_digest(), Some(digests[3].as_str()));

    let list_token = ecr
        .list_images()
        .repository_name("team/app")
        .max_results(1)
        .send()
        .await
        .unwrap()
        .next_token()
        .unwrap()
        .to_owned();
    let describe_token = ecr
        .describe_images()
        .repository_name("team/app")
        .max_results(1)
        .send()
        .await
        .unwrap()
        .next_token()
        .unwrap()
        .to_owned();
    let repos_token = ecr
        .describe_repositories()
        .max_results(1)
        .send()
        .await
        .unwrap()
        .next_token()
        .unwrap()
        .to_owned();
    // Each resumes its own listing.
    let next = ecr
        .list_images()
        .repository_name("team/app")
        .max_results(1)
        .next_token(&list_token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.image_ids().len(), 1);
    let next = ecr
        .describe_images()
        .repository_name("team/app")
        .max_results(1)
        .next_token(&describe_token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.image_details().len(), 1);
    let next = ecr
        .describe_repositories()
        .max_results(1)
        .next_token(&repos_token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.repositories()[0].repository_name(), Some("team/other"));
    // Another listing's token, or well-formed base64 of no key ("Hello World"), is refused as ECR
    // refuses a token it did not issue.
    let hello = "SGVsbG8gV29ybGQ";
    for token in [&describe_token, &repos_token, hello] {
        let e = ecr
            .list_images()
            .repository_name("team/app")
            .next_token(token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "ListImages {token}");
    }
    for token in [&list_token, &repos_token, hello] {
        let e = ecr
            .describe_images()
            .repository_name("team/app")
            .next_token(token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(&e),
            "InvalidParameterException",
            "DescribeImages {token}"
        );
    }
    for token in [&list_token, &describe_token, hello] {
        let e = ecr
            .describe_repositories()
            .next_token(token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(&e),
            "InvalidParameterException",
            "DescribeRepositories {token}"
        );
    }
}
