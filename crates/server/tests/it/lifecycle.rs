//! Lifecycle policies through aws-sdk-ecr: put/get/delete, preview, and execution by
//! `berth lifecycle run` and by the background job. Images are aged with the server's test
//! clock (`--clock-offset-secs`): pushed by a server whose clock is behind, they are old.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecr::types::{LifecyclePolicyPreviewFilter, TagStatus};
use reqwest::Method;

use crate::harness::*;

const DAY: i64 = 24 * 3600;

/// rule 1: of the images with a `prod` tag, keep the newest 2; rule 2: untagged images
/// older than a week; rule 3: anything else older than 30 days.
const POLICY: &str = r#"{"rules":[
 {"rulePriority":3,"description":"old","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}},
 {"rulePriority":1,"description":"prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
 {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}
]}"#;

async fn pushed_at(offset_days: i64, dir: &std::path::Path, images: &[(&str, u64)]) -> Vec<String> {
    let offset = format!("--clock-offset-secs={}", -offset_days * DAY);
    let server = TestServer::start_in_with(dir, &[&offset]).await;
    let ecr = server.ecr();
    if offset_days == 40 {
        create_repo(&ecr, "team/app").await;
    }
    let mut digests = Vec::new();
    for (tag, seed) in images {
        digests.push(push_small_image(&ecr, "team/app", tag, *seed).await.1);
    }
    digests
}

async fn listed(ecr: &aws_sdk_ecr::Client) -> BTreeSet<String> {
    ecr.list_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap()
        .image_ids()
        .iter()
        .filter_map(|i| i.image_digest().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn preview_and_run_expire_the_same_aged_images() {
    let dir = tempfile::tempdir().unwrap();
    // 40 days ago: prod-1, an image whose tag `tmp` later moves (so it ends untagged), dev-old.
    let old = pushed_at(40, dir.path(), &[("prod-1", 1), ("tmp", 2), ("dev-old", 3)]).await;
    // 10 days ago: prod-2, and `tmp` moves to a new image.
    let mid = pushed_at(10, dir.path(), &[("prod-2", 4), ("tmp", 5)]).await;
    let new = pushed_at(0, dir.path(), &[("prod-3", 6), ("dev-new", 7)]).await;
    let expiring: BTreeSet<String> = old.iter().cloned().collect();
    let staying: BTreeSet<String> = mid.iter().chain(&new).cloned().collect();

    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    let put = ecr
        .put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(POLICY)
        .send()
        .await
        .unwrap();
    assert_eq!(put.lifecycle_policy_text(), Some(POLICY));
    assert_eq!(put.registry_id(), Some("000000000000"));
    let got = ecr
        .get_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(got.lifecycle_policy_text(), Some(POLICY));
    assert!(got.last_evaluated_at().is_none(), "never run yet");

    let started = ecr
        .start_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(started.lifecycle_policy_text(), Some(POLICY));
    let preview = ecr
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status().map(|s| s.as_str()), Some("COMPLETE"));
    let by_digest: Vec<(String, i32, String)> = preview
        .preview_results()
        .iter()
        .map(|r| {
            (
                r.image_digest().unwrap().to_owned(),
                r.applied_rule_priority().unwrap(),
                r.action().unwrap().r#type().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    let mut want = vec![
        (old[0].clone(), 1, "EXPIRE".to_owned()),
        (old[1].clone(), 2, "EXPIRE".to_owned()),
        (old[2].clone(), 3, "EXPIRE".to_owned()),
    ];
    want.sort();
    assert_eq!(by_digest, want, "in digest order, each with its rule");
    assert_eq!(
        preview
            .summary()
            .and_then(|s| s.expiring_image_total_count()),
        Some(3)
    );
    let untagged = ecr
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .filter(
            LifecyclePolicyPreviewFilter::builder()
                .tag_status(TagStatus::Untagged)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let untagged: Vec<&str> = untagged
        .preview_results()
        .iter()
        .filter_map(|r| r.image_digest())
        .collect();
    assert_eq!(untagged, vec![old[1].as_str()]);
    let paged = ecr
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(paged.preview_results().len(), 2);
    let rest = ecr
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .next_token(paged.next_token().expect("a second page"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.preview_results().len(), 1);
    assert!(rest.next_token().is_none());
    // The preview changed nothing.
    assert_eq!(listed(&ecr).await.len(), 7);
    drop(server);

    let (code, out) = berth_cli(&["lifecycle", "run", "--dry-run"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expired: 3"), "{out}");
    let (code, out) = berth_cli(&["lifecycle", "run"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expired: 3"), "{out}");

    let server = TestServer::start_in(dir.path()).await;
    let ecr = server.ecr();
    let remaining = listed(&ecr).await;
    assert_eq!(
        remaining, staying,
        "the preview's images went, the others stay"
    );
    assert!(remaining.is_disjoint(&expiring));
    // Gone through /v2 as well, and what stays is still pulled.
    let oci = server.oci().await;
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let r = oci
        .req(Method::GET, "/v2/team/app/manifests/prod-1")
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = oci
        .req(Method::GET, "/v2/team/app/manifests/prod-2")
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = ecr
        .get_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert!(got.last_evaluated_at().is_some(), "the run is recorded");
    // A second run finds nothing more to do.
    drop(server);
    let (code, out) = berth_cli(&["lifecycle", "run"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expired: 0"), "{out}");
}

#[tokio::test]
async fn the_background_job_applies_policies_on_its_interval() {
    let server = TestServer::start_with(&["--lifecycle-interval-secs", "1"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let mut digests = Vec::new();
    for seed in 0..3 {
        digests.push(
            push_small_image(&ecr, "team/app", &format!("v{seed}"), seed)
                .await
                .1,
        );
        // Distinct push times: the newest is kept.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let policy = r#"{"rules":[{"rulePriority":1,"description":"keep one","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    ecr.put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(policy)
        .send()
        .await
        .unwrap();
    let mut left = listed(&ecr).await;
    for _ in 0..100 {
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = listed(&ecr).await;
    }
    assert_eq!(left, BTreeSet::from([digests[2].clone()]));
}

#[tokio::test]
async fn bad_policies_and_missing_ones_get_ecr_errors() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let rule = |selection: &str, action: &str| {
        format!(
            r#"{{"rules":[{{"rulePriority":1,"description":"a rule described at some length","selection":{selection},"action":{action}}}]}}"#
        )
    };
    let expire = r#"{"type":"expire"}"#;
    for (text, want) in [
        (
            rule(
                r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#,
                expire,
            ),
            "tagPrefixList or tagPatternList is required",
        ),
        (
            rule(
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1}"#,
                expire,
            ),
            "countUnit is required",
        ),
        (
            rule(
                r#"{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":1}"#,
                expire,
            ),
            "more than 4 wildcards",
        ),
        (
            rule(
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0}"#,
                expire,
            ),
            "countNumber must be an integer of at least 1",
        ),
        (
            rule(
                r#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":89}"#,
                expire,
            ),
            "at least 90",
        ),
        (
            rule(
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
                r#"{"type":"transition"}"#,
            ),
            "targetStorageClass archive is required",
        ),
        (format!("not json{}", " ".repeat(120)), "not valid JSON"),
    ] {
        let e = ecr
            .put_lifecycle_policy()
            .repository_name("team/app")
            .lifecycle_policy_text(&text)
            .send()
            .await
            .expect_err(&text);
        let e = e.into_service_error();
        assert_eq!(code(&e), "InvalidParameterException", "{text}");
        let msg = aws_sdk_ecr::error::ProvideErrorMetadata::message(&e)
            .unwrap_or_default()
            .to_owned();
        assert!(
            msg.starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ") && msg.contains(want),
            "{text}: {msg}"
        );
    }
    // The model's length bounds.
    let e = ecr
        .put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(r#"{"rules":[]}"#)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "InvalidParameterException");
    // Nothing was stored by the refusals.
    let e = ecr
        .get_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LifecyclePolicyNotFoundException");
    let e = ecr
        .delete_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LifecyclePolicyNotFoundException");
    let e = ecr
        .start_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LifecyclePolicyNotFoundException");
    let e = ecr
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LifecyclePolicyPreviewNotFoundException");
    let e = ecr
        .get_lifecycle_policy()
        .repository_name("team/none")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "RepositoryNotFoundException");

    // A good one is stored, and deleting it answers it.
    let good = rule(
        r#"{"tagStatus":"tagged","tagPatternList":["*-rc*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14}"#,
        expire,
    );
    ecr.put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(&good)
        .send()
        .await
        .unwrap();
    let deleted = ecr
        .delete_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.lifecycle_policy_text(), Some(good.as_str()));
    let e = ecr
        .get_lifecycle_policy()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "LifecyclePolicyNotFoundException");
}
