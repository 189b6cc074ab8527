//! Durability: what was acknowledged survives `kill -9` and a restart.

use aws_sdk_ecr::primitives::Blob;

use crate::harness::*;

#[tokio::test]
async fn an_upload_continues_after_kill_9_and_completes_with_the_right_digest() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(11 * MIB + 333, 42);
    let (id, image_digest) = {
        let mut server = TestServer::start_in(dir.path()).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;
        let (_, image_digest, _) = push_small_image(&ecr, "team/app", "before", 1).await;
        let id = initiate_upload(&ecr, "team/app").await;
        ecr.upload_layer_part()
            .repository_name("team/app")
            .upload_id(&id)
            .part_first_byte(0)
            .part_last_byte(5 * MIB as i64 - 1)
            .layer_part_blob(Blob::new(&data[..5 * MIB]))
            .send()
            .await
            .unwrap();
        server.kill_hard();
        (id, image_digest)
    };

    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    // The acknowledged image is intact.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("before")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.images()[0].image_id().unwrap().image_digest(),
        Some(image_digest.as_str())
    );
    // The upload resumes at the byte after the last acknowledged one.
    let e = ecr
        .upload_layer_part()
        .repository_name("team/app")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(9)
        .layer_part_blob(Blob::new(&data[..10]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError::InvalidLayerPartException(
        e,
    ) = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(e.last_valid_byte_received(), Some(5 * MIB as i64 - 1));
    for (first, last) in [(5 * MIB, 10 * MIB), (10 * MIB, data.len())] {
        ecr.upload_layer_part()
            .repository_name("team/app")
            .upload_id(&id)
            .part_first_byte(first as i64)
            .part_last_byte(last as i64 - 1)
            .layer_part_blob(Blob::new(&data[first..last]))
            .send()
            .await
            .unwrap();
    }
    let done = ecr
        .complete_layer_upload()
        .repository_name("team/app")
        .upload_id(&id)
        .layer_digests(sha256_digest(&data))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(&data).as_str()));
    if !on_postgres() {
        assert!(server.data_dir().join("meta.sqlite").exists());
    }
}
