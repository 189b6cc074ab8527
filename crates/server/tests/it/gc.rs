//! Garbage collection (`berth gc`), upload expiry and caps, and `berth fsck`.

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, LayerAvailability};

use crate::harness::*;

fn count(report: &str, field: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}: ")))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

async fn availability(ecr: &aws_sdk_ecr::Client, digest: &str) -> LayerAvailability {
    let r = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(digest)
        .send()
        .await
        .unwrap();
    r.layers()[0].layer_availability().unwrap().clone()
}

#[tokio::test]
async fn gc_removes_only_what_no_image_uses_and_only_after_the_grace_period() {
    let server = TestServer::start_with(&["--gc-interval-secs", "0"]).await;
    let dir = server.data_dir().to_path_buf();
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (_, image, layer) = push_small_image(&ecr, "team/app", "v1", 1).await;
    let orphan_bytes = random_bytes(3000, 99);
    let orphan = push_layer(&ecr, "team/app", &orphan_bytes, &[orphan_bytes.len()]).await;

    // Within the grace period nothing goes, not even the unreferenced upload.
    let (rc, out) = berth_cli(&["gc"], &dir);
    assert_eq!((rc, count(&out, "deleted_blobs")), (0, 0), "{out}");
    // A dry run reports without removing.
    let (_, out) = berth_cli(&["gc", "--dry-run", "--gc-grace-secs", "0"], &dir);
    assert_eq!(count(&out, "unlinked_blobs"), 1, "{out}");
    assert_eq!(
        availability(&ecr, &orphan).await,
        LayerAvailability::Available
    );
    // For real: the unreferenced blob goes; the image is untouched.
    let (_, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], &dir);
    assert_eq!(
        (count(&out, "unlinked_blobs"), count(&out, "deleted_blobs")),
        (1, 1),
        "{out}"
    );
    assert_eq!(count(&out, "freed_bytes"), orphan_bytes.len() as u64);
    assert_eq!(
        availability(&ecr, &orphan).await,
        LayerAvailability::Unavailable
    );
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    assert_eq!(
        sha256_digest(&reqwest::get(url).await.unwrap().bytes().await.unwrap()),
        layer
    );

    // Once the image is deleted its blobs go too, and fsck finds everything consistent.
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_digest(&image).build())
        .send()
        .await
        .unwrap();
    let (_, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], &dir);
    assert_eq!(count(&out, "deleted_blobs"), 2, "config and layer: {out}");
    let (rc, out) = berth_cli(&["fsck"], &dir);
    assert_eq!((rc, out.trim()), (0, "0 problem(s)"));
}

#[tokio::test]
async fn uploads_expire_and_are_capped_per_repository() {
    let server = TestServer::start_with(&[
        "--upload-expiry-secs",
        "2",
        "--max-open-uploads",
        "2",
        "--gc-interval-secs",
        "0",
    ])
    .await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let a = initiate_upload(&ecr, "team/app").await;
    ecr.upload_layer_part()
        .repository_name("team/app")
        .upload_id(&a)
        .part_first_byte(0)
        .part_last_byte(2)
        .layer_part_blob(Blob::new(b"abc".to_vec()))
        .send()
        .await
        .unwrap();
    ecr.initiate_layer_upload()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    // (The SDK retries LimitExceededException as throttling before it gives up.)
    let e = ecr
        .initiate_layer_upload()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let e = ecr
        .upload_layer_part()
        .repository_name("team/app")
        .upload_id(&a)
        .part_first_byte(3)
        .part_last_byte(5)
        .layer_part_blob(Blob::new(b"def".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UploadNotFoundException", "idle past its expiry");
    let (_, out) = berth_cli(&["gc", "--upload-expiry-secs", "2"], server.data_dir());
    assert_eq!(count(&out, "expired_uploads"), 2, "{out}");
    assert!(
        !server.data_dir().join("uploads").join(&a).exists(),
        "the staged bytes are gone"
    );
    ecr.initiate_layer_upload()
        .repository_name("team/app")
        .send()
        .await
        .expect("room again");
}

#[tokio::test]
async fn fsck_finds_a_corrupted_blob() {
    if skip_unless_local_blobs("it corrupts a blob file in the data directory") {
        return;
    }
    let server = TestServer::start_with(&["--gc-interval-secs", "0", "--verify-reads"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (_, _, layer) = push_small_image(&ecr, "team/app", "v1", 4).await;
    let path = server.blob_file(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let (rc, out) = berth_cli(&["fsck"], server.data_dir());
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("Corrupt") && out.contains(&layer), "{out}");
    // Served whole with verified reads, the corruption is detected as the bytes go out: the
    // transfer fails rather than ending cleanly with bad data.
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    // The failure shows either as a broken body or, when the blob fits in one chunk, as a
    // connection closed before the response: never as a complete, clean transfer.
    async fn fails(resp: reqwest::Result<reqwest::Response>) -> bool {
        match resp {
            Ok(r) => r.bytes().await.is_err(),
            Err(_) => true,
        }
    }
    assert!(
        fails(reqwest::get(&url).await).await,
        "a corrupted blob is never served as good data"
    );
    let oci = server.oci().await;
    let resp = oci
        .req(reqwest::Method::GET, &format!("/v2/team/app/blobs/{layer}"))
        .send()
        .await;
    assert!(fails(resp).await);
}
