//! The pull side: BatchGetImage and GetDownloadUrlForLayer.

use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};

use crate::harness::*;

fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

fn by_digest(d: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(d).build()
}

#[tokio::test]
async fn batch_get_image_reports_per_image_failures() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (manifest, digest, _) = push_small_image(&ecr, "team/app", "v1", 1).await;
    let (_, other, _) = push_small_image(&ecr, "team/app", "v2", 2).await;

    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .image_ids(by_digest(&digest))
        .image_ids(by_tag("missing"))
        .image_ids(by_digest("sha256:zz"))
        .image_ids(ImageIdentifier::builder().build())
        .image_ids(
            ImageIdentifier::builder()
                .image_tag("v1")
                .image_digest(&other)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images().len(), 2);
    for img in got.images() {
        assert_eq!(
            img.image_manifest(),
            Some(manifest.as_str()),
            "stored bytes, byte for byte"
        );
    }
    let codes: Vec<_> = got
        .failures()
        .iter()
        .map(|f| f.failure_code().cloned().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            ImageFailureCode::ImageNotFound,
            ImageFailureCode::InvalidImageDigest,
            ImageFailureCode::MissingDigestAndTag,
            ImageFailureCode::ImageTagDoesNotMatchDigest
        ]
    );
    assert_eq!(
        got.failures()[0].failure_reason(),
        Some("Requested image not found")
    );

    // A media type the client does not accept is not found for it.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap();
    assert!(got.images().is_empty());
    assert_eq!(
        got.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageNotFound)
    );

    let e = ecr
        .batch_get_image()
        .repository_name("team/none")
        .image_ids(by_tag("v1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

#[tokio::test]
async fn download_urls_authorise_themselves_support_range_and_expire_with_the_image() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (_, digest, layer_digest) = push_small_image(&ecr, "team/app", "v1", 7).await;
    let layer = random_bytes(1007, 7);
    assert_eq!(sha256_digest(&layer), layer_digest);

    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer_digest)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&server.endpoint));
    let http = server.http();
    let r = http
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/1007");
    assert_eq!(r.bytes().await.unwrap(), &layer[100..200]);
    let r = http
        .get(&url)
        .header("range", "bytes=2000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    // A tampered URL is refused.
    let tampered = url.replace("signature=", "signature=00");
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    let other = url.replace("team/app", "team/other");
    assert_eq!(http.get(&other).send().await.unwrap().status(), 403);

    // Once no image references the layer, the URL stops working and no new one is issued.
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer_digest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LayerInaccessibleException");
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(sha256_digest(b"never uploaded"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LayersNotFoundException");
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest("bad")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}
