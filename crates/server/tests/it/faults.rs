//! Storage faults: a full disk (a small tmpfs as the data directory) and a read-only data
//! directory. Each failing write answers ServerException, stored data stays intact, and the
//! server keeps serving what it can. Mounting needs root; without it the test says so and
//! checks nothing.

use std::process::Command;

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::ImageIdentifier;

use crate::harness::*;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?.keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_fails_writes_cleanly_and_keeps_serving() {
    if skip_unless_local_blobs("it fills the disk under the data directory's blob files") {
        return;
    }
    let Some(fs) = Tmpfs::mount("24m") else {
        eprintln!(
            "SKIPPED a_full_disk_fails_writes_cleanly_and_keeps_serving: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let data = fs.0.join("data");
    let server = TestServer::start_in_with(&data, &["--gc-interval-secs", "0"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (manifest, _, _) = push_small_image(&ecr, "team/app", "v1", 1).await;

    // Parts until the disk is full: the failing one is a ServerException, not a panic.
    let id = initiate_upload(&ecr, "team/app").await;
    let chunk = random_bytes(8 * 1024 * 1024, 2);
    let mut offset = 0usize;
    let mut failure = None;
    for _ in 0..6 {
        let r = ecr
            .upload_layer_part()
            .repository_name("team/app")
            .upload_id(&id)
            .part_first_byte(offset as i64)
            .part_last_byte((offset + chunk.len()) as i64 - 1)
            .layer_part_blob(Blob::new(chunk.clone()))
            .send()
            .await;
        match r {
            Ok(_) => offset += chunk.len(),
            Err(e) => {
                failure = Some(code(&e));
                break;
            }
        }
    }
    assert_eq!(
        failure.as_deref(),
        Some("ServerException"),
        "the disk filled up"
    );

    // What was stored is intact and still served; reads keep working.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    ecr.describe_repositories().send().await.unwrap();
    // The upload is where its last acknowledged part left it; freeing space lets it go on.
    let e = ecr
        .upload_layer_part()
        .repository_name("team/app")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(0)
        .layer_part_blob(Blob::new(vec![0u8]))
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
    assert_eq!(
        e.last_valid_byte_received(),
        (offset as i64).checked_sub(1).filter(|b| *b >= 0)
    );
}

#[tokio::test]
async fn a_read_only_data_directory_still_serves_reads() {
    if skip_on_postgres("the metadata is not in the read-only data directory") {
        return;
    }
    let Some(fs) = Tmpfs::mount("32m") else {
        eprintln!(
            "SKIPPED a_read_only_data_directory_still_serves_reads: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let data = fs.0.join("data");
    let manifest = {
        let server = TestServer::start_in_with(&data, &["--gc-interval-secs", "0"]).await;
        let ecr = server.ecr();
        create_repo(&ecr, "team/app").await;
        push_small_image(&ecr, "team/app", "v1", 3).await.0
    };
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&fs.0)
            .status()
            .unwrap()
            .success()
    );
    let server = TestServer::start_in_with(&data, &["--gc-interval-secs", "0"]).await;
    let ecr = server.ecr();
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    let e = ecr
        .create_repository()
        .repository_name("team/new")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ServerException");
    let e = ecr
        .initiate_layer_upload()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ServerException");
    ecr.describe_images()
        .repository_name("team/app")
        .send()
        .await
        .expect("reads go on");
}
