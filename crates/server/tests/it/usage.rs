//! Storage use per repository in `/metrics` (issue 17 §1): the maintained figures checked
//! against a walk of what the test itself pushed, after pushes, re-pushes of a layer, deletes,
//! garbage collection, a repository's delete and concurrent pushes (through two nodes over
//! PostgreSQL); and access to `/metrics` with `metrics-token`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ecr::types::ImageIdentifier;

use crate::harness::*;
use crate::observability::Scrape;

const TOKEN: &str = "scrape-token-3f1c";
const ACCOUNT: &str = "000000000000";

/// What a repository holds, as the test pushed it: the blobs it linked and its manifests.
#[derive(Default, Clone)]
struct Walk {
    blobs: BTreeMap<String, usize>,
    manifests: BTreeMap<String, usize>,
}

impl Walk {
    fn link(&mut self, data: &[u8]) {
        self.blobs.insert(sha256_digest(data), data.len());
    }
    fn bytes(&self) -> f64 {
        (self.blobs.values().sum::<usize>() + self.manifests.values().sum::<usize>()) as f64
    }
    fn images(&self) -> f64 {
        self.manifests.len() as f64
    }
}

/// Uploads a layer through ECR in one part; a layer the repository has already ends in
/// LayerAlreadyExistsException, as on ECR, and changes nothing.
async fn upload(ecr: &aws_sdk_ecr::Client, repo: &str, data: &[u8]) {
    let id = initiate_upload(ecr, repo).await;
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(data.len() as i64 - 1)
        .layer_part_blob(aws_sdk_ecr::primitives::Blob::new(data))
        .send()
        .await
        .expect("upload part");
    match ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(sha256_digest(data))
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) => assert_eq!(code(&e.into_service_error()), "LayerAlreadyExistsException"),
    }
}

async fn scrape_with(base: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn scrape(base: &str) -> Scrape {
    let r = scrape_with(base, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    Scrape::parse(&r.text().await.unwrap())
}

/// Asserts each repository's two gauges, and the registry's totals, against the walks.
fn check(s: &Scrape, walks: &BTreeMap<&str, Walk>, when: &str) {
    for (repo, w) in walks {
        let labels = [("registry", ACCOUNT), ("repository", *repo)];
        assert_eq!(
            s.get("berth_repository_storage_bytes", &labels),
            w.bytes(),
            "{repo} bytes {when}"
        );
        assert_eq!(
            s.get("berth_repository_images", &labels),
            w.images(),
            "{repo} images {when}"
        );
    }
    let registry = [("registry", ACCOUNT)];
    assert_eq!(
        s.get("berth_registry_storage_bytes", &registry),
        walks.values().map(Walk::bytes).sum::<f64>(),
        "registry bytes {when}"
    );
    assert_eq!(
        s.get("berth_registry_images", &registry),
        walks.values().map(Walk::images).sum::<f64>(),
        "registry images {when}"
    );
    assert_eq!(
        s.get("berth_registry_repositories", &registry),
        walks.len() as f64,
        "registry repositories {when}"
    );
}

/// PutImage of `config` and `layers` (already uploaded); records the manifest in `walk`.
async fn put(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tag: &str,
    config: &[u8],
    layers: &[&[u8]],
    walk: &mut Walk,
) -> String {
    let cd = sha256_digest(config);
    let lds: Vec<(String, usize)> = layers.iter().map(|l| (sha256_digest(l), l.len())).collect();
    let refs: Vec<(&str, usize)> = lds.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let manifest = oci_manifest((&cd, config.len()), &refs);
    let out = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(&manifest)
        .image_tag(tag)
        .send()
        .await
        .expect("put image");
    let digest = out
        .image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap();
    walk.manifests.insert(digest.to_owned(), manifest.len());
    digest.to_owned()
}

/// The first scrape after a fold run that began after `since` runs (the fold job's counter).
async fn after_a_fold(base: &str, since: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(base).await;
        let runs = s.get(
            "berth_job_runs_total",
            &[("job", "usage_fold"), ("result", "ok")],
        );
        if runs >= since + 2.0 {
            return s;
        }
        assert!(Instant::now() < deadline, "no fold ran: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn fold_runs(s: &Scrape) -> f64 {
    s.get(
        "berth_job_runs_total",
        &[("job", "usage_fold"), ("result", "ok")],
    )
}

/// Each step changes the figures as a walk of the pushed content says, whether read from
/// pending deltas or after the fold job folded them.
#[tokio::test]
async fn storage_use_matches_a_walk_after_pushes_repushes_deletes_and_gc() {
    let server = TestServer::start_with(&[
        "--metrics-token",
        TOKEN,
        "--gc-interval-secs",
        "0",
        "--usage-fold-interval-secs",
        "1",
    ])
    .await;
    let base = server.endpoint.clone();
    let ecr = server.ecr();
    let (a, b) = ("usage/a", "usage/b");
    create_repo(&ecr, a).await;
    create_repo(&ecr, b).await;
    let mut walks: BTreeMap<&str, Walk> = [(a, Walk::default()), (b, Walk::default())].into();
    check(&scrape(&base).await, &walks, "when empty");

    // An image: its config, its layer and its manifest.
    let shared = random_bytes(40_000, 1);
    let (config1, config2) = (b"{\"n\":1}".to_vec(), b"{\"n\":22}".to_vec());
    push_layer(&ecr, a, &config1, &[config1.len()]).await;
    push_layer(&ecr, a, &shared, &[shared.len()]).await;
    let w = walks.get_mut(a).unwrap();
    w.link(&config1);
    w.link(&shared);
    let first = put(&ecr, a, "one", &config1, &[&shared], w).await;
    check(&scrape(&base).await, &walks, "after the first push");

    // The same layer uploaded again (through ECR and /v2), and a second image that shares
    // it: counted once.
    upload(&ecr, a, &shared).await;
    server.oci().await.push_blob(a, &shared).await;
    push_layer(&ecr, a, &config2, &[config2.len()]).await;
    let w = walks.get_mut(a).unwrap();
    w.link(&config2);
    put(&ecr, a, "two", &config2, &[&shared], w).await;
    // PutImage of an image the repository has: nothing changes.
    put(&ecr, a, "two-again", &config2, &[&shared], w).await;
    check(&scrape(&base).await, &walks, "after a re-push");

    // The same layer in a second repository counts there too; an upload no image references
    // yet counts until garbage collection.
    push_layer(&ecr, b, &shared, &[shared.len()]).await;
    push_layer(&ecr, b, &config1, &[config1.len()]).await;
    let stray = random_bytes(7_000, 2);
    push_layer(&ecr, a, &stray, &[stray.len()]).await;
    walks.get_mut(a).unwrap().link(&stray);
    let w = walks.get_mut(b).unwrap();
    w.link(&shared);
    w.link(&config1);
    put(&ecr, b, "one", &config1, &[&shared], w).await;
    let s = scrape(&base).await;
    check(&s, &walks, "after a second repository");
    // Folded, the figures are the same.
    let s = after_a_fold(&base, fold_runs(&s)).await;
    check(&s, &walks, "after a fold");

    // Deleting the first image takes its manifest; its config stays linked until GC.
    ecr.batch_delete_image()
        .repository_name(a)
        .image_ids(ImageIdentifier::builder().image_digest(&first).build())
        .send()
        .await
        .unwrap();
    walks.get_mut(a).unwrap().manifests.remove(&first);
    check(&scrape(&base).await, &walks, "after a delete");

    // GC unlinks the first config and the stray upload from `a`; `b` keeps its copy.
    let (rc, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], server.data_dir());
    assert_eq!(rc, 0, "{out}");
    let w = walks.get_mut(a).unwrap();
    w.blobs.remove(&sha256_digest(&config1));
    w.blobs.remove(&sha256_digest(&stray));
    check(&scrape(&base).await, &walks, "after GC");

    // A repository's delete takes all its figures with it, pending or folded.
    let s = after_a_fold(&base, fold_runs(&scrape(&base).await)).await;
    check(&s, &walks, "after GC and a fold");
    ecr.delete_repository()
        .repository_name(b)
        .force(true)
        .send()
        .await
        .unwrap();
    walks.remove(b);
    let s = scrape(&base).await;
    check(&s, &walks, "after a repository's delete");
    assert!(
        !s.0.keys().any(|k| k.contains("usage/b")),
        "a deleted repository's series remain"
    );
    let s = after_a_fold(&base, fold_runs(&s)).await;
    check(&s, &walks, "after a repository's delete and a fold");

    // A new repository of the same name starts from nothing.
    create_repo(&ecr, b).await;
    walks.insert(b, Walk::default());
    check(
        &scrape(&base).await,
        &walks,
        "after re-creating a repository",
    );
}

/// Pushes racing in one repository (through two nodes over PostgreSQL), each re-uploading a
/// shared layer and adding one of its own, end with the figures of a walk; folds run
/// meanwhile on both nodes, one at a time under their lease.
#[tokio::test]
async fn concurrent_pushes_sum_up() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--metrics-token",
        TOKEN,
        "--gc-interval-secs",
        "0",
        "--usage-fold-interval-secs",
        "1",
    ];
    let one = TestServer::start_in_with(dir.path(), &args).await;
    // SQLite serves one process: there, both "nodes" are the one server.
    let two = match on_postgres() {
        true => Some(TestServer::start_in_with(dir.path(), &args).await),
        false => None,
    };
    let clients = [one.ecr(), two.as_ref().unwrap_or(&one).ecr()];
    let repo = "usage/race";
    create_repo(&clients[0], repo).await;
    let shared = random_bytes(30_000, 7);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8u64 {
        let ecr = clients[i as usize % 2].clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let config = format!("{{\"racer\":{i}}}").into_bytes();
            let own = random_bytes(1_000 + i as usize, 100 + i);
            for data in [&config, &shared, &own] {
                upload(&ecr, repo, data).await;
            }
            let mut w = Walk::default();
            w.link(&config);
            w.link(&shared);
            w.link(&own);
            put(
                &ecr,
                repo,
                &format!("r{i}"),
                &config,
                &[&shared, &own],
                &mut w,
            )
            .await;
            w
        });
    }
    let mut walk = Walk::default();
    while let Some(w) = tasks.join_next().await {
        let w = w.unwrap();
        walk.blobs.extend(w.blobs);
        walk.manifests.extend(w.manifests);
    }
    let walks: BTreeMap<&str, Walk> = [(repo, walk)].into();
    for node in [Some(&one), two.as_ref()].into_iter().flatten() {
        check(&scrape(&node.endpoint).await, &walks, "after the race");
    }
    let s = after_a_fold(&one.endpoint, fold_runs(&scrape(&one.endpoint).await)).await;
    check(&s, &walks, "after the race and a fold");
}

/// `metrics-token`: `/metrics` refuses a scrape without the token or with another one, and
/// serves it with the token. `metrics-repositories` caps the repository series, the largest
/// first; without a token or a listener of its own, `/metrics` names no repository.
#[tokio::test]
async fn metrics_need_the_token_and_name_only_the_largest_repositories() {
    let server =
        TestServer::start_with(&["--metrics-token", TOKEN, "--metrics-repositories", "2"]).await;
    let base = server.endpoint.clone();
    for token in [None, Some("scrape-token-3f1d"), Some("")] {
        let r = scrape_with(&base, token).await;
        assert_eq!(r.status(), 401, "token {token:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"berth metrics\""
        );
        let body = r.text().await.unwrap();
        assert!(!body.contains("berth_"), "{body}");
    }
    // Basic credentials are not the token either.
    let r = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .basic_auth("x", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The health checks stay open.
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);

    let ecr = server.ecr();
    for (repo, size) in [
        ("usage/small", 1_000),
        ("usage/big", 9_000),
        ("usage/mid", 5_000),
    ] {
        create_repo(&ecr, repo).await;
        let layer = random_bytes(size, size as u64);
        push_layer(&ecr, repo, &layer, &[layer.len()]).await;
    }
    let s = scrape(&base).await;
    let named: Vec<&String> =
        s.0.keys()
            .filter(|k| k.starts_with("berth_repository_storage_bytes{"))
            .collect();
    assert_eq!(
        named,
        [
            "berth_repository_storage_bytes{registry=\"000000000000\",repository=\"usage/big\"}",
            "berth_repository_storage_bytes{registry=\"000000000000\",repository=\"usage/mid\"}",
        ],
        "{s:?}"
    );
    assert_eq!(
        s.get("berth_registry_storage_bytes", &[("registry", ACCOUNT)]),
        15_000.0
    );
    assert_eq!(
        s.get("berth_registry_repositories", &[("registry", ACCOUNT)]),
        3.0
    );

    // Open on the main port (the default), the scrape names no repository.
    let open = TestServer::start().await;
    create_repo(&open.ecr(), "usage/secret-name").await;
    let r = scrape_with(&open.endpoint, None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("usage/secret-name"), "{text}");
    let s = Scrape::parse(&text);
    assert_eq!(
        s.get("berth_registry_repositories", &[("registry", ACCOUNT)]),
        1.0
    );
}

/// On a listener of its own, `/metrics` names the largest repositories by default, and the
/// token, when set, is needed there too; the main port has no `/metrics`.
#[tokio::test]
async fn a_metrics_listener_of_its_own_names_repositories_and_takes_the_token() {
    let addr = format!("127.0.0.1:{}", crate::outages::free_port());
    let own = format!("http://{addr}");
    let plain = TestServer::start_with(&["--metrics-listen", &addr]).await;
    create_repo(&plain.ecr(), "usage/listed").await;
    let r = scrape_with(&plain.endpoint, None).await;
    assert_eq!(r.status(), 404);
    let r = scrape_with(&own, None).await;
    assert_eq!(r.status(), 200);
    let s = Scrape::parse(&r.text().await.unwrap());
    let labels = [("registry", ACCOUNT), ("repository", "usage/listed")];
    assert!(
        s.0.contains_key(&format!(
            "berth_repository_images{{registry=\"{ACCOUNT}\",repository=\"usage/listed\"}}"
        )),
        "{s:?}"
    );
    assert_eq!(s.get("berth_repository_storage_bytes", &labels), 0.0);
    drop(plain);

    let addr = format!("127.0.0.1:{}", crate::outages::free_port());
    let own = format!("http://{addr}");
    let _guarded =
        TestServer::start_with(&["--metrics-listen", &addr, "--metrics-token", TOKEN]).await;
    assert_eq!(scrape_with(&own, None).await.status(), 401);
    assert_eq!(scrape_with(&own, Some(TOKEN)).await.status(), 200);
}
