//! Concurrency: clients pushing and pulling through both APIs at once while GC runs, the same
//! layer pushed by many clients, one tag moved by all of them, and two parts of one upload
//! racing. Bounded in count and time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::ImageIdentifier;
use reqwest::Method;
use tokio::sync::Mutex;

use crate::harness::*;

const WORKERS: u64 = 6;
const MAX_ROUNDS: u64 = 40;
const SOAK_TIME: Duration = Duration::from_secs(8);

/// A pushed image: tag, manifest, and its unique layer (digest, bytes).
type Pushed = (String, String, Vec<(String, Vec<u8>)>);

/// The same layer for everyone, so completions of one digest race.
fn shared_layer() -> Vec<u8> {
    random_bytes(300_000, 4242)
}

/// Pushes a blob through the ECR API, treating LayerAlreadyExists as done (as clients do).
async fn ecr_blob(ecr: &aws_sdk_ecr::Client, data: &[u8]) -> String {
    let d = sha256_digest(data);
    let id = initiate_upload(ecr, "soak/app").await;
    ecr.upload_layer_part()
        .repository_name("soak/app")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(data.len() as i64 - 1)
        .layer_part_blob(Blob::new(data))
        .send()
        .await
        .unwrap();
    match ecr
        .complete_layer_upload()
        .repository_name("soak/app")
        .upload_id(&id)
        .layer_digests(&d)
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.layer_digest(), Some(d.as_str())),
        Err(e) => assert_eq!(code(&e), "LayerAlreadyExistsException"),
    }
    d
}

#[tokio::test]
async fn pushes_and_pulls_through_both_apis_while_gc_runs() {
    let server = Arc::new(
        TestServer::start_with(&["--gc-interval-secs", "1", "--gc-grace-secs", "30"]).await,
    );
    create_repo(&server.ecr(), "soak/app").await;
    let pushed: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let server = server.clone();
        let pushed = pushed.clone();
        workers.push(tokio::spawn(async move {
            let ecr = server.ecr();
            let oci = server.oci().await;
            let mut rounds = 0;
            while rounds < MAX_ROUNDS && started.elapsed() < SOAK_TIME {
                rounds += 1;
                let unique = random_bytes(20_000 + (w * 1000 + rounds) as usize, w * 1000 + rounds);
                let config = format!(r#"{{"worker":{w},"round":{rounds}}}"#).into_bytes();
                let shared = shared_layer();
                let via_ecr = (w + rounds) % 2 == 0;
                let blobs = [&config, &shared, &unique];
                let digests: Vec<String> = if via_ecr {
                    let mut out = Vec::new();
                    for b in blobs {
                        out.push(ecr_blob(&ecr, b).await);
                    }
                    out
                } else {
                    let mut out = Vec::new();
                    for b in blobs {
                        out.push(oci.push_blob("soak/app", b).await);
                    }
                    out
                };
                let manifest = oci_manifest(
                    (&digests[0], config.len()),
                    &[(&digests[1], shared.len()), (&digests[2], unique.len())],
                );
                let tag = format!("w{w}-r{rounds}");
                if via_ecr {
                    ecr.put_image()
                        .repository_name("soak/app")
                        .image_manifest(&manifest)
                        .image_tag(&tag)
                        .send()
                        .await
                        .unwrap();
                } else {
                    let r = oci
                        .put_manifest(
                            "soak/app",
                            &tag,
                            "application/vnd.oci.image.manifest.v1+json",
                            &manifest,
                        )
                        .await;
                    assert_eq!(r.status(), 201);
                }
                // Everyone moves one shared tag: last writer wins, no lost index.
                let r = oci
                    .put_manifest(
                        "soak/app",
                        "latest",
                        "application/vnd.oci.image.manifest.v1+json",
                        &manifest,
                    )
                    .await;
                assert_eq!(r.status(), 201);
                // Pull back what this worker pushed a round ago, through the other API.
                let check = pushed
                    .lock()
                    .await
                    .iter()
                    .rev()
                    .find(|(t, _, _)| t.starts_with(&format!("w{w}-")))
                    .cloned();
                if let Some((t, m, _)) = check {
                    let got = ecr
                        .batch_get_image()
                        .repository_name("soak/app")
                        .image_ids(ImageIdentifier::builder().image_tag(&t).build())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(got.images()[0].image_manifest(), Some(m.as_str()));
                }
                pushed
                    .lock()
                    .await
                    .push((tag, manifest, vec![(digests[2].clone(), unique)]));
            }
            rounds
        }));
    }
    // `berth gc` from a second process as well, against the same data directory: the two
    // share SQLite and the GC fence, and neither may break the other's requests.
    let external_gc = {
        let dir = server.data_dir().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut runs = 0;
            while runs < 50 && started.elapsed() < SOAK_TIME {
                let (code, out) = berth_cli(&["gc", "--gc-grace-secs", "30"], &dir);
                assert_eq!(code, 0, "berth gc beside the server: {out}");
                runs += 1;
            }
            runs
        })
    };
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    let gc_runs = external_gc.await.unwrap();
    assert!(gc_runs > 0);
    assert!(total >= WORKERS * 3, "only {total} rounds ran");

    // Every pushed image pulls with the right digests, through both APIs.
    let ecr = server.ecr();
    let oci = server.oci().await;
    let pushed = pushed.lock().await;
    for (tag, manifest, layers) in pushed.iter() {
        let r = oci
            .req(Method::GET, &format!("/v2/soak/app/manifests/{tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), *manifest, "{tag}");
        for (d, bytes) in layers {
            let got = oci
                .req(Method::GET, &format!("/v2/soak/app/blobs/{d}"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&got[..], &bytes[..], "{tag} {d}");
        }
    }
    let latest = ecr
        .batch_get_image()
        .repository_name("soak/app")
        .image_ids(ImageIdentifier::builder().image_tag("latest").build())
        .send()
        .await
        .unwrap();
    let latest = latest.images()[0].image_manifest().unwrap();
    assert!(
        pushed.iter().any(|(_, m, _)| m == latest),
        "latest is one of the pushed manifests"
    );
    let listed = ecr
        .list_images()
        .repository_name("soak/app")
        .max_results(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.image_ids().len(),
        pushed.len() + 1,
        "one entry per tag, plus latest"
    );
    assert_eq!(
        berth_cli(&["fsck"], server.data_dir()),
        (0, "0 problem(s)\n".to_owned()),
        "fsck is clean after the soak"
    );
    eprintln!(
        "soak: {} images pushed by {WORKERS} workers in {:?}",
        pushed.len(),
        started.elapsed()
    );
}

#[tokio::test]
async fn two_parts_of_one_upload_racing_one_wins() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    for round in 0..5u64 {
        let id = initiate_upload(&ecr, "team/app").await;
        let a = random_bytes(2 * MIB, round);
        let b = random_bytes(2 * MIB, round + 100);
        let send = |data: Vec<u8>| {
            let ecr = ecr.clone();
            let id = id.clone();
            async move {
                ecr.upload_layer_part()
                    .repository_name("team/app")
                    .upload_id(&id)
                    .part_first_byte(0)
                    .part_last_byte(data.len() as i64 - 1)
                    .layer_part_blob(Blob::new(data))
                    .send()
                    .await
            }
        };
        let (ra, rb) = tokio::join!(send(a.clone()), send(b.clone()));
        let winner = match (&ra, &rb) {
            (Ok(_), Err(e)) => {
                assert_eq!(code(e), "InvalidLayerPartException");
                &a
            }
            (Err(e), Ok(_)) => {
                assert_eq!(code(e), "InvalidLayerPartException");
                &b
            }
            other => panic!("exactly one part must win: {other:?}"),
        };
        // The stored bytes are the winner's, whole.
        let done = ecr
            .complete_layer_upload()
            .repository_name("team/app")
            .upload_id(&id)
            .layer_digests(sha256_digest(winner))
            .send()
            .await
            .unwrap();
        assert_eq!(done.layer_digest(), Some(sha256_digest(winner).as_str()));
    }
}
