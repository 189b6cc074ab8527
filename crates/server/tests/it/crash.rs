//! Crash safety: the server aborts (as `kill -9` would) at each named crash point; after a
//! restart every acknowledged part, blob, manifest and tag is intact, the interrupted step can
//! be retried, and GC plus fsck leave a clean store.

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, LayerAvailability};

use crate::harness::*;

fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

async fn crashing_server(dir: &std::path::Path, point: &str) -> TestServer {
    TestServer::start_in_with(dir, &["--failpoint", point, "--gc-interval-secs", "0"]).await
}

async fn part(ecr: &aws_sdk_ecr::Client, id: &str, data: &[u8], first: usize, last: usize) -> bool {
    ecr.upload_layer_part()
        .repository_name("team/app")
        .upload_id(id)
        .part_first_byte(first as i64)
        .part_last_byte(last as i64 - 1)
        .layer_part_blob(Blob::new(&data[first..last]))
        .send()
        .await
        .is_ok()
}

async fn complete(ecr: &aws_sdk_ecr::Client, id: &str, data: &[u8]) -> Result<String, String> {
    ecr.complete_layer_upload()
        .repository_name("team/app")
        .upload_id(id)
        .layer_digests(sha256_digest(data))
        .send()
        .await
        .map(|r| r.layer_digest().unwrap().to_owned())
        .map_err(|e| code(&e))
}

#[tokio::test]
async fn every_crash_point_leaves_acknowledged_data_intact() {
    if skip_on_postgres(
        "a part's claim on its upload outlives a node killed in the middle of the part until it \
         expires (15 s), and this test retries the part at once",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = random_bytes(6 * MIB + 77, 5);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();

    // Acknowledged before any crash: an image, and the first part of a new layer.
    let (base_manifest, upload) = {
        let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;
        let (m, _, _) = push_small_image(&ecr, "team/app", "base", 1).await;
        push_layer(&ecr, "team/app", &config, &[config.len()]).await;
        let id = initiate_upload(&ecr, "team/app").await;
        assert!(part(&ecr, &id, &layer, 0, 5 * MIB).await);
        (m, id)
    };

    // 1. Between writing a part and recording it.
    let mut server = crashing_server(d, "upload_part.after_write").await;
    assert!(
        !part(&server.ecr(), &upload, &layer, 5 * MIB, layer.len()).await,
        "the part is never acknowledged"
    );
    assert!(
        server.exited().await,
        "the server aborted at the crash point"
    );
    drop(server);

    // 2. Between putting the blob in place and recording the completion.
    let mut server = crashing_server(d, "complete_upload.after_commit").await;
    let ecr = server.ecr();
    assert!(
        part(&ecr, &upload, &layer, 5 * MIB, layer.len()).await,
        "the retried part lands where the last acknowledged one ended"
    );
    assert!(complete(&ecr, &upload, &layer).await.is_err());
    assert!(server.exited().await);
    drop(server);

    // 3. Before and 4. after PutImage records the image.
    let manifest = oci_manifest(
        (&sha256_digest(&config), config.len()),
        &[(&sha256_digest(&layer), layer.len())],
    );
    let mut server = crashing_server(d, "put_image.before_record").await;
    let ecr = server.ecr();
    assert_eq!(
        complete(&ecr, &upload, &layer).await,
        Ok(sha256_digest(&layer)),
        "the completion is retried and finishes"
    );
    assert!(
        ecr.put_image()
            .repository_name("team/app")
            .image_manifest(&manifest)
            .image_tag("v1")
            .send()
            .await
            .is_err()
    );
    assert!(server.exited().await);
    drop(server);

    let mut server = crashing_server(d, "put_image.after_record").await;
    let ecr = server.ecr();
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .send()
        .await
        .unwrap();
    assert!(got.images().is_empty(), "nothing half-written is visible");
    assert!(
        ecr.put_image()
            .repository_name("team/app")
            .image_manifest(&manifest)
            .image_tag("v1")
            .send()
            .await
            .is_err()
    );
    assert!(server.exited().await);
    drop(server);

    // After the last restart: everything acknowledged, and the last PutImage, is there.
    let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
    let ecr = server.ecr();
    let e = ecr
        .put_image()
        .repository_name("team/app")
        .image_manifest(&manifest)
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "ImageAlreadyExistsException",
        "the record made just before the crash survived"
    );
    for (tag, m) in [("base", &base_manifest), ("v1", &manifest)] {
        assert_eq!(manifest_by_tag(&ecr, tag).await.as_ref(), Some(m), "{tag}");
    }
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(sha256_digest(&layer))
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    assert_eq!(
        reqwest::get(url).await.unwrap().bytes().await.unwrap(),
        &layer[..]
    );
    let check = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(sha256_digest(&config))
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.layers()[0].layer_availability(),
        Some(&LayerAvailability::Available)
    );

    // Nothing the crashes left behind survives a GC, and the store checks clean.
    berth_cli(&["gc", "--gc-grace-secs", "0"], d);
    assert_eq!(berth_cli(&["fsck"], d), (0, "0 problem(s)\n".to_owned()));
    assert!(
        std::fs::read_dir(d.join("uploads"))
            .unwrap()
            .next()
            .is_none(),
        "no staged file outlives GC"
    );
}

async fn manifest_by_tag(ecr: &aws_sdk_ecr::Client, tag: &str) -> Option<String> {
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag(tag))
        .send()
        .await
        .unwrap();
    got.images()
        .first()
        .and_then(|i| i.image_manifest())
        .map(str::to_owned)
}

async fn delete_tag(ecr: &aws_sdk_ecr::Client, tag: &str) -> bool {
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_tag(tag))
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn tag_moves_deletions_and_gc_survive_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b, b_layer) = {
        let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;
        let (a, _, _) = push_small_image(&ecr, "team/app", "live", 11).await;
        let (b, _, b_layer) = push_small_image(&ecr, "team/app", "next", 12).await;
        (a, b, b_layer)
    };

    // A tag move cut off inside its transaction: the tag still names the old image.
    let mut server = crashing_server(d, "put_image.before_commit").await;
    let moved = server
        .ecr()
        .put_image()
        .repository_name("team/app")
        .image_manifest(&b)
        .image_tag("live")
        .send()
        .await;
    assert!(moved.is_err(), "the move is never acknowledged");
    assert!(server.exited().await);
    drop(server);

    // A deletion cut off before, then after, its metadata change.
    let mut server = crashing_server(d, "delete_image.before_commit").await;
    let ecr = server.ecr();
    assert_eq!(manifest_by_tag(&ecr, "live").await, Some(a.clone()));
    assert!(!delete_tag(&ecr, "next").await);
    assert!(server.exited().await);
    drop(server);

    let mut server = crashing_server(d, "delete_image.after_commit").await;
    let ecr = server.ecr();
    assert_eq!(
        manifest_by_tag(&ecr, "next").await,
        Some(b.clone()),
        "a deletion that crashed before committing changed nothing"
    );
    assert!(!delete_tag(&ecr, "next").await);
    assert!(server.exited().await);
    drop(server);

    // GC cut off between forgetting a blob and deleting its file.
    let (code, _) = berth_cli(
        &[
            "gc",
            "--gc-grace-secs",
            "0",
            "--failpoint",
            "gc.after_forget",
        ],
        d,
    );
    assert_ne!(code, 0, "gc aborted at its crash point");

    let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
    let ecr = server.ecr();
    assert_eq!(manifest_by_tag(&ecr, "live").await, Some(a.clone()));
    assert_eq!(
        manifest_by_tag(&ecr, "next").await,
        None,
        "the committed deletion survived the crash"
    );
    let gone = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&b_layer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable),
        "the forgotten blob is not offered"
    );
    // The deleted tag can be pushed again.
    let (again, _, _) = push_small_image(&ecr, "team/app", "next", 13).await;
    assert_eq!(manifest_by_tag(&ecr, "next").await, Some(again));
    drop(server);

    // The file the crashed GC left is removed by the next one; the store checks clean.
    let (code, report) = berth_cli(&["gc", "--gc-grace-secs", "0"], d);
    assert_eq!(code, 0);
    assert!(report.contains("orphan_blob_files: 1"), "{report}");
    assert_eq!(berth_cli(&["fsck"], d), (0, "0 problem(s)\n".to_owned()));
}

#[tokio::test]
async fn public_upload_killed_between_parts_resumes_after_restart() {
    if skip_on_postgres(
        "a part's claim on its upload outlives a node killed in the middle of the part until it \
         expires (15 s), and this test retries the part at once",
    ) {
        return;
    }
    use aws_sdk_ecrpublic::primitives::Blob as PublicBlob;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = random_bytes(5 * MIB + 333, 21);
    let public_part = |ecr: aws_sdk_ecrpublic::Client, id: String, first: usize, last: usize| {
        let bytes = layer[first..last].to_vec();
        async move {
            ecr.upload_layer_part()
                .repository_name("pub/app")
                .upload_id(id)
                .part_first_byte(first as i64)
                .part_last_byte(last as i64 - 1)
                .layer_part_blob(PublicBlob::new(bytes))
                .send()
                .await
                .is_ok()
        }
    };
    // Acknowledged before the crash: the repository and the first part, through ECR Public.
    let upload = {
        let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
        let ecr = crate::ecr_public::public_client(&server);
        ecr.create_repository()
            .repository_name("pub/app")
            .send()
            .await
            .unwrap();
        let id = ecr
            .initiate_layer_upload()
            .repository_name("pub/app")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        assert!(public_part(ecr, id.clone(), 0, 5 * MIB).await);
        id
    };

    // Killed between writing the second part and recording it.
    let mut server = crashing_server(d, "upload_part.after_write").await;
    let ecr = crate::ecr_public::public_client(&server);
    assert!(
        !public_part(ecr, upload.clone(), 5 * MIB, layer.len()).await,
        "the part is never acknowledged"
    );
    assert!(
        server.exited().await,
        "the server aborted at the crash point"
    );
    drop(server);

    // After the restart the upload goes on from the last acknowledged byte.
    let server = TestServer::start_in_with(d, &["--gc-interval-secs", "0"]).await;
    let ecr = crate::ecr_public::public_client(&server);
    assert!(
        public_part(ecr.clone(), upload.clone(), 5 * MIB, layer.len()).await,
        "the retried part lands where the first one ended"
    );
    let done = ecr
        .complete_layer_upload()
        .repository_name("pub/app")
        .upload_id(&upload)
        .layer_digests(sha256_digest(&layer))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(&layer).as_str()));
    let check = ecr
        .batch_check_layer_availability()
        .repository_name("pub/app")
        .layer_digests(sha256_digest(&layer))
        .send()
        .await
        .unwrap();
    assert_eq!(check.layers()[0].layer_size(), Some(layer.len() as i64));
    drop(server);
    berth_cli(&["gc", "--gc-grace-secs", "0"], d);
    assert_eq!(berth_cli(&["fsck"], d), (0, "0 problem(s)\n".to_owned()));
}
