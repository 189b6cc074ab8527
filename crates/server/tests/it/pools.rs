//! `--metadata-pool-size` bounds the connections a node uses for metadata statements: with one
//! connection, a request stuck on a lock holds it and the next request waits; with the default
//! (16), the next request goes through. PostgreSQL pass only (SQLite has no such pool).

use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::harness::*;

/// Holds `uploads` locked from a session of the test's own, which makes InitiateLayerUpload
/// (it counts the repository's open uploads) wait while holding a pooled connection; then
/// answers whether a DescribeRepositories, which reads no upload, finished within 2 s.
async fn describe_passes_a_stuck_initiate(extra: &[&str]) -> bool {
    let mut args = vec!["--gc-interval-secs", "0"];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(&args).await;
    let ecr = server.ecr();
    create_repo(&ecr, "pool/app").await;
    let url = metadata_for(server.data_dir()).expect("a PostgreSQL run");
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let stuck = tokio::spawn({
        let ecr = ecr.clone();
        async move {
            ecr.initiate_layer_upload()
                .repository_name("pool/app")
                .send()
                .await
                .map(drop)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !stuck.is_finished(),
        "InitiateLayerUpload waits for the lock"
    );
    let describe = tokio::spawn({
        let ecr = ecr.clone();
        async move { ecr.describe_repositories().send().await.map(drop) }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let passed = describe.is_finished();
    locker.execute("ROLLBACK").await.unwrap();
    // Both complete once the lock is gone (well within the pool's 10 s acquire timeout).
    tokio::time::timeout(Duration::from_secs(20), stuck)
        .await
        .expect("the upload starts after the lock")
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), describe)
        .await
        .expect("DescribeRepositories answers after the lock")
        .unwrap()
        .unwrap();
    passed
}

#[tokio::test]
async fn metadata_pool_size_bounds_the_connections_a_node_uses() {
    if !on_postgres() {
        eprintln!("skipped: the metadata pool is PostgreSQL's (BERTH_TEST_METADATA=postgres)");
        return;
    }
    assert!(
        !describe_passes_a_stuck_initiate(&["--metadata-pool-size", "1"]).await,
        "with one connection, held by the stuck request, the next request must wait"
    );
    assert!(
        describe_passes_a_stuck_initiate(&[]).await,
        "with the default pool, the next request gets a connection of its own"
    );
}
