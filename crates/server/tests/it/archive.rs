//! Image archival (UpdateImageStorageClass, lifecycle `transition` and
//! `sinceImageTransitioned`) and pull-time tracking (`lastRecordedPullTime`, the pull-time
//! update exclusions) through aws-sdk-ecr and raw `/v2` requests. Restores and ages are timed
//! with the server's test clock (`--clock-offset-secs`): a restart with the clock moved on
//! sees what a wait would.

use std::time::{Duration, Instant};

use aws_sdk_ecr::types::{
    ArtifactStatusFilter, DescribeImagesFilter, ImageIdentifier, ImageStatus, ImageStatusFilter,
    ListImageReferrersFilter, ListImagesFilter, SubjectIdentifier, TargetStorageClass,
};
use reqwest::Method;

use crate::harness::*;

const DAY: i64 = 24 * 3600;
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";
/// The principal of the harness's access key.
const HARNESS_ARN: &str = "arn:aws:iam::000000000000:user/AKIDEXAMPLE";

fn by_tag(tag: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(tag).build()
}

fn by_digest(digest: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(digest).build()
}

async fn storage_class(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    id: ImageIdentifier,
    target: TargetStorageClass,
) -> Result<Option<ImageStatus>, String> {
    ecr.update_image_storage_class()
        .repository_name(repo)
        .image_id(id)
        .target_storage_class(target)
        .send()
        .await
        .map(|o| o.image_status().cloned())
        .map_err(|e| code(&e.into_service_error()))
}

/// The image's details, whatever its status.
async fn detail(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
) -> aws_sdk_ecr::types::ImageDetail {
    ecr.describe_images()
        .repository_name(repo)
        .image_ids(by_digest(digest))
        .send()
        .await
        .unwrap()
        .image_details()[0]
        .clone()
}

/// Digests DescribeImages lists with the status filter (`None`: the default).
async fn described(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    status: Option<ImageStatusFilter>,
) -> Vec<String> {
    let mut req = ecr.describe_images().repository_name(repo);
    if let Some(s) = status {
        req = req.filter(DescribeImagesFilter::builder().image_status(s).build());
    }
    let mut out: Vec<String> = req
        .send()
        .await
        .unwrap()
        .image_details()
        .iter()
        .filter_map(|d| d.image_digest().map(str::to_owned))
        .collect();
    out.sort();
    out
}

async fn listed(ecr: &aws_sdk_ecr::Client, repo: &str, status: ImageStatusFilter) -> Vec<String> {
    ecr.list_images()
        .repository_name(repo)
        .filter(ListImagesFilter::builder().image_status(status).build())
        .send()
        .await
        .unwrap()
        .image_ids()
        .iter()
        .filter_map(|i| i.image_digest().map(str::to_owned))
        .collect()
}

/// (BatchGetImage failure code or "ok", `/v2` GET by tag, `/v2` GET by digest, `/v2` GET of
/// the layer, GetDownloadUrlForLayer's error or "ok").
async fn pulls(
    server: &TestServer,
    repo: &str,
    tag: &str,
    digest: &str,
    layer: &str,
) -> (String, u16, u16, u16, String) {
    let ecr = server.ecr();
    let got = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(by_tag(tag))
        .send()
        .await
        .unwrap();
    let batch = match got.failures().first() {
        Some(f) => f.failure_code().unwrap().as_str().to_owned(),
        None => {
            assert_eq!(got.images().len(), 1);
            "ok".to_owned()
        }
    };
    let oci = server.oci().await;
    let status = |path: String| {
        let oci = &oci;
        async move {
            oci.req(Method::GET, &path)
                .header("accept", ACCEPT)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let by_tag = status(format!("/v2/{repo}/manifests/{tag}")).await;
    let by_digest = status(format!("/v2/{repo}/manifests/{digest}")).await;
    let blob = status(format!("/v2/{repo}/blobs/{layer}")).await;
    let url = match ecr
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(layer)
        .send()
        .await
    {
        Ok(_) => "ok".to_owned(),
        Err(e) => code(&e.into_service_error()),
    };
    (batch, by_tag, by_digest, blob, url)
}

fn blocked() -> (String, u16, u16, u16, String) {
    (
        "ImageInaccessible".into(),
        404,
        404,
        404,
        "LayerInaccessibleException".into(),
    )
}

fn open() -> (String, u16, u16, u16, String) {
    ("ok".into(), 200, 200, 200, "ok".into())
}

#[tokio::test]
async fn archived_images_are_listed_but_not_pulled_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in_with(dir.path(), &["--archive-restore-secs=3600"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "arc/app").await;
    let (_, old, old_layer) = push_small_image(&ecr, "arc/app", "old", 1).await;
    let (_, new, new_layer) = push_small_image(&ecr, "arc/app", "new", 2).await;
    assert_eq!(
        pulls(&server, "arc/app", "old", &old, &old_layer).await,
        open()
    );
    let d = detail(&ecr, "arc/app", &old).await;
    assert_eq!(d.image_status(), Some(&ImageStatus::Active));
    assert!(d.last_archived_at().is_none() && d.last_activated_at().is_none());

    // Archived by tag: the answer names the image as asked, with its status.
    let out = ecr
        .update_image_storage_class()
        .repository_name("arc/app")
        .image_id(by_tag("old"))
        .target_storage_class(TargetStorageClass::Archive)
        .send()
        .await
        .unwrap();
    assert_eq!(out.image_status(), Some(&ImageStatus::Archived));
    assert_eq!(out.registry_id(), Some("000000000000"));
    assert_eq!(out.repository_name(), Some("arc/app"));
    let id = out.image_id().unwrap();
    assert_eq!(
        (id.image_digest(), id.image_tag()),
        (Some(old.as_str()), Some("old"))
    );
    // Listed (only when the filter asks for it), never pulled, through either API.
    assert_eq!(
        pulls(&server, "arc/app", "old", &old, &old_layer).await,
        blocked()
    );
    assert_eq!(
        pulls(&server, "arc/app", "new", &new, &new_layer).await,
        open()
    );
    assert_eq!(described(&ecr, "arc/app", None).await, vec![new.clone()]);
    assert_eq!(
        described(&ecr, "arc/app", Some(ImageStatusFilter::Archived)).await,
        vec![old.clone()]
    );
    let mut both = vec![old.clone(), new.clone()];
    both.sort();
    assert_eq!(
        described(&ecr, "arc/app", Some(ImageStatusFilter::Any)).await,
        both
    );
    assert_eq!(
        listed(&ecr, "arc/app", ImageStatusFilter::Archived).await,
        vec![old.clone()]
    );
    assert_eq!(
        listed(&ecr, "arc/app", ImageStatusFilter::Active).await,
        vec![new.clone()]
    );
    let d = detail(&ecr, "arc/app", &old).await;
    assert_eq!(d.image_status(), Some(&ImageStatus::Archived));
    assert!(d.last_archived_at().is_some());
    // Already there.
    assert_eq!(
        storage_class(
            &ecr,
            "arc/app",
            by_digest(&old),
            TargetStorageClass::Archive
        )
        .await,
        Err("ImageStorageClassUpdateNotSupportedException".into())
    );
    assert_eq!(
        storage_class(&ecr, "arc/app", by_tag("new"), TargetStorageClass::Standard).await,
        Err("ImageStorageClassUpdateNotSupportedException".into())
    );

    // A restore takes the configured hour: ACTIVATING, still not pulled, not moved again.
    assert_eq!(
        storage_class(
            &ecr,
            "arc/app",
            by_digest(&old),
            TargetStorageClass::Standard
        )
        .await,
        Ok(Some(ImageStatus::Activating))
    );
    assert_eq!(
        pulls(&server, "arc/app", "old", &old, &old_layer).await.0,
        "ImageInaccessible"
    );
    assert_eq!(
        described(&ecr, "arc/app", Some(ImageStatusFilter::Activating)).await,
        vec![old.clone()]
    );
    for target in [TargetStorageClass::Standard, TargetStorageClass::Archive] {
        assert_eq!(
            storage_class(&ecr, "arc/app", by_digest(&old), target).await,
            Err("ImageStorageClassUpdateNotSupportedException".into())
        );
    }
    drop(server);
    // Garbage collection keeps what archived images use: their blobs are pulled once restored.
    let (rc, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], dir.path());
    assert_eq!(rc, 0, "{out}");

    // An hour later it is ACTIVE and pulled again, with both times shown.
    let server = TestServer::start_in_with(dir.path(), &["--clock-offset-secs=3601"]).await;
    let ecr = server.ecr();
    assert_eq!(
        pulls(&server, "arc/app", "old", &old, &old_layer).await,
        open()
    );
    let d = detail(&ecr, "arc/app", &old).await;
    assert_eq!(d.image_status(), Some(&ImageStatus::Active));
    let (archived, activated) = (
        d.last_archived_at().unwrap(),
        d.last_activated_at().unwrap(),
    );
    assert!(
        activated.secs() - archived.secs() >= 3600,
        "{archived:?} {activated:?}"
    );
    assert_eq!(described(&ecr, "arc/app", None).await, both);
}

#[tokio::test]
async fn storage_class_refusals_change_nothing_and_deletes_and_pushes_end_the_archive() {
    let server = TestServer::start_with(&["--archive-restore-secs=0"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "arc/bad").await;
    let (manifest, digest, layer) = push_small_image(&ecr, "arc/bad", "v1", 3).await;
    for (repo, id, want) in [
        ("arc/bad", by_tag("nope"), "ImageNotFoundException"),
        (
            "arc/bad",
            by_digest(&format!("sha256:{}", "0".repeat(64))),
            "ImageNotFoundException",
        ),
        ("arc/missing", by_tag("v1"), "RepositoryNotFoundException"),
        (
            "arc/bad",
            ImageIdentifier::builder().build(),
            "InvalidParameterException",
        ),
        (
            "arc/bad",
            by_digest("sha256:zz"),
            "InvalidParameterException",
        ),
        (
            "arc/bad",
            ImageIdentifier::builder()
                .image_digest(&digest)
                .image_tag("other")
                .build(),
            "ImageNotFoundException",
        ),
    ] {
        assert_eq!(
            storage_class(&ecr, repo, id, TargetStorageClass::Archive).await,
            Err(want.into()),
            "{repo}"
        );
    }
    assert_eq!(
        storage_class(
            &ecr,
            "arc/bad",
            by_tag("v1"),
            TargetStorageClass::from("GLACIER")
        )
        .await,
        Err("InvalidParameterException".into())
    );
    assert_eq!(
        detail(&ecr, "arc/bad", &digest).await.image_status(),
        Some(&ImageStatus::Active),
        "nothing moved"
    );

    // A manifest an index lists goes with its index, never alone.
    let oci = server.oci().await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{ACCEPT}","digest":"{digest}","size":{}}}]}}"#,
        manifest.len()
    );
    let r = oci
        .req(Method::PUT, "/v2/arc/bad/manifests/multi")
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let index_digest = sha256_digest(index.as_bytes());
    assert_eq!(
        storage_class(
            &ecr,
            "arc/bad",
            by_digest(&digest),
            TargetStorageClass::Archive
        )
        .await,
        Err("ImageStorageClassUpdateNotSupportedException".into())
    );
    assert_eq!(
        storage_class(
            &ecr,
            "arc/bad",
            by_tag("multi"),
            TargetStorageClass::Archive
        )
        .await,
        Ok(Some(ImageStatus::Archived))
    );
    assert_eq!(
        detail(&ecr, "arc/bad", &digest).await.image_status(),
        Some(&ImageStatus::Archived),
        "the child went with its index"
    );
    assert_eq!(
        pulls(&server, "arc/bad", "v1", &digest, &layer).await,
        blocked()
    );
    // Restored together (no delay configured: ACTIVE at once).
    assert_eq!(
        storage_class(
            &ecr,
            "arc/bad",
            by_digest(&index_digest),
            TargetStorageClass::Standard
        )
        .await,
        Ok(Some(ImageStatus::Active))
    );
    assert_eq!(
        pulls(&server, "arc/bad", "v1", &digest, &layer).await,
        open()
    );

    // A push of an archived image restores it ("automatically restored").
    create_repo(&ecr, "arc/push").await;
    let (manifest, digest, layer) = push_small_image(&ecr, "arc/push", "v1", 4).await;
    assert_eq!(
        storage_class(&ecr, "arc/push", by_tag("v1"), TargetStorageClass::Archive).await,
        Ok(Some(ImageStatus::Archived))
    );
    ecr.put_image()
        .repository_name("arc/push")
        .image_manifest(&manifest)
        .image_tag("v1")
        .send()
        .await
        .expect("the push of an archived image is no ImageAlreadyExists");
    assert_eq!(
        detail(&ecr, "arc/push", &digest).await.image_status(),
        Some(&ImageStatus::Active)
    );
    assert_eq!(
        pulls(&server, "arc/push", "v1", &digest, &layer).await,
        open()
    );

    // BatchDeleteImage deletes an archived image; pushed again, it starts ACTIVE.
    assert_eq!(
        storage_class(&ecr, "arc/push", by_tag("v1"), TargetStorageClass::Archive).await,
        Ok(Some(ImageStatus::Archived))
    );
    let del = ecr
        .batch_delete_image()
        .repository_name("arc/push")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    assert_eq!(del.image_ids().len(), 1);
    assert!(del.failures().is_empty());
    ecr.put_image()
        .repository_name("arc/push")
        .image_manifest(&manifest)
        .image_tag("v1")
        .send()
        .await
        .unwrap();
    let d = detail(&ecr, "arc/push", &digest).await;
    assert_eq!(d.image_status(), Some(&ImageStatus::Active));
    assert!(
        d.last_archived_at().is_none(),
        "the deleted image's state went with it"
    );
    assert_eq!(
        pulls(&server, "arc/push", "v1", &digest, &layer).await,
        open()
    );

    // A referrer archived on its own is listed by ListImageReferrers only when asked for.
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{ACCEPT}","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{layer}","size":1}},"layers":[],"subject":{{"mediaType":"{ACCEPT}","digest":"{digest}","size":{}}}}}"#,
        manifest.len()
    );
    let referrer_digest = sha256_digest(referrer.as_bytes());
    let r = oci
        .req(
            Method::PUT,
            &format!("/v2/arc/push/manifests/{referrer_digest}"),
        )
        .header("content-type", ACCEPT)
        .body(referrer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let referrers = |status: Option<ArtifactStatusFilter>| {
        let ecr = &ecr;
        let digest = &digest;
        async move {
            let mut req = ecr
                .list_image_referrers()
                .repository_name("arc/push")
                .subject_id(
                    SubjectIdentifier::builder()
                        .image_digest(digest)
                        .build()
                        .unwrap(),
                );
            if let Some(s) = status {
                req = req.filter(
                    ListImageReferrersFilter::builder()
                        .artifact_status(s)
                        .build(),
                );
            }
            req.send()
                .await
                .unwrap()
                .referrers()
                .iter()
                .map(|x| {
                    (
                        x.digest().to_owned(),
                        x.artifact_status().map(|s| s.as_str().to_owned()),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        referrers(None).await,
        vec![(referrer_digest.clone(), Some("ACTIVE".to_owned()))]
    );
    assert_eq!(
        storage_class(
            &ecr,
            "arc/push",
            by_digest(&referrer_digest),
            TargetStorageClass::Archive
        )
        .await,
        Ok(Some(ImageStatus::Archived))
    );
    assert_eq!(referrers(None).await, vec![]);
    assert_eq!(
        referrers(Some(ArtifactStatusFilter::Archived)).await,
        vec![(referrer_digest, Some("ARCHIVED".to_owned()))]
    );
}

/// Polls DescribeImages (bounded) until the image shows a recorded pull.
async fn wait_for_pull_time(ecr: &aws_sdk_ecr::Client, repo: &str, digest: &str) -> f64 {
    let start = Instant::now();
    loop {
        if let Some(t) = detail(ecr, repo, digest).await.last_recorded_pull_time() {
            return t.as_secs_f64();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no pull time recorded for {digest}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn pulls_through_either_api_record_the_pull_time_except_for_excluded_principals() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in_with(dir.path(), &["--pull-time-flush-secs=1"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "pt/app").await;
    let (_, a, _) = push_small_image(&ecr, "pt/app", "a", 5).await;
    let (_, b, _) = push_small_image(&ecr, "pt/app", "b", 6).await;
    let (_, c, _) = push_small_image(&ecr, "pt/app", "c", 7).await;
    // Listing, describing and HEAD are no pulls.
    let oci = server.oci().await;
    let r = oci
        .req(Method::HEAD, "/v2/pt/app/manifests/a")
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        detail(&ecr, "pt/app", &a)
            .await
            .last_recorded_pull_time()
            .is_none()
    );

    // BatchGetImage by tag, and /v2 GET by digest.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    ecr.batch_get_image()
        .repository_name("pt/app")
        .image_ids(by_tag("a"))
        .send()
        .await
        .unwrap();
    let r = oci
        .req(Method::GET, &format!("/v2/pt/app/manifests/{b}"))
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ta = wait_for_pull_time(&ecr, "pt/app", &a).await;
    let tb = wait_for_pull_time(&ecr, "pt/app", &b).await;
    assert!(
        ta >= before.floor() && tb >= before.floor(),
        "{ta} {tb} {before}"
    );

    // The caller excluded: its pulls are not recorded; another principal's would be.
    let out = ecr
        .register_pull_time_update_exclusion()
        .principal_arn(HARNESS_ARN)
        .send()
        .await
        .unwrap();
    assert_eq!(out.principal_arn(), Some(HARNESS_ARN));
    assert!(out.created_at().is_some());
    let r = oci
        .req(Method::GET, "/v2/pt/app/manifests/c")
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ecr.batch_get_image()
        .repository_name("pt/app")
        .image_ids(by_tag("c"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        detail(&ecr, "pt/app", &c)
            .await
            .last_recorded_pull_time()
            .is_none(),
        "an excluded principal's pull is not recorded"
    );
    ecr.deregister_pull_time_update_exclusion()
        .principal_arn(HARNESS_ARN)
        .send()
        .await
        .unwrap();
    drop(server);

    // Pulls still in memory at a graceful shutdown are written then (the flush interval is
    // an hour here).
    let mut server = TestServer::start_in_with(dir.path(), &["--pull-time-flush-secs=3600"]).await;
    let oci = server.oci().await;
    let r = oci
        .req(Method::GET, "/v2/pt/app/manifests/c")
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    while !server.exited().await {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "berth did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    assert!(
        detail(&ecr, "pt/app", &c)
            .await
            .last_recorded_pull_time()
            .is_some(),
        "written at shutdown"
    );
}

#[tokio::test]
async fn pull_time_exclusions_are_registered_listed_and_deregistered_as_in_ecr() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let arns = [
        "arn:aws:iam::000000000000:role/scanner",
        "arn:aws:iam::000000000000:user/ci",
        "arn:aws:iam::111111111111:role/path/audit",
    ];
    for arn in arns {
        ecr.register_pull_time_update_exclusion()
            .principal_arn(arn)
            .send()
            .await
            .unwrap();
    }
    let e = ecr
        .register_pull_time_update_exclusion()
        .principal_arn(arns[0])
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "ExclusionAlreadyExistsException");
    for bad in [
        "arn:aws:iam::000000000000:group/devs",
        "arn:aws:sts::000000000000:assumed-role/x/y",
        "not an arn",
        &format!("arn:aws:iam::000000000000:user/{}", "a".repeat(200)),
    ] {
        let e = ecr
            .register_pull_time_update_exclusion()
            .principal_arn(bad)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(code(&e), "InvalidParameterException", "{bad}");
    }
    // Paged, in order.
    let first = ecr
        .list_pull_time_update_exclusions()
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.pull_time_update_exclusions(), &arns[..2]);
    let rest = ecr
        .list_pull_time_update_exclusions()
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.pull_time_update_exclusions(), &arns[2..]);
    assert!(rest.next_token().is_none());
    let e = ecr
        .list_pull_time_update_exclusions()
        .max_results(1001)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "InvalidParameterException");

    let out = ecr
        .deregister_pull_time_update_exclusion()
        .principal_arn(arns[1])
        .send()
        .await
        .unwrap();
    assert_eq!(out.principal_arn(), Some(arns[1]));
    let e = ecr
        .deregister_pull_time_update_exclusion()
        .principal_arn(arns[1])
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "ExclusionNotFoundException");
    let all = ecr.list_pull_time_update_exclusions().send().await.unwrap();
    assert_eq!(all.pull_time_update_exclusions(), &[arns[0], arns[2]]);

    // The registry's limit.
    for i in 0..(registry_limit() - 2) {
        ecr.register_pull_time_update_exclusion()
            .principal_arn(format!("arn:aws:iam::000000000000:user/u{i:03}"))
            .send()
            .await
            .unwrap();
    }
    let e = ecr
        .register_pull_time_update_exclusion()
        .principal_arn("arn:aws:iam::000000000000:user/one-too-many")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LimitExceededException");
    let all = ecr
        .list_pull_time_update_exclusions()
        .max_results(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(all.pull_time_update_exclusions().len(), registry_limit());
}

/// berth's limit of excluded principals per registry.
fn registry_limit() -> usize {
    100
}

/// `transition` archives what the preview says it will, `sinceImageTransitioned` expires it
/// once it has been archived long enough, and `sinceImagePulled` reads recorded pulls.
#[tokio::test]
async fn lifecycle_transitions_then_expires_archived_images_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    // 40 days ago: two images, one of which is then pulled today.
    let server =
        TestServer::start_in_with(dir.path(), &[&format!("--clock-offset-secs={}", -40 * DAY)])
            .await;
    let ecr = server.ecr();
    create_repo(&ecr, "lc/app").await;
    let (_, pulled, _) = push_small_image(&ecr, "lc/app", "pulled", 8).await;
    let (_, idle, idle_layer) = push_small_image(&ecr, "lc/app", "idle", 9).await;
    drop(server);
    let server = TestServer::start_in_with(dir.path(), &["--pull-time-flush-secs=1"]).await;
    let ecr = server.ecr();
    let (_, fresh, _) = push_small_image(&ecr, "lc/app", "fresh", 10).await;
    ecr.batch_get_image()
        .repository_name("lc/app")
        .image_ids(by_tag("pulled"))
        .send()
        .await
        .unwrap();
    wait_for_pull_time(&ecr, "lc/app", &pulled).await;

    let policy = r#"{"rules":[
 {"rulePriority":1,"description":"archive what nobody pulled for a month","selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}},
 {"rulePriority":2,"description":"drop what sat in the archive for 90 days","selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90},"action":{"type":"expire"}}
]}"#;
    ecr.put_lifecycle_policy()
        .repository_name("lc/app")
        .lifecycle_policy_text(policy)
        .send()
        .await
        .unwrap();
    ecr.start_lifecycle_policy_preview()
        .repository_name("lc/app")
        .send()
        .await
        .unwrap();
    let preview = ecr
        .get_lifecycle_policy_preview()
        .repository_name("lc/app")
        .send()
        .await
        .unwrap();
    let planned: Vec<(String, String)> = preview
        .preview_results()
        .iter()
        .map(|r| {
            (
                r.image_digest().unwrap().to_owned(),
                r.action()
                    .and_then(|a| a.target_storage_class())
                    .map_or("expire".into(), |c| c.as_str().to_owned()),
            )
        })
        .collect();
    // The pulled image and the fresh one stay: only the idle one goes to the archive.
    assert_eq!(planned, vec![(idle.clone(), "ARCHIVE".to_owned())]);
    drop(server);

    let (code_, out) = berth_cli(&["lifecycle", "run"], dir.path());
    assert_eq!(code_, 0, "{out}");
    assert!(
        out.contains("archived: 1") && out.contains("expired: 0"),
        "{out}"
    );
    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    assert_eq!(
        detail(&ecr, "lc/app", &idle).await.image_status(),
        Some(&ImageStatus::Archived)
    );
    assert_eq!(
        pulls(&server, "lc/app", "idle", &idle, &idle_layer).await,
        blocked()
    );
    let mut active = vec![pulled.clone(), fresh.clone()];
    active.sort();
    assert_eq!(described(&ecr, "lc/app", None).await, active);
    drop(server);

    // 89 days on, the archived image stays; 91 days on, it is expired.
    let (code_, out) = berth_cli(
        &[
            "lifecycle",
            "run",
            &format!("--clock-offset-secs={}", 89 * DAY),
        ],
        dir.path(),
    );
    assert_eq!(code_, 0, "{out}");
    // By then the other two went unpulled for a month as well.
    assert!(
        out.contains("expired: 0") && out.contains("archived: 2"),
        "{out}"
    );
    let (code_, out) = berth_cli(
        &[
            "lifecycle",
            "run",
            &format!("--clock-offset-secs={}", 91 * DAY),
        ],
        dir.path(),
    );
    assert_eq!(code_, 0, "{out}");
    // Those two were archived only two days before: they stay.
    assert!(
        out.contains("expired: 1") && out.contains("archived: 0"),
        "{out}"
    );
    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    let e = ecr
        .describe_images()
        .repository_name("lc/app")
        .image_ids(by_digest(&idle))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "ImageNotFoundException");
    assert_eq!(
        described(&ecr, "lc/app", Some(ImageStatusFilter::Archived)).await,
        active
    );
}
