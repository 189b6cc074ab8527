//! Issue 15's repository settings, scanning configuration and referrers operations, driven by
//! `aws-sdk-ecr`: PutImageTagMutability (and its effect on PutImage and `/v2` pushes),
//! PutImageScanningConfiguration, Get/PutRegistryScanningConfiguration,
//! BatchGetRepositoryScanningConfiguration, StartImageScan, DescribeImageScanFindings and
//! ListImageReferrers, with their refusals.

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{
    ImageIdentifier, ImageScanningConfiguration, ImageTagMutability,
    ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
    ListImageReferrersFilter, RegistryScanningRule, ScanFrequency, ScanType,
    ScanningRepositoryFilter, ScanningRepositoryFilterType, SubjectIdentifier,
};

use crate::harness::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn exclusion(f: &str) -> ImageTagMutabilityExclusionFilter {
    ImageTagMutabilityExclusionFilter::builder()
        .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
        .filter(f)
        .build()
        .unwrap()
}

/// The modeled error code and message of an SDK error.
fn err<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or("<none>").to_owned(),
        e.message().unwrap_or_default().to_owned(),
    )
}

/// A repository's mutability and exclusion filters, as DescribeRepositories shows them.
async fn mutability_of(ecr: &aws_sdk_ecr::Client, name: &str) -> (String, Vec<String>) {
    let out = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap();
    let r = &out.repositories()[0];
    (
        r.image_tag_mutability().unwrap().as_str().to_owned(),
        r.image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| f.filter().to_owned())
            .collect(),
    )
}

async fn digest_of_tag(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> String {
    let out = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    out.images()[0]
        .image_id()
        .and_then(|i| i.image_digest())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn put_image_tag_mutability_governs_put_image_and_v2_pushes() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "mut/app";
    create_repo(&ecr, repo).await;
    let (m1, d1, _) = push_small_image(&ecr, repo, "v1", 1).await;
    push_small_image(&ecr, repo, "latest", 1).await;
    let (m2, d2, _) = push_small_image(&ecr, repo, "other", 2).await;

    let out = ecr
        .put_image_tag_mutability()
        .repository_name(repo)
        .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
        .image_tag_mutability_exclusion_filters(exclusion("latest"))
        .image_tag_mutability_exclusion_filters(exclusion("dev-*"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.repository_name(), Some(repo));
    assert_eq!(out.registry_id(), Some("000000000000"));
    assert_eq!(
        out.image_tag_mutability(),
        Some(&ImageTagMutability::ImmutableWithExclusion)
    );
    assert_eq!(out.image_tag_mutability_exclusion_filters().len(), 2);
    let expected = (
        "IMMUTABLE_WITH_EXCLUSION".to_owned(),
        vec!["latest".to_owned(), "dev-*".to_owned()],
    );
    assert_eq!(mutability_of(&ecr, repo).await, expected);

    // v1 is immutable now: neither PutImage nor a /v2 PUT may move it.
    let e = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(&m2)
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ImageTagAlreadyExistsException");
    let oci = server.oci().await;
    let r = oci.put_manifest(repo, "v1", OCI_MANIFEST, &m2).await;
    assert_eq!(oci_code(r).await, "TAG_INVALID");
    assert_eq!(digest_of_tag(&ecr, repo, "v1").await, d1);
    // Excluded tags still move, through both APIs.
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(&m2)
        .image_tag("latest")
        .send()
        .await
        .unwrap();
    assert_eq!(digest_of_tag(&ecr, repo, "latest").await, d2);
    let r = oci.put_manifest(repo, "dev-1", OCI_MANIFEST, &m1).await;
    assert_eq!(r.status(), 201);
    let r = oci.put_manifest(repo, "dev-1", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 201, "dev-* is excluded from immutability");
    assert_eq!(digest_of_tag(&ecr, repo, "dev-1").await, d2);

    // MUTABLE_WITH_EXCLUSION: only the excluded tags are frozen.
    ecr.put_image_tag_mutability()
        .repository_name(repo)
        .image_tag_mutability(ImageTagMutability::MutableWithExclusion)
        .image_tag_mutability_exclusion_filters(exclusion("release-*"))
        .send()
        .await
        .unwrap();
    let r = oci.put_manifest(repo, "v1", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status(), 201, "v1 is mutable again");
    let r = oci.put_manifest(repo, "release-1", OCI_MANIFEST, &m1).await;
    assert_eq!(r.status(), 201);
    let r = oci.put_manifest(repo, "release-1", OCI_MANIFEST, &m2).await;
    assert_eq!(oci_code(r).await, "TAG_INVALID");

    // Plain MUTABLE clears the filters.
    let out = ecr
        .put_image_tag_mutability()
        .repository_name(repo)
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    assert!(out.image_tag_mutability_exclusion_filters().is_empty());
    assert_eq!(
        mutability_of(&ecr, repo).await,
        ("MUTABLE".to_owned(), vec![])
    );
    ecr.put_image()
        .repository_name(repo)
        .image_manifest(&m2)
        .image_tag("release-1")
        .send()
        .await
        .unwrap();
    assert_eq!(digest_of_tag(&ecr, repo, "release-1").await, d2);
}

#[tokio::test]
async fn put_image_tag_mutability_refusals_change_nothing() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "mut/refused";
    create_repo(&ecr, repo).await;
    let before = mutability_of(&ecr, repo).await;
    let put = || {
        ecr.put_image_tag_mutability()
            .repository_name(repo)
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
    };
    let cases = [
        (
            "filters without a *_WITH_EXCLUSION setting",
            ecr.put_image_tag_mutability()
                .repository_name(repo)
                .image_tag_mutability(ImageTagMutability::Immutable)
                .image_tag_mutability_exclusion_filters(exclusion("latest")),
            "Exclusion filters are only allowed",
        ),
        ("no filters", put(), "Exclusion filters are required"),
        (
            "a filter outside the pattern",
            put().image_tag_mutability_exclusion_filters(exclusion("no spaces")),
            "imageTagMutabilityExclusionFilters.member.filter",
        ),
        (
            "six filters",
            (0..6).fold(put(), |b, i| {
                b.image_tag_mutability_exclusion_filters(exclusion(&format!("t{i}")))
            }),
            "imageTagMutabilityExclusionFilters",
        ),
        (
            "an unknown setting",
            ecr.put_image_tag_mutability()
                .repository_name(repo)
                .image_tag_mutability(ImageTagMutability::from("SOMETIMES")),
            "imageTagMutability",
        ),
    ];
    for (what, req, words) in cases {
        let e = req.send().await.unwrap_err();
        let (c, m) = err(&e);
        assert_eq!(c, "InvalidParameterException", "{what}: {m}");
        assert!(m.contains(words), "{what}: {m}");
        assert_eq!(mutability_of(&ecr, repo).await, before, "{what}");
    }
    let e = ecr
        .put_image_tag_mutability()
        .repository_name("mut/missing")
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

fn scan_rule(frequency: ScanFrequency, filters: &[&str]) -> RegistryScanningRule {
    filters
        .iter()
        .fold(RegistryScanningRule::builder(), |b, f| {
            b.repository_filters(
                ScanningRepositoryFilter::builder()
                    .filter(*f)
                    .filter_type(ScanningRepositoryFilterType::Wildcard)
                    .build()
                    .unwrap(),
            )
        })
        .scan_frequency(frequency)
        .build()
        .unwrap()
}

#[tokio::test]
async fn scanning_configuration_is_stored_and_applied_by_filters() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    for name in ["scan/web", "scan/critical-db", "other/app"] {
        create_repo(&ecr, name).await;
    }
    // PutImageScanningConfiguration: the repository's own flag.
    let out = ecr
        .put_image_scanning_configuration()
        .repository_name("other/app")
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.image_scanning_configuration()
            .map(ImageScanningConfiguration::scan_on_push),
        Some(true)
    );
    let described = ecr
        .describe_repositories()
        .repository_names("other/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.repositories()[0]
            .image_scanning_configuration()
            .map(ImageScanningConfiguration::scan_on_push),
        Some(true)
    );
    let e = ecr
        .put_image_scanning_configuration()
        .repository_name("scan/missing")
        .image_scanning_configuration(ImageScanningConfiguration::builder().build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");

    // A registry that never set one: BASIC, no rules.
    let got = ecr
        .get_registry_scanning_configuration()
        .send()
        .await
        .unwrap();
    assert_eq!(got.registry_id(), Some("000000000000"));
    let c = got.scanning_configuration().unwrap();
    assert_eq!(c.scan_type(), Some(&ScanType::Basic));
    assert!(c.rules().is_empty());

    let put = ecr
        .put_registry_scanning_configuration()
        .scan_type(ScanType::Enhanced)
        .rules(scan_rule(ScanFrequency::ScanOnPush, &["scan/*", "*-svc"]))
        .rules(scan_rule(
            ScanFrequency::ContinuousScan,
            &["scan/critical*"],
        ))
        .send()
        .await
        .unwrap();
    let stored = put.registry_scanning_configuration().unwrap();
    let got = ecr
        .get_registry_scanning_configuration()
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.scanning_configuration(),
        Some(stored),
        "returned exactly"
    );
    assert_eq!(stored.rules().len(), 2);
    assert_eq!(stored.rules()[0].repository_filters().len(), 2);

    let batch = ecr
        .batch_get_repository_scanning_configuration()
        .repository_names("scan/web")
        .repository_names("scan/critical-db")
        .repository_names("other/app")
        .repository_names("scan/missing")
        .send()
        .await
        .unwrap();
    let configs: Vec<_> = batch
        .scanning_configurations()
        .iter()
        .map(|c| {
            (
                c.repository_name().unwrap().to_owned(),
                c.scan_frequency().unwrap().as_str().to_owned(),
                c.scan_on_push(),
                c.applied_scan_filters()
                    .iter()
                    .map(|f| f.filter().to_owned())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        configs,
        [
            (
                "scan/web".into(),
                "SCAN_ON_PUSH".into(),
                true,
                vec!["scan/*".to_owned()]
            ),
            (
                "scan/critical-db".into(),
                "CONTINUOUS_SCAN".into(),
                true,
                vec!["scan/critical*".to_owned()]
            ),
            ("other/app".into(), "SCAN_ON_PUSH".into(), true, vec![]),
        ]
    );
    assert!(
        batch.scanning_configurations()[0]
            .repository_arn()
            .unwrap()
            .ends_with(":000000000000:repository/scan/web")
    );
    assert_eq!(batch.failures().len(), 1);
    assert_eq!(batch.failures()[0].repository_name(), Some("scan/missing"));
    assert_eq!(
        batch.failures()[0].failure_code().map(|c| c.as_str()),
        Some("REPOSITORY_NOT_FOUND")
    );

    // Refusals leave the stored configuration as it was.
    let refusals = [
        (
            "continuous scanning with BASIC",
            ecr.put_registry_scanning_configuration()
                .scan_type(ScanType::Basic)
                .rules(scan_rule(ScanFrequency::ContinuousScan, &["*"])),
        ),
        (
            "two rules of one frequency",
            ecr.put_registry_scanning_configuration()
                .scan_type(ScanType::Enhanced)
                .rules(scan_rule(ScanFrequency::ScanOnPush, &["a*"]))
                .rules(scan_rule(ScanFrequency::ScanOnPush, &["b*"])),
        ),
        (
            "three rules",
            ecr.put_registry_scanning_configuration()
                .scan_type(ScanType::Enhanced)
                .rules(scan_rule(ScanFrequency::ScanOnPush, &["a*"]))
                .rules(scan_rule(ScanFrequency::ContinuousScan, &["b*"]))
                .rules(scan_rule(ScanFrequency::Manual, &["c*"])),
        ),
        (
            "a filter outside the pattern",
            ecr.put_registry_scanning_configuration()
                .scan_type(ScanType::Basic)
                .rules(scan_rule(ScanFrequency::ScanOnPush, &["UPPER"])),
        ),
        (
            "an unknown scan type",
            ecr.put_registry_scanning_configuration()
                .scan_type(ScanType::from("DEEP")),
        ),
    ];
    for (what, req) in refusals {
        let e = req.send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{what}: {e:?}");
        let got = ecr
            .get_registry_scanning_configuration()
            .send()
            .await
            .unwrap();
        assert_eq!(got.scanning_configuration(), Some(stored), "{what}");
    }
    let e = (0..26)
        .fold(ecr.batch_get_repository_scanning_configuration(), |b, i| {
            b.repository_names(format!("scan/r{i}"))
        })
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // Removing every rule hands the repositories back their own flags.
    ecr.put_registry_scanning_configuration()
        .scan_type(ScanType::Basic)
        .send()
        .await
        .unwrap();
    let batch = ecr
        .batch_get_repository_scanning_configuration()
        .repository_names("scan/web")
        .send()
        .await
        .unwrap();
    let c = &batch.scanning_configurations()[0];
    assert_eq!(c.scan_frequency(), Some(&ScanFrequency::Manual));
    assert!(!c.scan_on_push());
}

#[tokio::test]
async fn image_scans_answer_as_ecr_does_when_no_scan_can_run() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "scan/img";
    create_repo(&ecr, repo).await;
    let (_, digest, _) = push_small_image(&ecr, repo, "v1", 1).await;
    let by_tag = ImageIdentifier::builder().image_tag("v1").build();
    let e = ecr
        .start_image_scan()
        .repository_name(repo)
        .image_id(by_tag.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnsupportedImageTypeException");
    let e = ecr
        .describe_image_scan_findings()
        .repository_name(repo)
        .image_id(ImageIdentifier::builder().image_digest(&digest).build())
        .send()
        .await
        .unwrap_err();
    let (c, m) = err(&e);
    assert_eq!(c, "ScanNotFoundException");
    assert!(m.contains(&digest) && m.contains(repo), "{m}");
    for (what, id) in [
        (
            "unknown tag",
            ImageIdentifier::builder().image_tag("v9").build(),
        ),
        (
            "tag and digest of different images",
            ImageIdentifier::builder()
                .image_tag("v1")
                .image_digest(sha256_digest(b"other"))
                .build(),
        ),
    ] {
        let e = ecr
            .start_image_scan()
            .repository_name(repo)
            .image_id(id.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ImageNotFoundException", "{what}");
        let e = ecr
            .describe_image_scan_findings()
            .repository_name(repo)
            .image_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ImageNotFoundException", "{what}");
    }
    let e = ecr
        .start_image_scan()
        .repository_name("scan/none")
        .image_id(by_tag.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
    let e = ecr
        .start_image_scan()
        .repository_name(repo)
        .image_id(ImageIdentifier::builder().build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[tokio::test]
async fn list_image_referrers_lists_what_v2_referrers_lists() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let repo = "ref/app";
    create_repo(&ecr, repo).await;
    let (manifest, subject, _) = push_small_image(&ecr, repo, "v1", 1).await;
    let oci = server.oci().await;
    let empty = oci.push_blob(repo, b"{}").await;
    let artifact = |t: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{t}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}},"annotations":{{"k":"{t}"}}}}"#,
            manifest.len()
        )
    };
    let mut pushed = vec![];
    for t in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ] {
        let a = artifact(t);
        let d = sha256_digest(a.as_bytes());
        let r = oci.put_manifest(repo, &d, OCI_MANIFEST, &a).await;
        assert_eq!(r.status(), 201);
        pushed.push((d, t, a.len()));
    }
    pushed.sort();
    let list = || {
        ecr.list_image_referrers().repository_name(repo).subject_id(
            SubjectIdentifier::builder()
                .image_digest(&subject)
                .build()
                .unwrap(),
        )
    };
    let out = list().send().await.unwrap();
    let got: Vec<_> = out
        .referrers()
        .iter()
        .map(|r| {
            (
                r.digest().to_owned(),
                r.artifact_type().unwrap().to_owned(),
                r.size() as usize,
                r.media_type().to_owned(),
                r.annotations().and_then(|a| a.get("k")).cloned(),
                r.artifact_status().map(|s| s.as_str().to_owned()),
            )
        })
        .collect();
    let want: Vec<_> = pushed
        .iter()
        .map(|(d, t, n)| {
            (
                d.clone(),
                (*t).to_owned(),
                *n,
                OCI_MANIFEST.to_owned(),
                Some((*t).to_owned()),
                Some("ACTIVE".to_owned()),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(out.next_token(), None);

    // Filters: artifact type, and status (no referrer here is archived: all are ACTIVE).
    let only = |f: ListImageReferrersFilter| async move {
        list()
            .filter(f)
            .send()
            .await
            .unwrap()
            .referrers()
            .iter()
            .map(|r| r.digest().to_owned())
            .collect::<Vec<_>>()
    };
    let sbom = pushed
        .iter()
        .find(|p| p.1.ends_with("sbom"))
        .map(|p| p.0.clone())
        .unwrap();
    assert_eq!(
        only(
            ListImageReferrersFilter::builder()
                .artifact_types("application/vnd.example.sbom")
                .build()
        )
        .await,
        [sbom]
    );
    use aws_sdk_ecr::types::ArtifactStatusFilter as S;
    assert!(
        only(
            ListImageReferrersFilter::builder()
                .artifact_status(S::Archived)
                .build()
        )
        .await
        .is_empty()
    );
    assert_eq!(
        only(
            ListImageReferrersFilter::builder()
                .artifact_status(S::Any)
                .build()
        )
        .await
        .len(),
        2
    );

    // Pages of one.
    let first = list().max_results(1).send().await.unwrap();
    assert_eq!(first.referrers().len(), 1);
    assert_eq!(first.referrers()[0].digest(), pushed[0].0);
    let token = first.next_token().expect("a second page").to_owned();
    let second = list()
        .max_results(1)
        .next_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.referrers()[0].digest(), pushed[1].0);
    assert_eq!(second.next_token(), None);

    // A subject nothing refers to has none.
    let none = ecr
        .list_image_referrers()
        .repository_name(repo)
        .subject_id(
            SubjectIdentifier::builder()
                .image_digest(sha256_digest(b"nothing"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(none.referrers().is_empty());

    for (what, req) in [
        ("a token it did not issue", list().next_token("garbage!")),
        ("maxResults past 50", list().max_results(51)),
        (
            "a malformed subject digest",
            ecr.list_image_referrers().repository_name(repo).subject_id(
                SubjectIdentifier::builder()
                    .image_digest("sha256:zz")
                    .build()
                    .unwrap(),
            ),
        ),
    ] {
        let e = req.send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidParameterException", "{what}: {e:?}");
    }
    let e = ecr
        .list_image_referrers()
        .repository_name("ref/none")
        .subject_id(
            SubjectIdentifier::builder()
                .image_digest(&subject)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

const REPO_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:BatchGetImage"]}]}"#;
const LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

fn rtag(k: &str, v: &str) -> aws_sdk_ecr::types::Tag {
    aws_sdk_ecr::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .unwrap()
}

#[tokio::test]
async fn creation_templates_are_created_described_updated_and_deleted() {
    use aws_sdk_ecr::types::RctAppliedFor as A;
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let created = ecr
        .create_repository_creation_template()
        .prefix("prod")
        .description("production")
        .applied_for(A::CreateOnPush)
        .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
        .image_tag_mutability_exclusion_filters(exclusion("latest"))
        .resource_tags(rtag("env", "prod"))
        .repository_policy(REPO_POLICY)
        .lifecycle_policy(LIFECYCLE)
        .send()
        .await
        .unwrap();
    assert_eq!(created.registry_id(), Some("000000000000"));
    let t = created.repository_creation_template().unwrap().clone();
    assert_eq!(t.prefix(), Some("prod"));
    assert_eq!(t.applied_for(), [A::CreateOnPush]);
    assert_eq!(
        t.encryption_configuration()
            .map(|e| e.encryption_type().as_str()),
        Some("AES256")
    );
    assert_eq!(t.repository_policy(), Some(REPO_POLICY));
    assert_eq!(t.lifecycle_policy(), Some(LIFECYCLE));
    assert!(t.created_at().is_some());

    for prefix in ["prod", "prod/"] {
        let e = ecr
            .create_repository_creation_template()
            .prefix(prefix)
            .applied_for(A::Replication)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "TemplateAlreadyExistsException", "{prefix}");
    }
    ecr.create_repository_creation_template()
        .prefix("ROOT")
        .applied_for(A::PullThroughCache)
        .send()
        .await
        .unwrap();
    let all = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = all
        .repository_creation_templates()
        .iter()
        .map(|t| t.prefix().unwrap().to_owned())
        .collect();
    assert_eq!(prefixes, ["ROOT", "prod"]);
    assert_eq!(
        all.repository_creation_templates()[1],
        t,
        "described as created"
    );
    let page = ecr
        .describe_repository_creation_templates()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.repository_creation_templates().len(), 1);
    let rest = ecr
        .describe_repository_creation_templates()
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.repository_creation_templates()[0].prefix(),
        Some("prod")
    );
    let named = ecr
        .describe_repository_creation_templates()
        .prefixes("prod")
        .prefixes("absent")
        .send()
        .await
        .unwrap();
    assert_eq!(named.repository_creation_templates().len(), 1);

    let updated = ecr
        .update_repository_creation_template()
        .prefix("prod")
        .description("changed")
        .applied_for(A::CreateOnPush)
        .applied_for(A::Replication)
        .send()
        .await
        .unwrap();
    let u = updated.repository_creation_template().unwrap();
    assert_eq!(u.description(), Some("changed"));
    assert_eq!(u.applied_for().len(), 2);
    assert_eq!(u.created_at(), t.created_at());
    assert_eq!(u.repository_policy(), Some(REPO_POLICY), "kept");
    assert_eq!(u.image_tag_mutability_exclusion_filters().len(), 1, "kept");

    // Refusals, none of which changes the stored templates.
    let before = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    let create = || {
        ecr.create_repository_creation_template()
            .prefix("team")
            .applied_for(A::CreateOnPush)
    };
    let cases = [
        (
            "filters with MUTABLE",
            create()
                .image_tag_mutability(ImageTagMutability::Mutable)
                .image_tag_mutability_exclusion_filters(exclusion("x")),
            "InvalidParameterException",
        ),
        (
            "a malformed repository policy",
            create().repository_policy("{not json"),
            "InvalidParameterException",
        ),
        (
            "a lifecycle policy without rules",
            create().lifecycle_policy(r#"{"rules":[]}"#),
            "InvalidParameterException",
        ),
        (
            "a reserved tag key",
            create().resource_tags(rtag("aws:owner", "x")),
            "InvalidTagParameterException",
        ),
        (
            "a prefix outside the pattern",
            ecr.create_repository_creation_template()
                .prefix("Upper")
                .applied_for(A::CreateOnPush),
            "InvalidParameterException",
        ),
        (
            "an unknown appliedFor",
            ecr.create_repository_creation_template()
                .prefix("team")
                .applied_for(A::from("ALWAYS")),
            "InvalidParameterException",
        ),
    ];
    for (what, req, want) in cases {
        let e = req.send().await.unwrap_err();
        assert_eq!(code(&e), want, "{what}: {e:?}");
    }
    let e = ecr
        .update_repository_creation_template()
        .prefix("prod")
        .repository_policy("[]")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let after = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.repository_creation_templates(),
        before.repository_creation_templates()
    );
    let e = ecr
        .update_repository_creation_template()
        .prefix("absent")
        .description("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "TemplateNotFoundException");

    let deleted = ecr
        .delete_repository_creation_template()
        .prefix("prod")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted
            .repository_creation_template()
            .and_then(|t| t.description()),
        Some("changed")
    );
    let e = ecr
        .delete_repository_creation_template()
        .prefix("prod")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "TemplateNotFoundException");
}

/// Pushes a small image through `/v2` (blobs, then the manifest under `tag`); answers the
/// manifest PUT's response and the manifest.
async fn v2_push(oci: &Oci, repo: &str, tag: &str, seed: u64) -> (reqwest::Response, String) {
    let config = format!("{{\"seed\":{seed}}}").into_bytes();
    let layer = random_bytes(500, seed);
    let cd = sha256_digest(&config);
    let ld = sha256_digest(&layer);
    let mut ok = true;
    for data in [&config, &layer] {
        let r = oci
            .req(
                reqwest::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256_digest(data)),
            )
            .body(data.clone())
            .send()
            .await
            .unwrap();
        ok &= r.status() == 201;
    }
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let r = oci.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
    assert!(
        ok || r.status() != 201,
        "a manifest stored without its blobs"
    );
    (r, manifest)
}

#[tokio::test]
async fn a_v2_push_creates_the_repository_its_create_on_push_template_describes() {
    use aws_sdk_ecr::types::RctAppliedFor as A;
    // No --create-on-push: only templates create repositories.
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let oci = server.oci().await;
    ecr.create_repository_creation_template()
        .prefix("prod")
        .applied_for(A::CreateOnPush)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .resource_tags(rtag("env", "prod"))
        .repository_policy(REPO_POLICY)
        .lifecycle_policy(LIFECYCLE)
        .send()
        .await
        .unwrap();
    ecr.create_repository_creation_template()
        .prefix("ROOT")
        .applied_for(A::CreateOnPush)
        .resource_tags(rtag("from", "root"))
        .send()
        .await
        .unwrap();
    ecr.create_repository_creation_template()
        .prefix("cache")
        .applied_for(A::PullThroughCache)
        .send()
        .await
        .unwrap();

    let (r, _) = v2_push(&oci, "prod/team/app", "v1", 1).await;
    assert_eq!(r.status(), 201);
    let d = ecr
        .describe_repositories()
        .repository_names("prod/team/app")
        .send()
        .await
        .unwrap();
    let repo = &d.repositories()[0];
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(repo.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags(), [rtag("env", "prod")]);
    let policy = ecr
        .get_repository_policy()
        .repository_name("prod/team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(policy.policy_text(), Some(REPO_POLICY));
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name("prod/team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(lifecycle.lifecycle_policy_text(), Some(LIFECYCLE));
    // The template's immutability holds for the next push.
    let (r, _) = v2_push(&oci, "prod/team/app", "v1", 2).await;
    assert_eq!(oci_code(r).await, "TAG_INVALID");

    // Names no other template covers get ROOT's.
    let (r, _) = v2_push(&oci, "other/app", "v1", 3).await;
    assert_eq!(r.status(), 201);
    let d = ecr
        .describe_repositories()
        .repository_names("other/app")
        .send()
        .await
        .unwrap();
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(d.repositories()[0].repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags(), [rtag("from", "root")]);
    assert_eq!(
        d.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Mutable)
    );

    // A template for another purpose creates nothing on push, and without ROOT nothing does.
    ecr.delete_repository_creation_template()
        .prefix("ROOT")
        .send()
        .await
        .unwrap();
    let (r, _) = v2_push(&oci, "cache/app", "v1", 4).await;
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");
    let e = ecr
        .describe_repositories()
        .repository_names("cache/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

/// Templates and pull-through cache rules are each kept as one stored list; concurrent
/// creates must all land (a compare-and-swap retried on conflict, which also holds across
/// nodes), where a plain read-modify-write loses some of them.
#[tokio::test]
async fn concurrent_creates_of_templates_and_rules_are_all_kept() {
    use aws_sdk_ecr::types::RctAppliedFor as A;
    const N: usize = 16;
    let server = TestServer::start().await;
    let ecr = server.ecr();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let ecr = ecr.clone();
        tasks.spawn(async move {
            ecr.create_repository_creation_template()
                .prefix(format!("team{i}"))
                .applied_for(A::CreateOnPush)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("template {i}: {e:?}"))?;
            ecr.create_pull_through_cache_rule()
                .ecr_repository_prefix(format!("cache{i}"))
                .upstream_registry_url("http://127.0.0.1:9")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("rule {i}: {e:?}"))
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let templates = ecr
        .describe_repository_creation_templates()
        .send()
        .await
        .unwrap();
    assert_eq!(templates.repository_creation_templates().len(), N);
    let rules = ecr
        .describe_pull_through_cache_rules()
        .send()
        .await
        .unwrap();
    assert_eq!(rules.pull_through_cache_rules().len(), N);
}
