//! The push side: BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
//! CompleteLayerUpload, PutImage, and their errors.

use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::LayerAvailability;

use crate::harness::*;

#[tokio::test]
async fn multi_layer_image_pushes_in_parts_and_pulls_back_byte_for_byte() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;

    // Parts of 20 MiB and 5 MiB with a small last part, a 5+2 MiB layer, and a one-part config.
    let big = random_bytes(25 * MIB + 1000, 1);
    let mid = random_bytes(7 * MIB, 2);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let (bd, md, cd) = (
        sha256_digest(&big),
        sha256_digest(&mid),
        sha256_digest(&config),
    );

    let before = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&bd)
        .layer_digests(&md)
        .send()
        .await
        .unwrap();
    assert!(
        before
            .layers()
            .iter()
            .all(|l| l.layer_availability() == Some(&LayerAvailability::Unavailable))
    );

    let init = ecr
        .initiate_layer_upload()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let part_size = init.part_size().unwrap();
    assert!(
        (5 * MIB as i64..=20 * MIB as i64).contains(&part_size),
        "partSize {part_size}"
    );

    assert_eq!(
        push_layer(&ecr, "team/app", &big, &[20 * MIB, 5 * MIB, 1000]).await,
        bd
    );
    assert_eq!(
        push_layer(&ecr, "team/app", &mid, &[5 * MIB, 2 * MIB]).await,
        md
    );
    assert_eq!(
        push_layer(&ecr, "team/app", &config, &[config.len()]).await,
        cd
    );

    let after = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&bd)
        .layer_digests(&md)
        .layer_digests(&cd)
        .send()
        .await
        .unwrap();
    let sizes: Vec<_> = after
        .layers()
        .iter()
        .map(|l| (l.layer_availability().cloned(), l.layer_size()))
        .collect();
    assert_eq!(
        sizes,
        vec![
            (Some(LayerAvailability::Available), Some(big.len() as i64)),
            (Some(LayerAvailability::Available), Some(mid.len() as i64)),
            (
                Some(LayerAvailability::Available),
                Some(config.len() as i64)
            ),
        ]
    );

    let manifest = oci_manifest((&cd, config.len()), &[(&bd, big.len()), (&md, mid.len())]);
    let put = ecr
        .put_image()
        .repository_name("team/app")
        .image_manifest(&manifest)
        .image_tag("v1")
        .send()
        .await
        .unwrap();
    let image = put.image().unwrap();
    let digest = image.image_id().unwrap().image_digest().unwrap().to_owned();
    assert_eq!(
        digest,
        sha256_digest(manifest.as_bytes()),
        "digest is the sha256 of the bytes sent"
    );
    assert_eq!(image.image_manifest(), Some(manifest.as_str()));
    assert_eq!(
        image.image_manifest_media_type(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    // Pull: manifest by tag, then every blob through its download URL.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert!(got.failures().is_empty());
    let pulled = got.images()[0].image_manifest().unwrap();
    assert_eq!(sha256_digest(pulled.as_bytes()), digest);
    for (d, bytes) in [(&bd, &big), (&md, &mid), (&cd, &config)] {
        let url = ecr
            .get_download_url_for_layer()
            .repository_name("team/app")
            .layer_digest(d.as_str())
            .send()
            .await
            .unwrap()
            .download_url()
            .unwrap()
            .to_owned();
        let body = reqwest::get(&url)
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), bytes.len());
        assert_eq!(&sha256_digest(&body), d);
    }

    let details = ecr
        .describe_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let detail = &details.image_details()[0];
    assert_eq!(detail.image_digest(), Some(digest.as_str()));
    assert_eq!(detail.image_tags(), ["v1"]);
    assert_eq!(
        detail.image_size_in_bytes(),
        Some((big.len() + mid.len() + config.len()) as i64)
    );
    assert_eq!(
        detail.artifact_media_type(),
        Some("application/vnd.oci.image.config.v1+json")
    );
    assert!(detail.image_pushed_at().is_some());
}

async fn part(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    id: &str,
    first: i64,
    last: i64,
    data: &[u8],
) -> Result<i64, aws_sdk_ecr::error::SdkError<UploadLayerPartError>> {
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(id)
        .part_first_byte(first)
        .part_last_byte(last)
        .layer_part_blob(Blob::new(data))
        .send()
        .await
        .map(|r| r.last_byte_received().unwrap())
}

#[tokio::test]
async fn out_of_order_parts_get_invalid_layer_part_with_the_last_valid_byte() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let id = initiate_upload(&ecr, "team/app").await;
    let data = random_bytes(6 * MIB, 3);

    // A first part that does not start at 0: nothing is stored yet, so no last valid byte.
    let err = part(&ecr, "team/app", &id, 5, 9, &data[5..10])
        .await
        .unwrap_err()
        .into_service_error();
    let UploadLayerPartError::InvalidLayerPartException(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.last_valid_byte_received(), None);
    assert_eq!(e.upload_id(), Some(id.as_str()));
    assert_eq!(e.repository_name(), Some("team/app"));
    assert_eq!(e.registry_id(), Some("000000000000"));

    assert_eq!(
        part(
            &ecr,
            "team/app",
            &id,
            0,
            5 * MIB as i64 - 1,
            &data[..5 * MIB]
        )
        .await
        .unwrap(),
        5 * MIB as i64 - 1
    );
    // A gap, a resend of accepted bytes, and a range that does not match the data's length.
    for (first, last, bytes) in [
        (5 * MIB as i64 + 1, 6 * MIB as i64 - 1, &data[5 * MIB + 1..]),
        (0, 9, &data[..10]),
        (5 * MIB as i64, 6 * MIB as i64 + 10, &data[5 * MIB..]),
    ] {
        let err = part(&ecr, "team/app", &id, first, last, bytes)
            .await
            .unwrap_err()
            .into_service_error();
        let UploadLayerPartError::InvalidLayerPartException(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.last_valid_byte_received(), Some(5 * MIB as i64 - 1));
    }
    // The upload was not disturbed: the right next part is accepted and the digest is right.
    assert_eq!(
        part(
            &ecr,
            "team/app",
            &id,
            5 * MIB as i64,
            6 * MIB as i64 - 1,
            &data[5 * MIB..]
        )
        .await
        .unwrap(),
        6 * MIB as i64 - 1
    );
    let done = ecr
        .complete_layer_upload()
        .repository_name("team/app")
        .upload_id(&id)
        .layer_digests(sha256_digest(&data))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(&data).as_str()));
}

#[tokio::test]
async fn unknown_or_foreign_uploads_are_not_found() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    create_repo(&ecr, "team/other").await;
    let id = initiate_upload(&ecr, "team/app").await;
    for (repo, upload) in [
        ("team/app", "0f0e7c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
        ("team/other", id.as_str()),
    ] {
        let e = part(&ecr, repo, upload, 0, 0, b"x").await.unwrap_err();
        assert_eq!(code(&e), "UploadNotFoundException");
        let e = ecr
            .complete_layer_upload()
            .repository_name(repo)
            .upload_id(upload)
            .layer_digests(sha256_digest(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "UploadNotFoundException");
    }
    let e = part(&ecr, "team/app", "not-a-uuid", 0, 0, b"x")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = ecr
        .initiate_layer_upload()
        .repository_name("team/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

#[tokio::test]
async fn completion_checks_parts_and_digest() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let complete = |id: String, digest: String| {
        let ecr = ecr.clone();
        async move {
            ecr.complete_layer_upload()
                .repository_name("team/app")
                .upload_id(id)
                .layer_digests(digest)
                .send()
                .await
        }
    };

    let empty = initiate_upload(&ecr, "team/app").await;
    let e = complete(empty, sha256_digest(b"")).await.unwrap_err();
    assert_eq!(code(&e), "EmptyUploadException");

    // Two 1 MiB parts: the first is not the last and is under 5 MiB.
    let small = random_bytes(2 * MIB, 4);
    let id = initiate_upload(&ecr, "team/app").await;
    part(&ecr, "team/app", &id, 0, MIB as i64 - 1, &small[..MIB])
        .await
        .unwrap();
    part(
        &ecr,
        "team/app",
        &id,
        MIB as i64,
        2 * MIB as i64 - 1,
        &small[MIB..],
    )
    .await
    .unwrap();
    let e = complete(id, sha256_digest(&small)).await.unwrap_err();
    assert_eq!(code(&e), "LayerPartTooSmallException");

    let data = random_bytes(1234, 5);
    let id = initiate_upload(&ecr, "team/app").await;
    part(&ecr, "team/app", &id, 0, 1233, &data).await.unwrap();
    let e = complete(id.clone(), sha256_digest(b"other bytes"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidLayerException");
    let e = complete(id.clone(), format!("sha512:{}", "a".repeat(128)))
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "InvalidLayerException",
        "ECR computes sha256 only"
    );
    let e = complete(id.clone(), "not-a-digest".into())
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    // The upload survives a wrong digest, and completes with the right one.
    assert_eq!(
        complete(id.clone(), sha256_digest(&data))
            .await
            .unwrap()
            .layer_digest(),
        Some(sha256_digest(&data).as_str())
    );
    let e = complete(id, sha256_digest(&data)).await.unwrap_err();
    assert_eq!(
        code(&e),
        "UploadNotFoundException",
        "a completed upload is dead"
    );

    // The same layer again in the same repository.
    let id = initiate_upload(&ecr, "team/app").await;
    part(&ecr, "team/app", &id, 0, 1233, &data).await.unwrap();
    let e = complete(id, sha256_digest(&data)).await.unwrap_err();
    assert_eq!(code(&e), "LayerAlreadyExistsException");
}

#[tokio::test]
async fn blobs_are_available_per_repository() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/a").await;
    create_repo(&ecr, "team/b").await;
    let data = random_bytes(4096, 6);
    let d = push_layer(&ecr, "team/a", &data, &[data.len()]).await;
    let check = ecr
        .batch_check_layer_availability()
        .repository_name("team/b")
        .layer_digests(&d)
        .layer_digests("")
        .layer_digests("sha256:nothex")
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable)
    );
    let codes: Vec<_> = check
        .failures()
        .iter()
        .map(|f| f.failure_code().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(codes, ["MissingLayerDigest", "InvalidLayerDigest"]);
    // Uploading it to B is not "already exists": availability is per repository.
    assert_eq!(push_layer(&ecr, "team/b", &data, &[data.len()]).await, d);
}

#[tokio::test]
async fn oversized_parts_are_refused() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let id = initiate_upload(&ecr, "team/app").await;
    let data = vec![7u8; 20 * MIB + 1];
    let e = part(&ecr, "team/app", &id, 0, data.len() as i64 - 1, &data)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    // Exactly the maximum is fine.
    assert_eq!(
        part(
            &ecr,
            "team/app",
            &id,
            0,
            20 * MIB as i64 - 1,
            &data[..20 * MIB]
        )
        .await
        .unwrap(),
        20 * MIB as i64 - 1
    );
}
