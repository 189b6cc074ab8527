//! Several nodes over one PostgreSQL database (and, until blobs move to object storage, one
//! data directory): an upload moves between nodes, a part being written on one node refuses a
//! racing part on another, and pushes of one tag through different nodes agree. Runs only with
//! the metadata in PostgreSQL (BERTH_TEST_METADATA=postgres): SQLite serves one process.

use aws_sdk_ecr::primitives::Blob;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

const MIB: usize = 1024 * 1024;

fn skip() -> bool {
    if !on_postgres() {
        eprintln!(
            "skipped: several nodes need the metadata in PostgreSQL (BERTH_TEST_METADATA=postgres)"
        );
    }
    !on_postgres()
}

#[tokio::test]
async fn an_upload_moves_between_nodes_and_racing_parts_end_as_on_one() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["--gc-interval-secs", "0"];
    let a = TestServer::start_in_with(dir.path(), &args).await;
    let b = TestServer::start_in_with(dir.path(), &args).await;
    let (ea, eb) = (a.ecr(), b.ecr());
    create_repo(&ea, "team/app").await;

    // ECR parts alternate between the nodes; the upload completes on the node that did not
    // start it, and the layer is available through the other.
    let layer = random_bytes(11 * MIB + 5, 13);
    let id = initiate_upload(&ea, "team/app").await;
    let cuts = [0, 5 * MIB, 10 * MIB, layer.len()];
    for (n, w) in cuts.windows(2).enumerate() {
        let ecr = if n % 2 == 0 { &eb } else { &ea };
        ecr.upload_layer_part()
            .repository_name("team/app")
            .upload_id(&id)
            .part_first_byte(w[0] as i64)
            .part_last_byte(w[1] as i64 - 1)
            .layer_part_blob(Blob::new(&layer[w[0]..w[1]]))
            .send()
            .await
            .unwrap();
    }
    let done = eb
        .complete_layer_upload()
        .repository_name("team/app")
        .upload_id(&id)
        .layer_digests(sha256_digest(&layer))
        .send()
        .await
        .unwrap();
    assert_eq!(done.layer_digest(), Some(sha256_digest(&layer).as_str()));

    // A /v2 chunk held open on node A (half sent) claims the upload: the same chunk sent to
    // node B meanwhile is refused, not written over A's bytes; A's chunk then completes.
    let (oa, ob) = (a.oci().await, b.oci().await);
    let r = oa
        .req(reqwest::Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let chunk = random_bytes(2 * MIB, 14);
    let host = a.endpoint.trim_start_matches("http://").to_owned();
    let mut held = tokio::net::TcpStream::connect(&host).await.unwrap();
    held.write_all(
        format!(
            "PATCH {location} HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\n\
             content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
            oa.auth,
            chunk.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    held.write_all(&chunk[..MIB]).await.unwrap();
    held.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let racing = ob
        .req(reqwest::Method::PATCH, &location)
        .header("content-type", "application/octet-stream")
        .body(random_bytes(2 * MIB, 15))
        .send()
        .await
        .unwrap();
    assert_eq!(
        racing.status(),
        416,
        "the racing chunk on the other node is refused"
    );
    assert_eq!(oci_code(racing).await, "BLOB_UPLOAD_INVALID");
    held.write_all(&chunk[MIB..]).await.unwrap();
    let mut answer = vec![0u8; 12];
    held.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 202", "the held chunk is accepted");
    drop(held);
    let digest = sha256_digest(&chunk);
    let put = ob
        .req(reqwest::Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        201,
        "completed on the other node, with A's bytes only"
    );
    let got = oa
        .req(
            reqwest::Method::GET,
            &format!("/v2/team/app/blobs/{digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), chunk);

    // Pushes of one tag through both nodes at once end with the tag on one of the images,
    // and both nodes see the same.
    let pushes = (0..6u64).map(|n| {
        let ecr = if n % 2 == 0 { ea.clone() } else { eb.clone() };
        async move {
            push_small_image(&ecr, "team/app", "latest", 100 + n)
                .await
                .1
        }
    });
    let digests = futures_util::future::join_all(pushes).await;
    let on = |ecr: aws_sdk_ecr::Client| async move {
        ecr.batch_get_image()
            .repository_name("team/app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("latest")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_id()
            .and_then(|i| i.image_digest())
            .unwrap()
            .to_owned()
    };
    let (via_a, via_b) = (on(ea.clone()).await, on(eb.clone()).await);
    assert_eq!(via_a, via_b);
    assert!(digests.contains(&via_a));

    let (code, out) = berth_cli(&["fsck"], dir.path());
    assert_eq!(code, 0, "fsck after the nodes' work: {out}");
}
