//! ECR's per-upload and per-image limits: parts per upload, layer size, tags per image. The
//! layer limits are lowered with the hidden `--limit` flag (52,000 MiB cannot be written in a
//! test); tags per image is checked at ECR's real 1,000.

use aws_sdk_ecr::primitives::Blob;

use crate::harness::*;

async fn part(
    ecr: &aws_sdk_ecr::Client,
    id: &str,
    first: usize,
    len: usize,
) -> Result<i64, String> {
    ecr.upload_layer_part()
        .repository_name("lim/app")
        .upload_id(id)
        .part_first_byte(first as i64)
        .part_last_byte((first + len - 1) as i64)
        .layer_part_blob(Blob::new(random_bytes(len, first as u64)))
        .send()
        .await
        .map(|o| o.last_byte_received().unwrap())
        .map_err(|e| code(&e))
}

#[tokio::test]
async fn parts_per_upload_and_layer_size_are_capped() {
    let server = TestServer::start_with(&[
        "--limit",
        "max-parts-per-upload=4",
        "--limit",
        "max-layer-size=10000",
    ])
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, "lim/app").await;

    let id = initiate_upload(&ecr, "lim/app").await;
    for i in 0..4 {
        assert_eq!(part(&ecr, &id, i * 10, 10).await, Ok((i * 10 + 9) as i64));
    }
    let e = part(&ecr, &id, 40, 10).await.unwrap_err();
    assert_eq!(e, "LimitExceededException", "the fifth part of four");

    let id = initiate_upload(&ecr, "lim/app").await;
    assert_eq!(part(&ecr, &id, 0, 8000).await, Ok(7999));
    let e = part(&ecr, &id, 8000, 2001).await.unwrap_err();
    assert_eq!(e, "LimitExceededException", "one byte past the layer size");
    assert_eq!(
        part(&ecr, &id, 8000, 2000).await,
        Ok(9999),
        "the refused part left the upload where it was"
    );
}

#[tokio::test]
async fn an_image_takes_at_most_1000_tags() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "lim/app").await;
    let (manifest, digest, _) = push_small_image(&ecr, "lim/app", "t0", 3).await;
    // 999 more, 8 at a time (the check precedes the write, so only the total is exact).
    let tags: Vec<String> = (1..1000).map(|i| format!("t{i}")).collect();
    for chunk in tags.chunks(8) {
        let puts = chunk.iter().map(|t| {
            ecr.put_image()
                .repository_name("lim/app")
                .image_manifest(&manifest)
                .image_tag(t)
                .send()
        });
        for r in futures_util::future::join_all(puts).await {
            r.expect("a tag within the limit");
        }
    }
    let e = ecr
        .put_image()
        .repository_name("lim/app")
        .image_manifest(&manifest)
        .image_tag("t1000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");
    let message = e
        .as_service_error()
        .and_then(|s| s.meta().message())
        .unwrap_or("");
    assert!(
        message.contains("maximum allowed number of tags per image which is '1000'"),
        "{message}"
    );
    let listed = ecr
        .describe_images()
        .repository_name("lim/app")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.image_details().len(), 1);
    assert_eq!(
        listed.image_details()[0].image_digest(),
        Some(digest.as_str())
    );
    assert_eq!(listed.image_details()[0].image_tags().len(), 1000);
}
