//! Replication (issue 16): PutReplicationConfiguration's checks, DescribeRegistry, and images
//! pushed through ECR and `/v2` reaching another account of the same berth and a second berth
//! process, byte for byte, also when the source dies half-way.

use std::time::Duration;

use aws_sdk_ecr::types::{
    ImageIdentifier, ReplicationConfiguration, ReplicationDestination, ReplicationRule,
    RepositoryFilter, RepositoryFilterType,
};

use crate::harness::*;

const OTHER: &str = "111111111111";
const REMOTE: &str = "222222222222";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub(crate) fn dest(region: &str, registry: &str) -> ReplicationDestination {
    ReplicationDestination::builder()
        .region(region)
        .registry_id(registry)
        .build()
        .unwrap()
}

pub(crate) fn prefix(p: &str) -> RepositoryFilter {
    RepositoryFilter::builder()
        .filter(p)
        .filter_type(RepositoryFilterType::PrefixMatch)
        .build()
        .unwrap()
}

pub(crate) fn rule(dests: Vec<ReplicationDestination>, filters: &[&str]) -> ReplicationRule {
    let mut b = ReplicationRule::builder().set_destinations(Some(dests));
    for f in filters {
        b = b.repository_filters(prefix(f));
    }
    b.build().unwrap()
}

pub(crate) fn config(rules: Vec<ReplicationRule>) -> ReplicationConfiguration {
    ReplicationConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .unwrap()
}

/// A berth with a second account's key (`AKIDOTHER`) and `extra` TOML; its directory is
/// kept by the caller, to restart on it.
fn config_file(dir: &std::path::Path, extra: &str) -> String {
    let path = dir.join("berth.toml");
    std::fs::write(
        &path,
        format!(
            "replication-retry-base-ms = 100\n\
             [[access-keys]]\nid = \"AKIDOTHER\"\nsecret = \"other\"\naccount-id = \"{OTHER}\"\n{extra}"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn other(server: &TestServer) -> aws_sdk_ecr::Client {
    ecr_client_as(&server.endpoint, "AKIDOTHER", "other")
}

/// The other account's registry policy letting the owner's account replicate into it.
const ALLOW_REPLICATION: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"replication","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:111111111111:repository/*"}]}"#;

/// The statuses of an image: (region, registry, status, failure code), in destination order.
async fn statuses(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
) -> Vec<(String, String, String, Option<String>)> {
    let out = ecr
        .describe_image_replication_status()
        .repository_name(repo)
        .image_id(ImageIdentifier::builder().image_digest(digest).build())
        .send()
        .await
        .expect("describe replication status");
    out.replication_statuses()
        .iter()
        .map(|s| {
            (
                s.region().unwrap_or_default().to_owned(),
                s.registry_id().unwrap_or_default().to_owned(),
                s.status()
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default(),
                s.failure_code().map(str::to_owned),
            )
        })
        .collect()
}

/// Waits (at most `secs`) until every destination of the image has ended (COMPLETE or
/// FAILED) and there are `n` of them; answers them.
async fn settled(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
    n: usize,
    secs: u64,
) -> Vec<(String, String, String, Option<String>)> {
    let mut last = vec![];
    for _ in 0..secs * 10 {
        last = statuses(ecr, repo, digest).await;
        if last.len() == n && last.iter().all(|s| s.2 != "IN_PROGRESS") {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replication of {repo}@{digest} did not settle in {secs} s: {last:?}");
}

/// The manifest bytes `ecr` gets for `repo:tag`, if any.
async fn manifest_of(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> Option<String> {
    let out = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .ok()?;
    out.images()
        .first()
        .and_then(|i| i.image_manifest())
        .map(str::to_owned)
}

async fn blob_over_v2(server: &TestServer, repo: &str, digest: &str) -> Vec<u8> {
    let oci = server.oci().await;
    let r = oci
        .req(reqwest::Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET blob {digest} from {repo}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn replication_configuration_is_checked_stored_and_described() {
    let dir = tempfile::tempdir().unwrap();
    // Two regions served: a destination in a third is refused.
    let server = TestServer::start_with(&[
        "--config",
        &config_file(dir.path(), ""),
        "--regions",
        "us-east-1,ap-south-1",
    ])
    .await;
    let ecr = server.ecr();
    let good = config(vec![
        rule(vec![dest("us-east-1", OTHER)], &["team/", "prod"]),
        rule(vec![], &[]),
    ]);
    let out = ecr
        .put_replication_configuration()
        .replication_configuration(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.replication_configuration(), Some(&good));
    let described = ecr.describe_registry().send().await.unwrap();
    assert_eq!(described.registry_id(), Some("000000000000"));
    assert_eq!(described.replication_configuration(), Some(&good));
    // Each refusal is ECR's exception, and leaves the stored configuration as it was.
    let too_many_rules: Vec<_> = (0..11)
        .map(|_| rule(vec![dest("us-east-1", OTHER)], &[]))
        .collect();
    let too_many_destinations = vec![rule(
        (0..26)
            .map(|i| dest("us-east-1", &format!("1000000000{i:02}")))
            .collect(),
        &[],
    )];
    let cases: Vec<(&str, Vec<ReplicationRule>, &str, &str)> = vec![
        (
            "the source registry",
            vec![rule(vec![dest("us-east-1", "000000000000")], &[])],
            "InvalidParameterException",
            "Replication destination cannot be the same as the source registry",
        ),
        (
            "a region this deployment does not serve",
            vec![rule(vec![dest("eu-west-1", OTHER)], &[])],
            "InvalidParameterException",
            "Replication destination region 'eu-west-1' is not served",
        ),
        (
            "a region name off the model's pattern",
            vec![rule(vec![dest("EU_WEST", OTHER)], &[])],
            "InvalidParameterException",
            "region",
        ),
        (
            "a registry id that is not 12 digits",
            vec![rule(vec![dest("us-east-1", "1234")], &[])],
            "InvalidParameterException",
            "registryId",
        ),
        (
            "a one-character filter",
            vec![rule(vec![dest("us-east-1", OTHER)], &["a"])],
            "InvalidParameterException",
            "filter",
        ),
        (
            "an upper-case filter",
            vec![rule(vec![dest("us-east-1", OTHER)], &["Team"])],
            "InvalidParameterException",
            "filter",
        ),
        (
            "eleven rules",
            too_many_rules,
            "InvalidParameterException",
            "rules",
        ),
        (
            "26 unique destinations",
            too_many_destinations,
            "InvalidParameterException",
            "unique replication destinations",
        ),
    ];
    for (what, rules, exception, words) in cases {
        let e = ecr
            .put_replication_configuration()
            .replication_configuration(config(rules))
            .send()
            .await
            .unwrap_err();
        let e = e.as_service_error().unwrap();
        assert_eq!(code(e), exception, "{what}");
        let message = aws_sdk_ecr::error::ProvideErrorMetadata::message(e).unwrap_or_default();
        assert!(message.contains(words), "{what}: {message}");
        let described = ecr.describe_registry().send().await.unwrap();
        assert_eq!(described.replication_configuration(), Some(&good), "{what}");
    }
    // The other account sees its own (empty) configuration; an empty rule list clears.
    let theirs = other(&server).describe_registry().send().await.unwrap();
    assert_eq!(
        theirs.replication_configuration().map(|c| c.rules().len()),
        Some(0)
    );
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![]))
        .send()
        .await
        .unwrap();
    let described = ecr.describe_registry().send().await.unwrap();
    assert_eq!(
        described
            .replication_configuration()
            .map(|c| c.rules().len()),
        Some(0)
    );
    // DescribeImageReplicationStatus: a missing image or repository is ECR's exception.
    create_repo(&ecr, "team/app").await;
    let e = ecr
        .describe_image_replication_status()
        .repository_name("team/app")
        .image_id(ImageIdentifier::builder().image_tag("nope").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(e.as_service_error().unwrap()),
        "ImageNotFoundException"
    );
    let e = ecr
        .describe_image_replication_status()
        .repository_name("team/none")
        .image_id(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(e.as_service_error().unwrap()),
        "RepositoryNotFoundException"
    );
}

/// A signature berth accepts when it has no access keys (see `protocol.rs`).
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd";

/// A request no SDK would send, to a server without keys: its status and JSON body.
async fn raw_ecr(server: &TestServer, op: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerRegistry_V20150921.{op}"),
        )
        .header("authorization", AUTH)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let json = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    (status, json)
}

#[tokio::test]
async fn replication_requests_the_sdk_would_not_send_are_refused_by_the_model() {
    let server = TestServer::start_without_keys().await;
    for (body, words) in [
        (
            r#"{"replicationConfiguration":{"rules":[{"destinations":[],"repositoryFilters":[{"filter":"team","filterType":"SUFFIX_MATCH"}]}]}}"#,
            "Invalid parameter at 'replicationConfiguration.rules.member.repositoryFilters.member.filterType' failed to satisfy constraint: 'Member must satisfy enum value set: [PREFIX_MATCH]'",
        ),
        (
            "{}",
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Member must not be null'",
        ),
        (
            r#"{"replicationConfiguration":{"rules":[{"destinations":[{"region":"us-east-1"}]}]}}"#,
            "Invalid parameter at 'replicationConfiguration.rules.member.destinations.member.registryId' failed to satisfy constraint: 'Member must not be null'",
        ),
        (
            r#"{"replicationConfiguration":{"rules":[{"destinations":[],"repositoryFilters":[]}]}}"#,
            "repositoryFilters",
        ),
    ] {
        let (status, b) = raw_ecr(&server, "PutReplicationConfiguration", body).await;
        assert_eq!(
            (status, b["__type"].as_str()),
            (400, Some("InvalidParameterException")),
            "{body}: {b}"
        );
        assert!(
            b["message"].as_str().unwrap_or_default().contains(words),
            "{body}: {b}"
        );
    }
    let (status, b) = raw_ecr(
        &server,
        "DescribeImageReplicationStatus",
        r#"{"repositoryName":"team/app"}"#,
    )
    .await;
    assert_eq!(
        (status, b["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{b}"
    );
    let described = server.ecr().describe_registry().send().await.unwrap();
    assert_eq!(
        described
            .replication_configuration()
            .map(|c| c.rules().len()),
        Some(0),
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn pushes_reach_another_account_once_its_registry_policy_allows_replication() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), "")]).await;
    let ecr = server.ecr();
    let theirs = other(&server);
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(
            vec![dest("us-east-1", OTHER)],
            &["team/"],
        )]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    create_repo(&ecr, "solo/app").await;

    // Without the destination's consent, nothing is copied and the status says why.
    let (_, refused, _) = push_small_image(&ecr, "team/app", "v0", 40).await;
    let s = settled(&ecr, "team/app", &refused, 1, 30).await;
    assert_eq!(
        s,
        [(
            "us-east-1".to_owned(),
            OTHER.to_owned(),
            "FAILED".to_owned(),
            Some("PERMISSION_DENIED".to_owned())
        )]
    );
    assert!(manifest_of(&theirs, "team/app", "v0").await.is_none());

    // With it: the repository is created from the destination's REPLICATION template.
    theirs
        .put_registry_policy()
        .policy_text(ALLOW_REPLICATION)
        .send()
        .await
        .unwrap();
    theirs
        .create_repository_creation_template()
        .prefix("team")
        .applied_for(aws_sdk_ecr::types::RctAppliedFor::Replication)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let (manifest, v1, layer) = push_small_image(&ecr, "team/app", "v1", 41).await;
    let s = settled(&ecr, "team/app", &v1, 1, 30).await;
    assert_eq!(s[0].2, "COMPLETE", "{s:?}");
    assert_eq!(s[0].3, None);
    assert_eq!(
        manifest_of(&theirs, "team/app", "v1").await.as_deref(),
        Some(manifest.as_str())
    );
    let repo = theirs
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repo.repositories()[0]
            .image_tag_mutability()
            .map(|m| m.as_str()),
        Some("IMMUTABLE"),
        "the REPLICATION template's settings"
    );
    // The layer the other account now downloads is the source's, byte for byte.
    let dl = theirs
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap();
    assert_eq!(dl.layer_digest(), Some(layer.as_str()));
    let bytes = reqwest::get(dl.download_url().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_digest(&bytes), layer);

    // A `/v2` push replicates too, and by tag.
    let oci = server.oci().await;
    let config_blob = br#"{"seed":"v2-replicated"}"#;
    let layer2 = random_bytes(3000, 42);
    let cd = oci.push_blob("team/app", config_blob).await;
    let ld = oci.push_blob("team/app", &layer2).await;
    let m2 = oci_manifest((&cd, config_blob.len()), &[(&ld, layer2.len())]);
    let r = oci.put_manifest("team/app", "v2", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 201);
    let v2 = sha256_digest(m2.as_bytes());
    let s = settled(&ecr, "team/app", &v2, 1, 30).await;
    assert_eq!(s[0].2, "COMPLETE", "{s:?}");
    assert_eq!(
        manifest_of(&theirs, "team/app", "v2").await.as_deref(),
        Some(m2.as_str())
    );

    // A repository no rule covers is not replicated.
    let (_, solo, _) = push_small_image(&ecr, "solo/app", "v1", 43).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(statuses(&ecr, "solo/app", &solo).await.is_empty());
    assert!(manifest_of(&theirs, "solo/app", "v1").await.is_none());

    // Deletes are not replicated.
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        manifest_of(&theirs, "team/app", "v1").await.as_deref(),
        Some(manifest.as_str())
    );
}

/// The owner's `/v2` password of `server` (user `AWS`).
async fn v2_password(server: &TestServer) -> String {
    let pair = creds(&server.basic_auth().await);
    pair.strip_prefix("AWS:").unwrap().to_owned()
}

/// The `/v2` upload requests (starts and completions) `server` has answered.
async fn upload_requests(server: &TestServer) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("berth_http_requests_total{")
                && l.contains("api=\"oci\"")
                && l.contains("operation=\"upload\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn pushes_reach_a_second_berth_over_v2_and_shared_blobs_are_sent_once() {
    // The destination: another berth process, which creates repositories on push.
    let remote = TestServer::start_with(&["--create-on-push"]).await;
    let password = v2_password(&remote).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"{}\"\nusername = \"AWS\"\npassword = \"{password}\"\n",
        remote.endpoint
    );
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), &extra)]).await;
    let ecr = server.ecr();
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(vec![dest("eu-west-1", REMOTE)], &[])]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    let config1 = br#"{"seed":"remote-1"}"#.to_vec();
    let shared = random_bytes(2 * MIB, 50);
    let cd = push_layer(&ecr, "team/app", &config1, &[config1.len()]).await;
    let ld = push_layer(&ecr, "team/app", &shared, &[shared.len()]).await;
    let m1 = oci_manifest((&cd, config1.len()), &[(&ld, shared.len())]);
    let v1 = put_tagged(&ecr, "team/app", &m1, "v1").await;
    let s = settled(&ecr, "team/app", &v1, 1, 60).await;
    assert_eq!(
        s,
        [(
            "eu-west-1".to_owned(),
            REMOTE.to_owned(),
            "COMPLETE".to_owned(),
            None
        )]
    );
    let theirs = remote.ecr();
    assert_eq!(
        manifest_of(&theirs, "team/app", "v1").await.as_deref(),
        Some(m1.as_str())
    );
    assert_eq!(blob_over_v2(&remote, "team/app", &ld).await, shared);
    let uploads_after_first = upload_requests(&remote).await;
    assert_eq!(uploads_after_first, 4, "two blobs: a start and a PUT each");

    // A second image that shares the large layer: only its config travels.
    let config2 = br#"{"seed":"remote-2"}"#.to_vec();
    let cd2 = push_layer(&ecr, "team/app", &config2, &[config2.len()]).await;
    let m2 = oci_manifest((&cd2, config2.len()), &[(&ld, shared.len())]);
    let v2 = put_tagged(&ecr, "team/app", &m2, "v2").await;
    let s = settled(&ecr, "team/app", &v2, 1, 60).await;
    assert_eq!(s[0].2, "COMPLETE", "{s:?}");
    assert_eq!(
        manifest_of(&theirs, "team/app", "v2").await.as_deref(),
        Some(m2.as_str())
    );
    assert_eq!(
        upload_requests(&remote).await - uploads_after_first,
        2,
        "the shared layer is not sent again"
    );
}

#[tokio::test]
async fn replication_interrupted_by_a_crash_or_a_kill_9_completes_after_restart() {
    let remote = TestServer::start_with(&["--create-on-push"]).await;
    let password = v2_password(&remote).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"{}\"\nusername = \"AWS\"\npassword = \"{password}\"\n",
        remote.endpoint
    );
    let cfg = config_file(dir.path(), &extra);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    // First a crash right after an image was copied and before that was recorded: the
    // process dies in the middle of replication.
    let (m1, v1) = {
        let mut server = TestServer::start_in_with(
            &data,
            &["--config", &cfg, "--failpoint", "replication.after_copy"],
        )
        .await;
        let ecr = server.ecr();
        other(&server)
            .put_registry_policy()
            .policy_text(ALLOW_REPLICATION)
            .send()
            .await
            .unwrap();
        ecr.put_replication_configuration()
            .replication_configuration(config(vec![rule(
                vec![dest("us-east-1", OTHER), dest("eu-west-1", REMOTE)],
                &[],
            )]))
            .send()
            .await
            .unwrap();
        create_repo(&ecr, "team/app").await;
        let (m1, v1, _) = push_small_image(&ecr, "team/app", "v1", 60).await;
        assert!(server.exited().await, "the crash point was not reached");
        (m1, v1)
    };
    // Then a SIGKILL while a larger image is being replicated.
    let (m2, v2) = {
        let mut server = TestServer::start_in_with(&data, &["--config", &cfg]).await;
        let ecr = server.ecr();
        let config2 = br#"{"seed":"killed"}"#.to_vec();
        let big = random_bytes(24 * MIB, 61);
        let cd = push_layer(&ecr, "team/app", &config2, &[config2.len()]).await;
        let ld = push_layer(&ecr, "team/app", &big, &[10 * MIB, 10 * MIB, 4 * MIB]).await;
        let m2 = oci_manifest((&cd, config2.len()), &[(&ld, big.len())]);
        let v2 = put_tagged(&ecr, "team/app", &m2, "v2").await;
        // The job polls every half second: give it time to start on the image, not to end.
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill_hard();
        (m2, v2)
    };
    // After a restart both images reach both destinations (the lease of the dead process
    // runs out first).
    let server = TestServer::start_in_with(&data, &["--config", &cfg]).await;
    let ecr = server.ecr();
    for (digest, manifest, tag) in [(&v1, &m1, "v1"), (&v2, &m2, "v2")] {
        let s = settled(&ecr, "team/app", digest, 2, 90).await;
        assert!(s.iter().all(|x| x.2 == "COMPLETE"), "{tag}: {s:?}");
        assert_eq!(
            manifest_of(&other(&server), "team/app", tag)
                .await
                .as_deref(),
            Some(manifest.as_str()),
            "{tag} in the other account"
        );
        assert_eq!(
            manifest_of(&remote.ecr(), "team/app", tag).await.as_deref(),
            Some(manifest.as_str()),
            "{tag} in the remote berth"
        );
    }
}

#[tokio::test]
async fn an_index_reaches_both_kinds_of_destination_with_its_children() {
    let remote = TestServer::start_with(&["--create-on-push"]).await;
    let password = v2_password(&remote).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"{}\"\nusername = \"AWS\"\npassword = \"{password}\"\n",
        remote.endpoint
    );
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), &extra)]).await;
    let ecr = server.ecr();
    other(&server)
        .put_registry_policy()
        .policy_text(ALLOW_REPLICATION)
        .send()
        .await
        .unwrap();
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(
            vec![dest("us-east-1", OTHER), dest("eu-west-1", REMOTE)],
            &["multi/"],
        )]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "multi/app").await;
    // Two platform images pushed by digest, then the index that lists them, by tag.
    let oci = server.oci().await;
    let mut children = Vec::new();
    for (arch, seed) in [("amd64", 70), ("arm64", 71)] {
        let cfg = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
        let layer = random_bytes(4000, seed);
        let cd = oci.push_blob("multi/app", cfg.as_bytes()).await;
        let ld = oci.push_blob("multi/app", &layer).await;
        let m = oci_manifest((&cd, cfg.len()), &[(&ld, layer.len())]);
        let d = sha256_digest(m.as_bytes());
        let r = oci.put_manifest("multi/app", &d, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), 201);
        children.push((arch, d, m.len(), m, ld));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children.iter().map(|(arch, d, len, _, _)| serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": d, "size": len,
            "platform": {"architecture": arch, "os": "linux"}
        })).collect::<Vec<_>>()
    })
    .to_string();
    let r = oci
        .put_manifest(
            "multi/app",
            "v1",
            "application/vnd.oci.image.index.v1+json",
            &index,
        )
        .await;
    assert_eq!(r.status(), 201);
    let digest = sha256_digest(index.as_bytes());
    let s = settled(&ecr, "multi/app", &digest, 2, 60).await;
    assert!(s.iter().all(|x| x.2 == "COMPLETE"), "{s:?}");
    for (who, client) in [
        ("the other account", other(&server)),
        ("the remote berth", remote.ecr()),
    ] {
        assert_eq!(
            manifest_of(&client, "multi/app", "v1").await.as_deref(),
            Some(index.as_str()),
            "{who}"
        );
        for (_, d, _, m, layer) in &children {
            let out = client
                .batch_get_image()
                .repository_name("multi/app")
                .image_ids(ImageIdentifier::builder().image_digest(d).build())
                .send()
                .await
                .unwrap();
            assert_eq!(
                out.images().first().and_then(|i| i.image_manifest()),
                Some(m.as_str()),
                "{who}: child {d}"
            );
            let layers = client
                .batch_check_layer_availability()
                .repository_name("multi/app")
                .layer_digests(layer)
                .send()
                .await
                .unwrap();
            assert_eq!(
                layers.layers()[0].layer_availability().map(|a| a.as_str()),
                Some("AVAILABLE"),
                "{who}: layer {layer}"
            );
        }
    }
    // The remote's bytes are the source's.
    for (_, _, _, _, layer) in &children {
        assert_eq!(
            sha256_digest(&blob_over_v2(&remote, "multi/app", layer).await),
            *layer
        );
    }
}

#[tokio::test]
async fn a_tag_moved_by_quick_pushes_ends_where_the_last_push_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), "")]).await;
    let ecr = server.ecr();
    other(&server)
        .put_registry_policy()
        .policy_text(ALLOW_REPLICATION)
        .send()
        .await
        .unwrap();
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(vec![dest("us-east-1", OTHER)], &[])]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    // Five images pushed under one tag faster than the job's round: each is replicated, and
    // the tag at the destination is the last one's.
    let mut pushed = Vec::new();
    for seed in 80..85 {
        pushed.push(push_small_image(&ecr, "team/app", "latest", seed).await);
    }
    for (_, digest, _) in &pushed {
        let s = settled(&ecr, "team/app", digest, 1, 30).await;
        assert_eq!(s[0].2, "COMPLETE", "{s:?}");
    }
    let (last, _, _) = pushed.last().unwrap();
    assert_eq!(
        manifest_of(&other(&server), "team/app", "latest")
            .await
            .as_deref(),
        Some(last.as_str())
    );
    let images = other(&server)
        .list_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(images.image_ids().len(), 5, "every pushed image is there");
}

#[tokio::test]
async fn an_unreachable_remote_is_retried_with_backoff_then_failed() {
    // Nothing listens on port 1 of loopback: every attempt fails at once.
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"http://127.0.0.1:1\"\n"
    );
    let path = dir.path().join("retry.toml");
    std::fs::write(
        &path,
        format!("replication-retry-base-ms = 2000\nreplication-max-attempts = 3\n{extra}"),
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", path.to_str().unwrap()]).await;
    let ecr = server.ecr();
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(vec![dest("eu-west-1", REMOTE)], &[])]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    let started = std::time::Instant::now();
    let (_, digest, _) = push_small_image(&ecr, "team/app", "v1", 90).await;
    // Attempts at about 0 s, 2 s and 6 s (2 s, then twice that): still in progress meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = statuses(&ecr, "team/app", &digest).await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].2.as_str(), s[0].3.as_deref()),
        ("IN_PROGRESS", None),
        "a retried replication shows no failure code yet"
    );
    let s = settled(&ecr, "team/app", &digest, 1, 30).await;
    assert_eq!(
        (s[0].2.as_str(), s[0].3.as_deref()),
        ("FAILED", Some("DESTINATION_UNAVAILABLE"))
    );
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "three attempts with backoff take 2 s + 4 s at least, took {:?}",
        started.elapsed()
    );
}

/// Another region of the same berth is a local destination (the issue's "second region"):
/// the same account's registry in eu-west-1 gets the image, its repository created there, and
/// the source region keeps its own copy; each region sees only its own repositories.
#[tokio::test]
async fn pushes_reach_the_same_account_in_another_region_of_the_same_berth() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), "")]).await;
    let ecr = server.ecr();
    let eu = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(
            vec![dest("eu-west-1", "000000000000")],
            &["geo/"],
        )]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "geo/app").await;
    create_repo(&ecr, "local/app").await;
    let (manifest, digest, layer) = push_small_image(&ecr, "geo/app", "v1", 61).await;
    let (_, unmatched, _) = push_small_image(&ecr, "local/app", "v1", 62).await;

    let s = settled(&ecr, "geo/app", &digest, 1, 30).await;
    assert_eq!(
        s,
        [(
            "eu-west-1".to_owned(),
            "000000000000".to_owned(),
            "COMPLETE".to_owned(),
            None
        )]
    );
    assert_eq!(
        manifest_of(&eu, "geo/app", "v1").await.as_deref(),
        Some(manifest.as_str())
    );
    let layers = eu
        .batch_check_layer_availability()
        .repository_name("geo/app")
        .layer_digests(&layer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        layers.layers()[0].layer_availability(),
        Some(&aws_sdk_ecr::types::LayerAvailability::Available)
    );
    let arn = eu
        .describe_repositories()
        .repository_names("geo/app")
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .repository_arn()
        .unwrap()
        .to_owned();
    assert_eq!(arn, "arn:aws:ecr:eu-west-1:000000000000:repository/geo/app");
    // The source keeps its image; the unmatched repository stays in its region alone.
    assert_eq!(
        manifest_of(&ecr, "geo/app", "v1").await.as_deref(),
        Some(manifest.as_str())
    );
    assert!(statuses(&ecr, "local/app", &unmatched).await.is_empty());
    let err = eu
        .describe_repositories()
        .repository_names("local/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("RepositoryNotFoundException")
    );

    // A push in a region other than the one the data directory was created as (whose stored
    // keys name their region) replicates too: eu-west-1's own configuration, to ap-south-1.
    let ap = ecr_client_in(&server.endpoint, "ap-south-1", ACCESS_KEY, SECRET_KEY);
    eu.put_replication_configuration()
        .replication_configuration(config(vec![rule(
            vec![dest("ap-south-1", "000000000000")],
            &["geo/"],
        )]))
        .send()
        .await
        .unwrap();
    let (manifest2, digest2, _) = push_small_image(&eu, "geo/app", "v2", 63).await;
    let s = settled(&eu, "geo/app", &digest2, 1, 30).await;
    assert_eq!(s[0].0, "ap-south-1");
    assert_eq!(s[0].2, "COMPLETE", "{s:?}");
    assert_eq!(
        manifest_of(&ap, "geo/app", "v2").await.as_deref(),
        Some(manifest2.as_str())
    );
    // us-east-1's rule is its own: eu-west-1's push did not come back to it.
    assert!(manifest_of(&ecr, "geo/app", "v2").await.is_none());
}

/// What [`bearer_remote`] was sent.
#[derive(Default)]
struct Received {
    blobs: std::collections::HashMap<String, Vec<u8>>,
    manifests: std::collections::HashMap<String, Vec<u8>>,
    /// Blob PUTs answered with a challenge rather than taken.
    challenged_blob_puts: usize,
}

/// A `/v2` registry behind the distribution token protocol (as Docker Hub, GHCR or Quay are)
/// whose tokens live one second, as their `expires_in` says, and which takes longer than that
/// to start an upload: the token the start used has expired when the blob's PUT goes out, so
/// that PUT meets a Bearer challenge after its body went out.
async fn bearer_remote(
    user: &'static str,
    password: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Received>>) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    const TOKEN_LIFE: Duration = Duration::from_secs(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Received::default()));
    let issued: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let basic = format!(
        "Basic {}",
        base64_simd::STANDARD.encode_to_string(format!("{user}:{password}"))
    );
    let realm = format!("{base}/token");
    let state = (received.clone(), issued, basic, realm);
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (received, issued, basic, realm) = state.clone();
            async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let path = uri.path().to_owned();
                if path == "/token" {
                    if auth != basic {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let mut issued = issued.lock().unwrap();
                    let token = format!("token-{}", issued.len());
                    issued.insert(token.clone(), Instant::now());
                    return (
                        [(header::CONTENT_TYPE, "application/json")],
                        serde_json::json!({"token": token, "expires_in": TOKEN_LIFE.as_secs()})
                            .to_string(),
                    )
                        .into_response();
                }
                let Some(rest) = path.strip_prefix("/v2/") else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                let (repo, kind, tail) = if let Some((r, t)) = rest.split_once("/blobs/") {
                    (r.to_owned(), "blobs", t.to_owned())
                } else if let Some((r, t)) = rest.split_once("/manifests/") {
                    (r.to_owned(), "manifests", t.to_owned())
                } else {
                    (String::new(), "", String::new())
                };
                let fresh = auth.strip_prefix("Bearer ").is_some_and(|t| {
                    issued
                        .lock()
                        .unwrap()
                        .get(t)
                        .is_some_and(|at| at.elapsed() < TOKEN_LIFE)
                });
                if !fresh {
                    if method == Method::PUT && tail.starts_with("uploads/") {
                        received.lock().unwrap().challenged_blob_puts += 1;
                    }
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(
                            header::WWW_AUTHENTICATE,
                            format!(
                                r#"Bearer realm="{realm}",service="fake",scope="repository:{repo}:pull,push""#
                            ),
                        )],
                    )
                        .into_response();
                }
                match (method, kind) {
                    (Method::HEAD, "blobs") => {
                        let has = received.lock().unwrap().blobs.contains_key(&tail);
                        if has { StatusCode::OK } else { StatusCode::NOT_FOUND }.into_response()
                    }
                    (Method::POST, "blobs") if tail == "uploads/" => {
                        tokio::time::sleep(TOKEN_LIFE + Duration::from_millis(200)).await;
                        (
                            StatusCode::ACCEPTED,
                            [(header::LOCATION, format!("/v2/{repo}/blobs/uploads/1"))],
                        )
                            .into_response()
                    }
                    (Method::PUT, "blobs") => {
                        let digest = uri
                            .query()
                            .and_then(|q| q.strip_prefix("digest="))
                            .unwrap_or("")
                            .replace("%3A", ":");
                        if sha256_digest(&body) != digest {
                            return StatusCode::BAD_REQUEST.into_response();
                        }
                        received.lock().unwrap().blobs.insert(digest, body.to_vec());
                        StatusCode::CREATED.into_response()
                    }
                    (Method::PUT, "manifests") => {
                        received
                            .lock()
                            .unwrap()
                            .manifests
                            .insert(tail, body.to_vec());
                        StatusCode::CREATED.into_response()
                    }
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }
        },
    );
    // Layers are larger than axum's default body limit (2 MiB).
    let app = app.layer(axum::extract::DefaultBodyLimit::disable());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

/// A blob PUT that meets a Bearer challenge after its body went out (the remote's token
/// expired between the upload's start and its bytes) is sent again with the whole blob, and
/// the image completes at the remote, byte for byte.
#[tokio::test]
async fn a_blob_put_challenged_after_its_body_went_out_is_resent_whole() {
    let (base, received) = bearer_remote("pusher", "push-pw").await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{REMOTE}\"\nurl = \"{base}\"\nusername = \"pusher\"\npassword = \"push-pw\"\n"
    );
    let server = TestServer::start_with(&["--config", &config_file(dir.path(), &extra)]).await;
    let ecr = server.ecr();
    ecr.put_replication_configuration()
        .replication_configuration(config(vec![rule(vec![dest("eu-west-1", REMOTE)], &[])]))
        .send()
        .await
        .unwrap();
    create_repo(&ecr, "team/app").await;
    let cfg = br#"{"seed":"bearer-remote"}"#.to_vec();
    let layer = random_bytes(3 * MIB, 51);
    let cd = push_layer(&ecr, "team/app", &cfg, &[cfg.len()]).await;
    let ld = push_layer(&ecr, "team/app", &layer, &[layer.len()]).await;
    let manifest = oci_manifest((&cd, cfg.len()), &[(&ld, layer.len())]);
    let digest = put_tagged(&ecr, "team/app", &manifest, "v1").await;
    let s = settled(&ecr, "team/app", &digest, 1, 60).await;
    assert_eq!(
        (s[0].2.as_str(), s[0].3.as_deref()),
        ("COMPLETE", None),
        "{s:?}"
    );
    let got = received.lock().unwrap();
    assert_eq!(
        got.challenged_blob_puts, 2,
        "each blob's PUT met the challenge once"
    );
    assert!(
        got.blobs.get(&ld) == Some(&layer),
        "the layer arrived whole"
    );
    assert_eq!(got.blobs.get(&cd), Some(&cfg));
    assert_eq!(
        got.manifests.get("v1").map(Vec::as_slice),
        Some(manifest.as_bytes())
    );
}
