//! Regions: one deployment serves every region a client signs for, each (account, region) its
//! own registry; a data directory of the single-region berth opens as its configured region.

use std::path::{Path, PathBuf};

use crate::harness::*;

/// The committed data directory of the single-region berth (see its `make.sh`).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single-region")
}

/// Copies a directory tree (the fixture is never opened in place: opening writes to it).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A data directory written before regions existed opens as its configured region with
/// everything in it: repository, settings, policies, tags, the image and its blobs. It is
/// SQLite and files whatever the pass, since that is what the fixture holds.
#[tokio::test]
async fn a_single_region_data_directory_opens_as_its_region() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    copy_tree(&fixture().join("data"), &dir);
    let digest = std::fs::read_to_string(fixture().join("digest")).unwrap();
    let digest = digest.trim();
    let metadata = format!("sqlite://{}", dir.join("meta.sqlite").display());
    let server = TestServer::start_in_with(
        &dir,
        &[
            "--region",
            "eu-west-1",
            "--metadata",
            &metadata,
            "--blobs",
            "",
        ],
    )
    .await;
    let ecr = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);

    let repos = ecr.describe_repositories().send().await.unwrap();
    let repos = repos.repositories();
    assert_eq!(repos.len(), 1, "{repos:?}");
    let repo = &repos[0];
    assert_eq!(repo.repository_name(), Some("team/app"));
    assert_eq!(
        repo.repository_arn(),
        Some("arn:aws:ecr:eu-west-1:000000000000:repository/team/app")
    );
    assert!(
        repo.repository_uri().unwrap().ends_with("/team/app"),
        "{repo:?}"
    );

    let images = ecr
        .describe_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let images = images.image_details();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].image_digest(), Some(digest));
    assert_eq!(images[0].image_tags(), ["v1"]);

    // The image can be pulled, blob bytes and all.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(got.images()[0].image_manifest().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(layer)
        .send()
        .await
        .unwrap();
    let bytes = reqwest::get(url.download_url().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_digest(&bytes), layer);

    let policy = ecr
        .get_repository_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert!(policy.policy_text().unwrap().contains("111111111111"));
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn("arn:aws:ecr:eu-west-1:000000000000:repository/team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), "team");
    let registry_policy = ecr.get_registry_policy().send().await.unwrap();
    assert!(
        registry_policy
            .policy_text()
            .unwrap()
            .contains("222222222222")
    );
    let templates = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    assert_eq!(templates.repository_creation_templates().len(), 1);
    assert_eq!(
        templates.repository_creation_templates()[0].prefix(),
        Some("team")
    );

    // The old data is the registry of its region only: another region of the same account is
    // a registry of its own, empty.
    let other = ecr_client_in(&server.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY);
    let repos = other.describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");
    assert_eq!(
        code(&other.get_registry_policy().send().await.unwrap_err()),
        "RegistryPolicyNotFoundException"
    );
}

const OTHER: &str = "111111111111";

/// A server with the harness key (account 000000000000) and a key of account [`OTHER`],
/// naming registries by host under `localhost`, with extra flags.
async fn server_with(extra: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    std::fs::write(
        &cfg,
        format!(
            "registry-domain = \"localhost\"\n[[access-keys]]\nid = \"AKIDOTHER\"\nsecret = \"other\"\naccount-id = \"{OTHER}\"\n"
        ),
    )
    .unwrap();
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    (TestServer::start_with(&args).await, dir)
}

fn port(server: &TestServer) -> &str {
    server.endpoint.rsplit(':').next().unwrap()
}

/// `host:port` of `account`'s registry in `region` on the test server.
pub(crate) fn registry_host(server: &TestServer, account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.localhost:{}", port(server))
}

async fn repository_names(ecr: &aws_sdk_ecr::Client) -> Vec<String> {
    let out = ecr.describe_repositories().send().await.unwrap();
    let mut names: Vec<String> = out
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// One server, clients signed for three regions: each region is a registry of its own, both
/// ways; ARNs, URIs, tokens and TagResource go by region.
#[tokio::test]
async fn three_regions_are_three_registries() {
    let (server, _dir) = server_with(&[]).await;
    let east = ecr_client_in(&server.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY);
    let west = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);
    let south = ecr_client_in(&server.endpoint, "ap-south-1", ACCESS_KEY, SECRET_KEY);

    create_repo(&east, "only-east").await;
    create_repo(&west, "only-west").await;
    // The same name in two regions: two repositories, different images.
    create_repo(&east, "app").await;
    create_repo(&west, "app").await;
    // The audit trail names the region of each (CloudTrail's awsRegion).
    let audit = std::fs::read_to_string(server.data_dir().join("audit/audit.log")).unwrap();
    let regions: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["eventName"] == "CreateRepository")
        .map(|r| r["awsRegion"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        regions,
        ["us-east-1", "eu-west-1", "us-east-1", "eu-west-1"]
    );
    let (_, east_digest, _) = push_small_image(&east, "app", "v1", 1).await;
    let (_, west_digest, _) = push_small_image(&west, "app", "v1", 2).await;
    assert_ne!(east_digest, west_digest);

    assert_eq!(repository_names(&east).await, ["app", "only-east"]);
    assert_eq!(repository_names(&west).await, ["app", "only-west"]);
    assert!(repository_names(&south).await.is_empty());
    for (client, missing) in [(&east, "only-west"), (&west, "only-east"), (&south, "app")] {
        let e = client
            .describe_repositories()
            .repository_names(missing)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "RepositoryNotFoundException", "{missing}");
    }
    for (client, digest) in [(&east, &east_digest), (&west, &west_digest)] {
        let images = client
            .describe_images()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let digests: Vec<_> = images
            .image_details()
            .iter()
            .filter_map(|i| i.image_digest())
            .collect();
        assert_eq!(digests, [digest.as_str()]);
    }
    // The other region's image is not there, not even by digest.
    let got = west
        .batch_get_image()
        .repository_name("app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&east_digest)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(got.images().is_empty());
    assert_eq!(got.failures().len(), 1);

    // ARNs and URIs carry the region (and the URI the registry host).
    for (client, region) in [(&east, "us-east-1"), (&west, "eu-west-1")] {
        let out = client
            .describe_repositories()
            .repository_names("app")
            .send()
            .await
            .unwrap();
        let repo = &out.repositories()[0];
        assert_eq!(
            repo.repository_arn().unwrap(),
            format!("arn:aws:ecr:{region}:000000000000:repository/app")
        );
        assert_eq!(
            repo.repository_uri().unwrap(),
            format!("{}/app", registry_host(&server, "000000000000", region))
        );
    }

    // TagResource by ARN: this region's repository only; another region's ARN is refused and
    // changes nothing there.
    let east_arn = "arn:aws:ecr:us-east-1:000000000000:repository/app";
    let west_arn = "arn:aws:ecr:eu-west-1:000000000000:repository/app";
    let tag = aws_sdk_ecr::types::Tag::builder()
        .key("team")
        .value("east")
        .build()
        .unwrap();
    east.tag_resource()
        .resource_arn(east_arn)
        .tags(tag.clone())
        .send()
        .await
        .unwrap();
    let e = east
        .tag_resource()
        .resource_arn(west_arn)
        .tags(tag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let west_tags = west
        .list_tags_for_resource()
        .resource_arn(west_arn)
        .send()
        .await
        .unwrap();
    assert!(west_tags.tags().is_empty(), "{west_tags:?}");
    let east_tags = east
        .list_tags_for_resource()
        .resource_arn(east_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(east_tags.tags().len(), 1);

    // Registry settings are per registry too.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"r","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"ecr:CreateRepository","Resource":"*"}]}"#;
    west.put_registry_policy()
        .policy_text(policy)
        .send()
        .await
        .unwrap();
    assert!(west.get_registry_policy().send().await.is_ok());
    for client in [&east, &south] {
        let e = client.get_registry_policy().send().await.unwrap_err();
        assert_eq!(code(&e), "RegistryPolicyNotFoundException");
    }

    // GetAuthorizationToken: one per region, each with its region's proxy endpoint; a token
    // opens the region it was issued in.
    let token = |client: aws_sdk_ecr::Client| async move {
        let out = client.get_authorization_token().send().await.unwrap();
        let data = &out.authorization_data()[0];
        (
            data.authorization_token().unwrap().to_owned(),
            data.proxy_endpoint().unwrap().to_owned(),
        )
    };
    let (east_token, east_proxy) = token(east.clone()).await;
    let (west_token, west_proxy) = token(west.clone()).await;
    assert_eq!(
        east_proxy,
        format!(
            "http://{}",
            registry_host(&server, "000000000000", "us-east-1")
        )
    );
    assert_eq!(
        west_proxy,
        format!(
            "http://{}",
            registry_host(&server, "000000000000", "eu-west-1")
        )
    );
    // The registry host names reach the server as an HTTP proxy would: the host name is only
    // in the request, which is all berth reads.
    let via = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&server.endpoint).unwrap())
        .build()
        .unwrap();
    let tags_of = |token: &str, region: &str| {
        via.get(format!(
            "http://{}/v2/app/tags/list",
            registry_host(&server, "000000000000", region)
        ))
        .header("authorization", format!("Basic {token}"))
        .send()
    };
    assert_eq!(
        tags_of(&west_token, "eu-west-1").await.unwrap().status(),
        200
    );
    assert_eq!(
        tags_of(&east_token, "us-east-1").await.unwrap().status(),
        200
    );
    assert_eq!(
        tags_of(&east_token, "eu-west-1").await.unwrap().status(),
        401
    );
    assert_eq!(
        tags_of(&west_token, "us-east-1").await.unwrap().status(),
        401
    );
    // /v2 by host name sees the region's image: each region's manifest under the same name.
    for (tok, region, digest) in [
        (&east_token, "us-east-1", &east_digest),
        (&west_token, "eu-west-1", &west_digest),
    ] {
        let r = via
            .head(format!(
                "http://{}/v2/app/manifests/v1",
                registry_host(&server, "000000000000", region)
            ))
            .header("authorization", format!("Basic {tok}"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{region}");
        assert_eq!(
            r.headers()["docker-content-digest"].to_str().unwrap(),
            digest.as_str()
        );
    }
    // The catalog of a registry host lists that registry.
    for (tok, region, names) in [
        (&east_token, "us-east-1", ["app", "only-east"]),
        (&west_token, "eu-west-1", ["app", "only-west"]),
    ] {
        let body = via
            .get(format!(
                "http://{}/v2/_catalog",
                registry_host(&server, "000000000000", region)
            ))
            .header("authorization", format!("Basic {tok}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let catalog: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            catalog["repositories"],
            serde_json::json!(names),
            "{region}"
        );
    }
    // The bare host is the default region (us-east-1).
    let r = server
        .http()
        .head(format!("{}/v2/app/manifests/v1", server.endpoint))
        .header("authorization", format!("Basic {east_token}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        east_digest
    );
}

/// A `regions` list restricts: a request signed for another region gets AWS's refusal.
#[tokio::test]
async fn a_region_list_refuses_other_regions() {
    let (server, _dir) = server_with(&["--regions", "us-east-1,eu-west-1"]).await;
    let west = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);
    create_repo(&west, "app").await;
    let south = ecr_client_in(&server.endpoint, "ap-south-1", ACCESS_KEY, SECRET_KEY);
    let e = south
        .create_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException");
    assert!(
        format!("{e:?}")
            .contains("Credential should be scoped to a valid region, not 'ap-south-1'."),
        "{e:?}"
    );
    // A registry host name in a region not served is not a registry.
    let via = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&server.endpoint).unwrap())
        .build()
        .unwrap();
    let r = via
        .get(format!(
            "http://{}/v2/",
            registry_host(&server, "000000000000", "ap-south-1")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// skopeo with the registry host names reaching the server through `HTTP_PROXY` (Go's
/// resolver does not map `*.localhost` to loopback, and the tests may not edit /etc/hosts):
/// berth reads only the host name in the request, as it would behind DNS.
pub(crate) fn skopeo_via(server: &TestServer, work: &Path, args: &[&str]) -> (bool, String) {
    let policy = work.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg("skopeo")
        .arg("--policy")
        .arg(&policy)
        .arg("--tmpdir")
        .arg(work)
        .args(args)
        .env("REGISTRY_AUTH_FILE", work.join("auth.json"))
        .env("HTTP_PROXY", &server.endpoint)
        .env("http_proxy", &server.endpoint)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("run skopeo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cross-account pull through the owner's registry host name works with skopeo once a
/// repository policy allows it, and is refused without one.
#[tokio::test]
async fn a_cross_account_v2_pull_follows_the_repository_policy() {
    let (server, dir) = server_with(&[]).await;
    let owner = ecr_client_in(&server.endpoint, "eu-west-1", ACCESS_KEY, SECRET_KEY);
    let other = ecr_client_in(&server.endpoint, "eu-west-1", "AKIDOTHER", "other");
    create_repo(&owner, "team/app").await;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = random_bytes(3000, 7);
    let cd = push_layer(&owner, "team/app", config, &[config.len()]).await;
    let ld = push_layer(&owner, "team/app", &layer, &[layer.len()]).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    owner
        .put_image()
        .repository_name("team/app")
        .image_manifest(&manifest)
        .image_tag("v1")
        .send()
        .await
        .unwrap();

    let other_password = {
        let out = other.get_authorization_token().send().await.unwrap();
        creds(&format!(
            "Basic {}",
            out.authorization_data()[0].authorization_token().unwrap()
        ))
    };
    let work = dir.path().join("skopeo");
    std::fs::create_dir_all(&work).unwrap();
    let layout = dir.path().join("pulled");
    let source = format!(
        "docker://{}/team/app:v1",
        registry_host(&server, "000000000000", "eu-west-1")
    );
    let pull = || {
        skopeo_via(
            &server,
            &work,
            &[
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &other_password,
                &source,
                &format!("oci:{}:v1", layout.display()),
            ],
        )
    };
    let (ok, err) = pull();
    assert!(!ok, "pulled without a policy");
    assert!(err.contains("denied") || err.contains("403"), "{err}");

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"pull","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OTHER}:root"}},
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}}]}}"#
    );
    owner
        .set_repository_policy()
        .repository_name("team/app")
        .policy_text(&policy)
        .send()
        .await
        .unwrap();
    let (ok, err) = pull();
    assert!(ok, "cross-account pull: {err}");
    // The image arrived: its config byte for byte (skopeo compresses the random "layer" for
    // an OCI layout, so the layer's digest changes; the config's cannot).
    let pulled = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(cd.trim_start_matches("sha256:")),
    )
    .expect("the config blob was pulled");
    assert_eq!(pulled, config);

    // The other account's own registry in that region is another registry: no team/app there.
    let (ok, err) = skopeo_via(
        &server,
        &work,
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &other_password,
            &format!(
                "docker://{}/team/app:v1",
                registry_host(&server, OTHER, "eu-west-1")
            ),
        ],
    );
    assert!(!ok, "found in the other account's registry");
    assert!(
        err.contains("not found") || err.contains("unknown"),
        "{err}"
    );
}

/// The lifecycle job runs every region's policies, each in its own registry, and leaves a
/// repository of the same name in a region without a policy alone.
#[tokio::test]
async fn the_lifecycle_job_runs_in_every_region() {
    let (server, _dir) = server_with(&["--lifecycle-interval-secs", "1"]).await;
    let policy = r#"{"rules":[{"rulePriority":1,"description":"keep one","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    let mut clients = Vec::new();
    for (i, region) in ["us-east-1", "eu-west-1", "ap-south-1"].iter().enumerate() {
        let ecr = ecr_client_in(&server.endpoint, region, ACCESS_KEY, SECRET_KEY);
        create_repo(&ecr, "app").await;
        for n in 0..3u64 {
            push_small_image(&ecr, "app", &format!("v{n}"), 10 * i as u64 + n).await;
            // Distinct push times: the newest is kept.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if *region != "us-east-1" {
            ecr.put_lifecycle_policy()
                .repository_name("app")
                .lifecycle_policy_text(policy)
                .send()
                .await
                .unwrap();
        }
        clients.push((*region, ecr));
    }
    let count = |ecr: aws_sdk_ecr::Client| async move {
        ecr.list_images()
            .repository_name("app")
            .send()
            .await
            .unwrap()
            .image_ids()
            .len()
    };
    let mut counts = Vec::new();
    for _ in 0..100 {
        counts.clear();
        for (_, ecr) in &clients {
            counts.push(count(ecr.clone()).await);
        }
        if counts == [3, 1, 1] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts,
        [3, 1, 1],
        "us-east-1 (no policy), eu-west-1, ap-south-1"
    );
}
