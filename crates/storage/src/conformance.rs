//! Behaviour every backend must share, run against each one. New backends add a test that
//! calls these functions.

use bytes::Bytes;
use model::{Digest, ImageTag, RepositoryName, ResumableSha256, Service, UploadId};

use crate::*;

fn names(repos: Vec<RepositoryName>) -> Vec<String> {
    repos.iter().map(|r| r.to_string()).collect()
}

fn stream(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> =
        parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    Box::pin(futures_util::stream::iter(items))
}

async fn read_all(mut r: BlobReader) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(c) = r.body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

pub async fn blob_store(store: &dyn BlobStore) {
    let id = UploadId::new_random();
    let mut seen = Vec::new();
    let (n, saved) = store
        .write_part(id, 0, &[], stream(&[b"hello ", b"wor"]), &mut |b| {
            seen.extend_from_slice(b)
        })
        .await
        .unwrap();
    assert_eq!(n, 9);
    // A part written but never acknowledged is overwritten by the retry at the same offset,
    // which continues from the state saved with the last acknowledged part.
    store
        .write_part(id, 9, &saved, stream(&[b"XXXX"]), &mut |_| {})
        .await
        .unwrap();
    let (_, saved) = store
        .write_part(id, 9, &saved, stream(&[b"ld"]), &mut |b| {
            seen.extend_from_slice(b)
        })
        .await
        .unwrap();
    assert_eq!(seen, b"hello world");
    // Starting past what is staged is refused.
    assert!(
        store
            .write_part(id, 100, &saved, stream(&[b"x"]), &mut |_| {})
            .await
            .is_err()
    );

    let staged = store.read_upload(id, &saved, 11).await.unwrap();
    assert_eq!(
        read_all(BlobReader {
            size: 11,
            body: staged
        })
        .await,
        b"hello world"
    );
    let digest = Digest::sha256_of(b"hello world");
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    store.commit_upload(id, &saved, 11, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(11));
    assert_eq!(
        read_all(store.open(&digest, None).await.unwrap()).await,
        b"hello world"
    );
    let ranged = store
        .open(&digest, Some(BlobRange { first: 6, last: 9 }))
        .await
        .unwrap();
    assert_eq!(ranged.size, 11);
    assert_eq!(read_all(ranged).await, b"worl");
    let listed = store.list_blobs().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(d, s, _)| (d.clone(), *s))
            .collect::<Vec<_>>(),
        vec![(digest.clone(), 11)]
    );
    assert!(
        store.list_uploads().await.unwrap().is_empty(),
        "a committed upload is no longer staged"
    );
    store.delete(&digest).await.unwrap();
    store.delete(&digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    store
        .delete_upload(UploadId::new_random(), &[])
        .await
        .unwrap();
}

/// Deterministic bytes that differ from part to part.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn owned_stream(data: Vec<u8>, chunk: usize) -> ByteStream {
    let bytes = Bytes::from(data);
    let items: Vec<std::io::Result<Bytes>> = (0..bytes.len())
        .step_by(chunk.max(1))
        .map(|at| Ok(bytes.slice(at..bytes.len().min(at + chunk))))
        .collect();
    Box::pin(futures_util::stream::iter(items))
}

const MIB: usize = 1024 * 1024;

/// Uploads of many shapes: chunks far below S3's 5 MiB part minimum, chunks that straddle
/// part boundaries, unacknowledged writes of every size in between, a digest committed twice,
/// an upload discarded. Bytes read back must be exactly the acknowledged ones.
pub async fn blob_store_uploads(store: &dyn BlobStore) {
    // (acknowledged part sizes, each preceded by an unacknowledged write of the given size)
    let shapes: &[&[(usize, usize)]] = &[
        &[(1, 0), (100, 3), (4 * MIB, 0), (2 * MIB, 6 * MIB), (3, 0)],
        &[(9 * MIB, 11 * MIB), (10, 5 * MIB), (5 * MIB + 1, 0), (7, 0)],
        &[(17 * MIB + 5, 2), (2 * MIB, 9 * MIB)],
        &[(0, 0)],
    ];
    for (n, shape) in shapes.iter().enumerate() {
        let id = UploadId::new_random();
        let mut saved = Vec::new();
        let mut expected = Vec::new();
        for (i, &(len, unacked)) in shape.iter().enumerate() {
            let offset = expected.len() as u64;
            if unacked > 0 {
                store
                    .write_part(
                        id,
                        offset,
                        &saved,
                        owned_stream(pattern(unacked, 200 + i as u8), 700_001),
                        &mut |_| {},
                    )
                    .await
                    .unwrap();
            }
            let part = pattern(len, i as u8 + 10 * n as u8);
            let mut seen = Vec::new();
            let (written, state) = store
                .write_part(
                    id,
                    offset,
                    &saved,
                    owned_stream(part.clone(), 1 + i * 333_333),
                    &mut |c| seen.extend_from_slice(c),
                )
                .await
                .unwrap();
            assert_eq!(written as usize, len, "shape {n} part {i}");
            assert!(seen == part, "shape {n} part {i}: observed bytes");
            saved = state;
            expected.extend_from_slice(&part);
        }
        // One more write that is never acknowledged, after the last part.
        store
            .write_part(
                id,
                expected.len() as u64,
                &saved,
                owned_stream(pattern(6 * MIB, 99), MIB),
                &mut |_| {},
            )
            .await
            .unwrap();
        let digest = Digest::sha256_of(&expected);
        store
            .commit_upload(id, &saved, expected.len() as u64, &digest)
            .await
            .unwrap();
        assert_eq!(
            store.stat(&digest).await.unwrap(),
            Some(expected.len() as u64)
        );
        let got = read_all(store.open(&digest, None).await.unwrap()).await;
        assert!(got == expected, "shape {n}: committed bytes");
        if expected.len() > 10 {
            let r = BlobRange {
                first: 3,
                last: expected.len() as u64 - 5,
            };
            let got = read_all(store.open(&digest, Some(r)).await.unwrap()).await;
            assert!(got == expected[3..expected.len() - 4], "shape {n}: range");
        }

        // The same digest pushed again is stored once: the second commit keeps the first copy.
        let again = UploadId::new_random();
        let (_, state) = store
            .write_part(
                again,
                0,
                &[],
                owned_stream(expected.clone(), 3 * MIB),
                &mut |_| {},
            )
            .await
            .unwrap();
        store
            .commit_upload(again, &state, expected.len() as u64, &digest)
            .await
            .unwrap();
        let got = read_all(store.open(&digest, None).await.unwrap()).await;
        assert!(got == expected, "shape {n}: after a second commit");
        assert!(
            store.list_uploads().await.unwrap().is_empty(),
            "shape {n}: nothing staged is left"
        );
        store.delete(&digest).await.unwrap();
    }

    // A discarded upload leaves nothing staged, whether its last write was acknowledged or not.
    let id = UploadId::new_random();
    let (_, saved) = store
        .write_part(
            id,
            0,
            &[],
            owned_stream(pattern(9 * MIB, 1), MIB),
            &mut |_| {},
        )
        .await
        .unwrap();
    store
        .write_part(
            id,
            9 * MIB as u64,
            &saved,
            owned_stream(pattern(MIB, 2), MIB),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(store.list_uploads().await.unwrap().len(), 1);
    store.delete_upload(id, &saved).await.unwrap();
    assert!(store.list_uploads().await.unwrap().is_empty());
    // An orphan (the metadata forgot it) is discarded as well.
    let id = UploadId::new_random();
    store
        .write_part(
            id,
            0,
            &[],
            owned_stream(pattern(6 * MIB, 3), MIB),
            &mut |_| {},
        )
        .await
        .unwrap();
    store.delete_upload(id, &[]).await.unwrap();
    assert!(store.list_uploads().await.unwrap().is_empty());
    assert!(store.list_blobs().await.unwrap().is_empty());
}

fn repo_record(name: &str) -> RepositoryRecord {
    RepositoryRecord {
        id: RepositoryId(0),
        service: Service::Private,
        registry_id: "000000000000".into(),
        name: RepositoryName::parse(name).unwrap(),
        created_at: 1_700_000_000_000,
        image_tag_mutability: "MUTABLE".into(),
        mutability_exclusions: vec![],
        scan_on_push: false,
        encryption_type: "AES256".into(),
        kms_key: None,
        tags: vec![ResourceTag {
            key: "env".into(),
            value: "dev".into(),
        }],
        policy: None,
    }
}

pub async fn meta_store(meta: &dyn MetaStore) {
    let repo = meta
        .create_repository(repo_record("team/app"))
        .await
        .unwrap();
    assert!(matches!(
        meta.create_repository(repo_record("team/app")).await,
        Err(StorageError::Conflict(_))
    ));
    let got = meta
        .get_repository(
            Service::Private,
            "000000000000",
            &RepositoryName::parse("team/app").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, repo);
    meta.set_repository_policy(repo.id, Some("{\"p\":1}"))
        .await
        .unwrap();
    let with_policy = meta
        .get_repository(Service::Private, "000000000000", &repo.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with_policy.policy.as_deref(), Some("{\"p\":1}"));
    meta.set_repository_policy(repo.id, None).await.unwrap();
    assert_eq!(meta.registry_policy("000000000000").await.unwrap(), None);
    // PutImageTagMutability and PutImageScanningConfiguration change only their columns.
    let exclusions = vec![
        MutabilityExclusion {
            filter_type: "WILDCARD".into(),
            filter: "latest".into(),
        },
        MutabilityExclusion {
            filter_type: "WILDCARD".into(),
            filter: "dev-*".into(),
        },
    ];
    meta.set_image_tag_mutability(repo.id, "IMMUTABLE_WITH_EXCLUSION", &exclusions)
        .await
        .unwrap();
    meta.set_scan_on_push(repo.id, true).await.unwrap();
    let changed = meta
        .get_repository(Service::Private, "000000000000", &repo.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.image_tag_mutability, "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(changed.mutability_exclusions, exclusions);
    assert!(changed.scan_on_push);
    assert_eq!(
        (changed.tags, changed.created_at),
        (repo.tags.clone(), repo.created_at)
    );
    meta.set_image_tag_mutability(repo.id, "MUTABLE", &[])
        .await
        .unwrap();
    meta.set_scan_on_push(repo.id, false).await.unwrap();
    let back = meta
        .get_repository(Service::Private, "000000000000", &repo.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, repo);
    assert!(matches!(
        meta.set_scan_on_push(RepositoryId(i64::MAX), true).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        meta.set_image_tag_mutability(RepositoryId(i64::MAX), "MUTABLE", &[])
            .await,
        Err(StorageError::NotFound)
    ));
    meta.set_registry_policy("000000000000", Some("{}"))
        .await
        .unwrap();
    assert_eq!(
        meta.registry_policy("000000000000")
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    meta.set_registry_policy("000000000000", None)
        .await
        .unwrap();
    assert_eq!(meta.registry_policy("000000000000").await.unwrap(), None);
    meta.create_repository(repo_record("team/other"))
        .await
        .unwrap();
    let page = meta
        .list_repositories(Service::Private, "000000000000", Some("team/app"), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].name.as_str(), "team/other");

    // Uploads: a part is recorded only against the state it was computed from.
    let id = UploadId::new_random();
    let mut up = UploadRecord {
        id,
        repository: repo.id,
        created_at: 1,
        updated_at: 1,
        received: 0,
        part_count: 0,
        last_part_size: 0,
        short_part_seen: false,
        hash_state: ResumableSha256::new().save(),
        staging: Vec::new(),
    };
    meta.create_upload(up.clone()).await.unwrap();
    up.received = 5;
    up.part_count = 1;
    up.staging = b"the blob store's parts".to_vec();
    meta.record_part(&up, 0).await.unwrap();
    assert!(matches!(
        meta.record_part(&up, 0).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(meta.get_upload(id).await.unwrap().unwrap(), up);

    let layer = Digest::sha256_of(b"layer");
    assert!(
        !meta
            .complete_upload(id, repo.id, &layer, 5, 2)
            .await
            .unwrap()
    );
    assert!(meta.get_upload(id).await.unwrap().is_none());
    let blob = meta
        .repository_blob(repo.id, &layer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((blob.size, blob.referenced), (5, false));

    // An uploaded blob no image references is not in the repository's usage.
    assert_eq!(
        meta.repository_usage(repo.id).await.unwrap(),
        RepositoryUsage::default()
    );

    // Images and tags.
    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let image = ImageRecord {
        digest: Digest::sha256_of(&manifest),
        manifest,
        media_type: model::MediaType::OCI_MANIFEST.into(),
        artifact_media_type: None,
        subject: None,
        size: 5,
        pushed_at: 3,
        state: Default::default(),
    };
    let refs = ImageReferences {
        blobs: vec![(
            layer.clone(),
            "application/vnd.oci.image.layer.v1.tar".into(),
        )],
        children: vec![],
        blobs_may_follow: false,
    };
    let v1 = ImageTag::parse("v1").unwrap();
    let out = meta
        .put_image(
            repo.id,
            &image,
            &refs,
            Some(TagWrite::IfUnchanged(&v1, None)),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        PutImageOutcome {
            image_created: true,
            tag_changed: true
        }
    );
    assert_eq!(
        meta.repository_usage(repo.id).await.unwrap(),
        RepositoryUsage {
            images: 1,
            bytes: 5
        }
    );
    assert!(matches!(
        meta.put_image(
            repo.id,
            &image,
            &refs,
            Some(TagWrite::IfUnchanged(&v1, None))
        )
        .await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        meta.resolve_tag(repo.id, &v1).await.unwrap(),
        Some(image.digest.clone())
    );
    let by_tag = meta.image_by_tag(repo.id, &v1).await.unwrap().unwrap();
    assert_eq!(
        (by_tag.digest, by_tag.manifest),
        (image.digest.clone(), image.manifest.clone())
    );
    // An image whose blob is not linked yet: refused, unless the blobs may follow (a
    // pull-through cache stores the upstream manifest first and each layer on its first pull).
    let later = Digest::sha256_of(b"fetched later");
    let cached_manifest = br#"{"schemaVersion":2,"cached":true}"#.to_vec();
    let cached = ImageRecord {
        digest: Digest::sha256_of(&cached_manifest),
        manifest: cached_manifest,
        ..image.clone()
    };
    let lazy = |blobs_may_follow| ImageReferences {
        blobs: vec![(
            later.clone(),
            "application/vnd.oci.image.layer.v1.tar".into(),
        )],
        children: vec![],
        blobs_may_follow,
    };
    assert!(matches!(
        meta.put_image(repo.id, &cached, &lazy(false), None).await,
        Err(StorageError::Conflict(_))
    ));
    assert!(
        meta.get_image(repo.id, &cached.digest)
            .await
            .unwrap()
            .is_none()
    );
    meta.put_image(repo.id, &cached, &lazy(true), None)
        .await
        .unwrap();
    assert!(
        meta.get_image(repo.id, &cached.digest)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        meta.repository_blob(repo.id, &later)
            .await
            .unwrap()
            .is_none()
    );
    meta.delete_image(repo.id, &cached.digest).await.unwrap();

    let missing = ImageTag::parse("missing").unwrap();
    assert!(
        meta.image_by_tag(repo.id, &missing)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        meta.repository_blob(repo.id, &layer)
            .await
            .unwrap()
            .unwrap()
            .referenced
    );
    let ids = meta
        .list_image_ids(repo.id, TagStatus::Any, None, 10)
        .await
        .unwrap();
    assert_eq!(ids, vec![(image.digest.clone(), Some(v1.clone()))]);
    let described = meta
        .list_images(repo.id, TagStatus::Tagged, None, 10)
        .await
        .unwrap();
    assert_eq!(described[0].tags, vec![v1.clone()]);
    assert_eq!(
        meta.list_tags(repo.id, None, 10).await.unwrap(),
        vec![v1.clone()]
    );
    assert!(
        meta.list_tags(repo.id, Some("v1"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let referrer_manifest = br#"{"schemaVersion":2,"subject":{}}"#.to_vec();
    let referrer = ImageRecord {
        digest: Digest::sha256_of(&referrer_manifest),
        manifest: referrer_manifest,
        subject: Some(image.digest.clone()),
        ..image.clone()
    };
    meta.put_image(repo.id, &referrer, &ImageReferences::default(), None)
        .await
        .unwrap();
    assert_eq!(
        meta.list_referrers(repo.id, &image.digest).await.unwrap(),
        vec![referrer.clone()]
    );
    assert!(meta.delete_image(repo.id, &referrer.digest).await.unwrap());
    // Mounting links a blob some repository holds; an unknown blob is not found.
    let other = meta
        .get_repository(
            Service::Private,
            "000000000000",
            &RepositoryName::parse("team/other").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let holding =
        |limit| meta.repositories_holding(Service::Private, "000000000000", &layer, limit);
    assert_eq!(names(holding(10).await.unwrap()), ["team/app"]);
    meta.link_blob(other.id, &layer, 4).await.unwrap();
    assert_eq!(
        names(holding(10).await.unwrap()),
        ["team/app", "team/other"]
    );
    assert_eq!(names(holding(1).await.unwrap()), ["team/app"]);
    assert!(
        meta.repositories_holding(Service::Private, "111111111111", &layer, 10)
            .await
            .unwrap()
            .is_empty(),
        "another registry holds nothing of this one's"
    );
    assert_eq!(
        meta.repository_blob(other.id, &layer)
            .await
            .unwrap()
            .unwrap()
            .size,
        5
    );
    assert!(matches!(
        meta.link_blob(other.id, &Digest::sha256_of(b"none"), 4)
            .await,
        Err(StorageError::NotFound)
    ));
    // The web UI's page of figures reads what one repository's reading does, in one query;
    // a repository that is gone is left out.
    let mut page = meta
        .repositories_storage(&[other.id, repo.id, RepositoryId(i64::MAX)])
        .await
        .unwrap();
    page.sort_by_key(|(id, _)| id.0);
    let mut one_by_one = vec![
        (repo.id, meta.repository_storage(repo.id).await.unwrap()),
        (other.id, meta.repository_storage(other.id).await.unwrap()),
    ];
    one_by_one.sort_by_key(|(id, _)| id.0);
    assert_eq!(page, one_by_one);
    assert!(one_by_one.iter().all(|(_, u)| u.bytes > 0));
    assert!(meta.repositories_storage(&[]).await.unwrap().is_empty());
    assert!(meta.delete_tag(repo.id, &v1).await.unwrap());
    let untagged = meta
        .list_image_ids(repo.id, TagStatus::Untagged, None, 10)
        .await
        .unwrap();
    assert_eq!(untagged, vec![(image.digest.clone(), None)]);

    assert!(matches!(
        meta.delete_repository(repo.id, true).await,
        Err(StorageError::Conflict(_))
    ));
    assert!(meta.delete_image(repo.id, &image.digest).await.unwrap());
    assert_eq!(
        meta.repository_usage(repo.id).await.unwrap(),
        RepositoryUsage::default()
    );
    assert!(
        !meta
            .repository_blob(repo.id, &layer)
            .await
            .unwrap()
            .unwrap()
            .referenced
    );
    meta.delete_repository(repo.id, true).await.unwrap();
    assert!(matches!(
        meta.delete_repository(repo.id, false).await,
        Err(StorageError::NotFound)
    ));
}

fn listed_image(n: u32) -> ImageRecord {
    let manifest = format!(r#"{{"schemaVersion":2,"n":{n}}}"#).into_bytes();
    ImageRecord {
        digest: Digest::sha256_of(&manifest),
        manifest,
        media_type: model::MediaType::OCI_MANIFEST.into(),
        artifact_media_type: n.is_multiple_of(2).then(|| "application/x.test".into()),
        subject: None,
        size: u64::from(n) * 10,
        pushed_at: i64::from(n),
        state: Default::default(),
    }
}

/// Every page of a listing, each asked for from the key of the last entry of the one before.
async fn all_pages<T, K, F, Fut>(limit: u32, key: K, page: F) -> Vec<T>
where
    T: Clone,
    K: Fn(&T) -> (String, String),
    F: Fn(Option<(String, String)>, u32) -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let mut out: Vec<T> = Vec::new();
    loop {
        let items = page(out.last().map(&key), limit).await;
        assert!(items.len() <= limit as usize);
        let done = items.len() < limit as usize;
        out.extend(items);
        if done {
            return out;
        }
    }
}

/// Checks ListImages' and DescribeImages' listings of `repo` against `model` (digest to its
/// tags), with each tag status and page size.
async fn check_image_listings(
    meta: &dyn MetaStore,
    repo: RepositoryId,
    model: &std::collections::BTreeMap<Digest, Vec<ImageTag>>,
) {
    let images: std::collections::BTreeMap<Digest, ImageRecord> = (0..20)
        .map(listed_image)
        .map(|i| (i.digest.clone(), i))
        .collect();
    for status in [TagStatus::Any, TagStatus::Tagged, TagStatus::Untagged] {
        let keep = |tags: &Vec<ImageTag>| match status {
            TagStatus::Any => true,
            TagStatus::Tagged => !tags.is_empty(),
            TagStatus::Untagged => tags.is_empty(),
        };
        let ids: Vec<(Digest, Option<ImageTag>)> = model
            .iter()
            .filter(|(_, tags)| keep(tags))
            .flat_map(|(d, tags)| {
                let mut tags = tags.clone();
                tags.sort();
                if tags.is_empty() {
                    vec![(d.clone(), None)]
                } else {
                    tags.into_iter().map(|t| (d.clone(), Some(t))).collect()
                }
            })
            .collect();
        let summaries: Vec<ImageSummary> = model
            .iter()
            .filter(|(_, tags)| keep(tags))
            .map(|(d, tags)| {
                let mut tags = tags.clone();
                tags.sort();
                ImageSummary::new(images[d].clone(), tags)
            })
            .collect();
        for limit in [1, 2, 3, 7, 100] {
            let got = all_pages(
                limit,
                |(d, t): &(Digest, Option<ImageTag>)| {
                    (
                        d.to_string(),
                        t.as_ref().map_or(String::new(), ToString::to_string),
                    )
                },
                |after, limit| async move {
                    let after = after.as_ref().map(|(d, t)| (d.as_str(), t.as_str()));
                    meta.list_image_ids(repo, status, after, limit)
                        .await
                        .unwrap()
                },
            )
            .await;
            assert_eq!(got, ids, "ListImages {status:?}, pages of {limit}");
            let got = all_pages(
                limit,
                |s: &ImageSummary| (s.digest.to_string(), String::new()),
                |after, limit| async move {
                    meta.list_images(repo, status, after.as_ref().map(|a| a.0.as_str()), limit)
                        .await
                        .unwrap()
                },
            )
            .await;
            assert_eq!(
                got, summaries,
                "DescribeImages {status:?}, pages of {limit}"
            );
        }
    }
}

/// Listings page by the key of their last entry, whatever the tag status filter, and follow
/// tags as they move and go.
pub async fn meta_listings(meta: &dyn MetaStore) {
    let mut names = Vec::new();
    for i in 0..5 {
        let mut rec = repo_record(&format!("paging/r{i}"));
        rec.tags.push(ResourceTag {
            key: "a-first-by-key".into(),
            value: i.to_string(),
        });
        let rec = meta.create_repository(rec).await.unwrap();
        if i == 3 {
            meta.set_repository_policy(rec.id, Some("{\"Version\":\"2012-10-17\"}"))
                .await
                .unwrap();
        }
        names.push(rec.name.clone());
    }
    let mut expected = Vec::new();
    for n in &names {
        expected.push(
            meta.get_repository(Service::Private, "000000000000", n)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    for limit in [1, 2, 5, 6] {
        let got = all_pages(
            limit,
            |r: &RepositoryRecord| (r.name.to_string(), String::new()),
            |after, limit| async move {
                meta.list_repositories(
                    Service::Private,
                    "000000000000",
                    after.as_ref().map(|a| a.0.as_str()),
                    limit,
                )
                .await
                .unwrap()
            },
        )
        .await;
        let got: Vec<_> = got
            .into_iter()
            .filter(|r| r.name.as_str().starts_with("paging/"))
            .collect();
        assert_eq!(got, expected, "repositories in pages of {limit}");
    }
    // Resource tags keep the order they were given in, not key order.
    assert_eq!(expected[0].tags[0].key, "env");
    assert!(
        meta.list_repositories(Service::Private, "999999999999", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let repo = meta
        .create_repository(repo_record("paging/images"))
        .await
        .unwrap()
        .id;
    let tag = |s: &str| ImageTag::parse(s).unwrap();
    let mut model = std::collections::BTreeMap::new();
    check_image_listings(meta, repo, &model).await;
    // Images 0-3 untagged, 4-9 with one tag, 10-13 with three; tag names unrelated to digests.
    for n in 0..14u32 {
        let image = listed_image(n);
        let tags: Vec<ImageTag> = match n {
            0..4 => vec![],
            4..10 => vec![tag(&format!("z{n}"))],
            _ => vec![
                tag(&format!("b{n}")),
                tag(&format!("a{n}")),
                tag(&format!("c{n}")),
            ],
        };
        if tags.is_empty() {
            meta.put_image(repo, &image, &ImageReferences::default(), None)
                .await
                .unwrap();
        }
        for t in &tags {
            meta.put_image(
                repo,
                &image,
                &ImageReferences::default(),
                Some(TagWrite::Move(t)),
            )
            .await
            .unwrap();
        }
        model.insert(image.digest, tags);
    }
    check_image_listings(meta, repo, &model).await;
    let tags = all_pages(
        3,
        |t: &ImageTag| (t.to_string(), String::new()),
        |after, limit| async move {
            meta.list_tags(repo, after.as_ref().map(|a| a.0.as_str()), limit)
                .await
                .unwrap()
        },
    )
    .await;
    let mut all_tags: Vec<ImageTag> = model.values().flatten().cloned().collect();
    all_tags.sort();
    assert_eq!(tags, all_tags);

    let d = |n: u32| listed_image(n).digest;
    // Moving an image's only tag leaves it untagged; the tag's new image is tagged.
    let z4 = tag("z4");
    meta.put_image(
        repo,
        &listed_image(0),
        &ImageReferences::default(),
        Some(TagWrite::Move(&z4)),
    )
    .await
    .unwrap();
    model.get_mut(&d(4)).unwrap().clear();
    model.get_mut(&d(0)).unwrap().push(z4.clone());
    // So does a move that checks the tag's previous image.
    let z5 = tag("z5");
    meta.put_image(
        repo,
        &listed_image(1),
        &ImageReferences::default(),
        Some(TagWrite::IfUnchanged(&z5, Some(&d(5)))),
    )
    .await
    .unwrap();
    model.get_mut(&d(5)).unwrap().clear();
    model.get_mut(&d(1)).unwrap().push(z5);
    // Deleting one tag of three keeps the image tagged; deleting the only tag does not.
    assert!(meta.delete_tag(repo, &tag("a10")).await.unwrap());
    model
        .get_mut(&d(10))
        .unwrap()
        .retain(|t| t.as_str() != "a10");
    assert!(meta.delete_tag(repo, &tag("z6")).await.unwrap());
    model.get_mut(&d(6)).unwrap().clear();
    // A deleted image leaves every listing.
    assert!(meta.delete_image(repo, &d(11)).await.unwrap());
    model.remove(&d(11));
    check_image_listings(meta, repo, &model).await;
    // A page may start after a key that is gone.
    let after = d(11).to_string();
    let rest: Vec<Digest> = meta
        .list_images(repo, TagStatus::Any, Some(&after), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.digest)
        .collect();
    let want: Vec<Digest> = model
        .keys()
        .filter(|k| k.as_str() > after.as_str())
        .cloned()
        .collect();
    assert_eq!(rest, want);
    let rest = meta
        .list_image_ids(repo, TagStatus::Any, Some((&after, "zzz")), 100)
        .await
        .unwrap();
    assert_eq!(rest.first().map(|e| &e.0), want.first());
    // Listing another repository sees none of these.
    let other = meta
        .create_repository(repo_record("paging/empty"))
        .await
        .unwrap()
        .id;
    check_image_listings(meta, other, &Default::default()).await;
    meta.delete_repository(repo, false).await.unwrap();
    meta.delete_repository(other, false).await.unwrap();
}

/// Upload claims and job leases: what nodes sharing the metadata coordinate through.
pub async fn coordination(meta: &dyn MetaStore) {
    let repo = meta
        .create_repository(repo_record("coord/app"))
        .await
        .unwrap()
        .id;
    let id = UploadId::new_random();
    meta.create_upload(new_upload(id, repo)).await.unwrap();
    meta.claim_upload(id, "a", 1_000, 2_000).await.unwrap();
    assert!(matches!(
        meta.claim_upload(id, "b", 1_500, 2_500).await,
        Err(StorageError::Conflict(_))
    ));
    // The holder renews; another takes it once it has expired.
    meta.claim_upload(id, "a", 1_900, 3_000).await.unwrap();
    assert!(meta.claim_upload(id, "b", 2_999, 4_000).await.is_err());
    meta.claim_upload(id, "b", 3_000, 4_000).await.unwrap();
    // A release by a holder that lost its claim changes nothing.
    meta.release_upload(id, "a").await.unwrap();
    assert!(meta.claim_upload(id, "c", 3_500, 4_500).await.is_err());
    meta.release_upload(id, "b").await.unwrap();
    meta.claim_upload(id, "c", 3_500, 4_500).await.unwrap();
    // A claim does not change the upload, and recording the part ends it.
    let mut got = meta.get_upload(id).await.unwrap().unwrap();
    assert_eq!(got, new_upload(id, repo));
    got.received = 5;
    meta.record_part(&got, 0).await.unwrap();
    meta.claim_upload(id, "d", 3_600, 4_600).await.unwrap();
    assert!(matches!(
        meta.claim_upload(UploadId::new_random(), "a", 0, 1).await,
        Err(StorageError::NotFound)
    ));

    assert!(meta.take_lease("gc", "node-1", 1_000, 2_000).await.unwrap());
    assert!(!meta.take_lease("gc", "node-2", 1_500, 2_500).await.unwrap());
    assert!(
        meta.take_lease("gc", "node-1", 1_900, 3_000).await.unwrap(),
        "renewed"
    );
    assert!(
        meta.take_lease("expiry", "node-2", 1_900, 3_000)
            .await
            .unwrap()
    );
    // A killed holder's lease expires.
    assert!(meta.take_lease("gc", "node-2", 3_000, 4_000).await.unwrap());
    meta.release_lease("gc", "node-1").await.unwrap();
    assert!(!meta.take_lease("gc", "node-3", 3_500, 4_500).await.unwrap());
    meta.release_lease("gc", "node-2").await.unwrap();
    assert!(meta.take_lease("gc", "node-3", 3_500, 4_500).await.unwrap());
    meta.delete_repository(repo, false).await.unwrap();
}

fn new_upload(id: UploadId, repo: RepositoryId) -> UploadRecord {
    UploadRecord {
        id,
        repository: repo,
        created_at: 1,
        updated_at: 1,
        received: 0,
        part_count: 0,
        last_part_size: 0,
        short_part_seen: false,
        hash_state: ResumableSha256::new().save(),
        staging: b"s".to_vec(),
    }
}

/// Writers racing on one store's connections end as if one ran after the other: one part of
/// an upload, one claim, one creation of an immutable tag, and never more tags on an image
/// than the limit. On PostgreSQL these run on separate connections at once, so each rule must
/// hold through row locks or conditional writes.
pub async fn races(meta: std::sync::Arc<dyn MetaStore>) {
    const RACERS: usize = 8;
    let repo = meta
        .create_repository(repo_record("race/app"))
        .await
        .unwrap()
        .id;
    let id = UploadId::new_random();
    meta.create_upload(new_upload(id, repo)).await.unwrap();
    let won = |results: Vec<Result<(), StorageError>>| {
        for r in &results {
            assert!(
                matches!(r, Ok(()) | Err(StorageError::Conflict(_))),
                "{r:?}"
            );
        }
        results.iter().filter(|r| r.is_ok()).count()
    };
    let parts = futures_util::future::join_all((0..RACERS).map(|n| {
        let meta = meta.clone();
        async move {
            let mut u = new_upload(id, repo);
            u.received = 10 + n as u64;
            u.part_count = 1;
            meta.record_part(&u, 0).await
        }
    }));
    assert_eq!(won(parts.await), 1, "one part of an upload is recorded");
    let claims = futures_util::future::join_all((0..RACERS).map(|n| {
        let meta = meta.clone();
        async move { meta.claim_upload(id, &format!("node-{n}"), 0, 60_000).await }
    }));
    assert_eq!(won(claims.await), 1, "one node claims an upload");

    let images: Vec<ImageRecord> = (0..RACERS as u32).map(listed_image).collect();
    for image in &images {
        meta.put_image(repo, image, &ImageReferences::default(), None)
            .await
            .unwrap();
    }
    let tag = ImageTag::parse("v1").unwrap();
    let creates = futures_util::future::join_all(images.iter().map(|image| {
        let meta = meta.clone();
        let tag = &tag;
        async move {
            let write = TagWrite::IfUnchanged(tag, None);
            let refs = ImageReferences::default();
            meta.put_image(repo, image, &refs, Some(write))
                .await
                .map(drop)
        }
    }));
    assert_eq!(won(creates.await), 1, "one push creates an immutable tag");

    const LIMIT: usize = 3;
    let image = &images[0];
    for round in 0..3 {
        let tags: Vec<ImageTag> = (0..RACERS)
            .map(|n| ImageTag::parse(&format!("r{round}-{n}")).unwrap())
            .collect();
        let puts = futures_util::future::join_all(tags.iter().map(|t| {
            let meta = meta.clone();
            async move {
                let refs = ImageReferences::default();
                meta.put_image_limited(repo, image, &refs, Some(TagWrite::Move(t)), LIMIT)
                    .await
                    .map(drop)
            }
        }));
        won(puts.await);
        let count = meta.image_tags(repo, &image.digest).await.unwrap().len();
        assert!(count <= LIMIT, "{count} tags, more than the limit {LIMIT}");
    }

    // Racing TagResource calls count one after the other: of eight adding 3 new keys each to
    // a repository holding 1 tag, with room for 10, exactly three succeed.
    let tagging = futures_util::future::join_all((0..RACERS).map(|n| {
        let meta = meta.clone();
        async move {
            let tags: Vec<ResourceTag> = (0..3)
                .map(|i| resource_tag(&format!("t{n}-{i}"), "v"))
                .collect();
            meta.tag_repository(repo, &tags, 10).await.map(drop)
        }
    }));
    assert_eq!(won(tagging.await), 3, "resource tags within their limit");
    let record = meta
        .get_repository(
            Service::Private,
            "000000000000",
            &RepositoryName::parse("race/app").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.tags.len(), 10);
    meta.delete_repository(repo, false).await.unwrap();
}

fn resource_tag(key: &str, value: &str) -> ResourceTag {
    ResourceTag {
        key: key.into(),
        value: value.into(),
    }
}

/// An account's public registry is a namespace of its own; resource tags change in place
/// within their limit; settings of repositories and registries.
pub async fn public_registries_and_settings(meta: &dyn MetaStore) {
    let account = "222222222222";
    let name = RepositoryName::parse("shared/name").unwrap();
    let private = meta
        .create_repository(RepositoryRecord {
            registry_id: account.into(),
            ..repo_record("shared/name")
        })
        .await
        .unwrap();
    let public = meta
        .create_repository_with_settings(
            RepositoryRecord {
                service: Service::Public,
                registry_id: account.into(),
                ..repo_record("shared/name")
            },
            &[
                ("catalog", b"{\"description\":\"d\"}"),
                ("logo", &[0, 1, 2]),
            ],
        )
        .await
        .expect("the same name in the public registry is another repository");
    assert_ne!(private.id, public.id);
    let got = meta
        .get_repository(Service::Public, account, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, public);
    assert_eq!(
        (got.service, got.registry_id.as_str()),
        (Service::Public, account),
        "the record carries the account id, not the storage key"
    );
    let listed = meta
        .list_repositories(Service::Public, account, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![public.clone()]);
    let listed = meta
        .list_repositories(Service::Private, account, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![private.clone()]);
    assert!(matches!(
        meta.create_repository(RepositoryRecord {
            service: Service::Public,
            registry_id: account.into(),
            ..repo_record("shared/name")
        })
        .await,
        Err(StorageError::Conflict(_))
    ));

    // Settings were stored with the repository, and change together.
    assert_eq!(
        meta.repository_setting(public.id, "logo").await.unwrap(),
        Some(vec![0, 1, 2])
    );
    assert_eq!(
        meta.repository_setting(private.id, "logo").await.unwrap(),
        None
    );
    meta.put_repository_settings(
        public.id,
        &[("catalog", Some(b"{}".as_slice())), ("logo", None)],
    )
    .await
    .unwrap();
    assert_eq!(
        meta.repository_setting(public.id, "catalog").await.unwrap(),
        Some(b"{}".to_vec())
    );
    assert_eq!(
        meta.repository_setting(public.id, "logo").await.unwrap(),
        None
    );
    // The repositories holding a setting, each with its service and account id (not the key).
    meta.put_repository_settings(private.id, &[("catalog", Some(b"[]".as_slice()))])
        .await
        .unwrap();
    assert_eq!(
        meta.repositories_with_setting("catalog").await.unwrap(),
        vec![
            (Service::Private, account.to_owned(), name.clone()),
            (Service::Public, account.to_owned(), name.clone()),
        ]
    );
    assert_eq!(
        meta.repositories_with_setting("logo").await.unwrap(),
        vec![]
    );
    meta.put_repository_settings(private.id, &[("catalog", None)])
        .await
        .unwrap();
    assert!(matches!(
        meta.put_repository_settings(RepositoryId(i64::MAX), &[("x", Some(b"1".as_slice()))])
            .await,
        Err(StorageError::NotFound)
    ));
    for service in [Service::Private, Service::Public] {
        assert_eq!(
            meta.registry_setting(service, account, "displayName")
                .await
                .unwrap(),
            None
        );
    }
    meta.put_registry_settings(
        Service::Public,
        account,
        &[("displayName", Some(b"Example".as_slice()))],
    )
    .await
    .unwrap();
    assert_eq!(
        meta.registry_setting(Service::Public, account, "displayName")
            .await
            .unwrap(),
        Some(b"Example".to_vec())
    );
    assert_eq!(
        meta.registry_setting(Service::Private, account, "displayName")
            .await
            .unwrap(),
        None,
        "the private registry's settings are its own"
    );
    meta.put_registry_settings(Service::Public, account, &[("displayName", None)])
        .await
        .unwrap();
    assert_eq!(
        meta.registry_setting(Service::Public, account, "displayName")
            .await
            .unwrap(),
        None
    );

    // Compare-and-swap: a write based on a stale read changes nothing and says so.
    let swap = |expected: Option<&'static [u8]>, new: Option<&'static [u8]>| {
        meta.swap_registry_setting(Service::Private, account, "list", expected, new)
    };
    assert!(swap(None, Some(b"a")).await.unwrap(), "absent, as read");
    assert!(
        !swap(None, Some(b"b")).await.unwrap(),
        "another node wrote first"
    );
    assert!(!swap(Some(b"x"), Some(b"b")).await.unwrap(), "stale read");
    assert!(swap(Some(b"a"), Some(b"ab")).await.unwrap());
    assert!(!swap(None, None).await.unwrap(), "it exists");
    assert!(!swap(Some(b"a"), None).await.unwrap(), "stale delete");
    assert_eq!(
        meta.registry_setting(Service::Private, account, "list")
            .await
            .unwrap(),
        Some(b"ab".to_vec())
    );
    assert!(swap(Some(b"ab"), None).await.unwrap());
    assert!(swap(None, None).await.unwrap(), "absent");

    // Tags: replaced in place, new ones after, all or nothing past the limit.
    let tags = meta
        .tag_repository(
            public.id,
            &[resource_tag("b", "1"), resource_tag("env", "prod")],
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        tags,
        vec![resource_tag("env", "prod"), resource_tag("b", "1")]
    );
    assert!(matches!(
        meta.tag_repository(
            public.id,
            &[resource_tag("c", "1"), resource_tag("d", "1")],
            3
        )
        .await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        meta.get_repository(Service::Public, account, &name)
            .await
            .unwrap()
            .unwrap()
            .tags,
        vec![resource_tag("env", "prod"), resource_tag("b", "1")],
        "a refused TagResource changes nothing"
    );
    meta.untag_repository(public.id, &["env".into(), "absent".into()])
        .await
        .unwrap();
    let tags = meta
        .tag_repository(
            public.id,
            &[resource_tag("c", "2"), resource_tag("b", "3")],
            3,
        )
        .await
        .unwrap();
    assert_eq!(tags, vec![resource_tag("b", "3"), resource_tag("c", "2")]);
    assert_eq!(
        meta.get_repository(Service::Private, account, &name)
            .await
            .unwrap()
            .unwrap()
            .tags,
        vec![resource_tag("env", "dev")],
        "the private repository of the same name keeps its own tags"
    );
    assert!(matches!(
        meta.tag_repository(RepositoryId(i64::MAX), &[resource_tag("a", "1")], 3)
            .await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        meta.untag_repository(RepositoryId(i64::MAX), &["a".into()])
            .await,
        Err(StorageError::NotFound)
    ));

    // Settings go with their repository.
    meta.delete_repository(public.id, false).await.unwrap();
    assert_eq!(
        meta.repository_setting(public.id, "catalog").await.unwrap(),
        None
    );
    assert!(
        meta.get_repository(Service::Private, account, &name)
            .await
            .unwrap()
            .is_some()
    );
    meta.delete_repository(private.id, false).await.unwrap();
}

/// Replication rows: written with a push that changed something, one per destination; due
/// ones are listed oldest first; a retry keeps a row IN_PROGRESS until its time; an ended row
/// supersedes the ended rows of the same image and destination before it.
pub async fn replication_outbox(meta: &dyn MetaStore) {
    let repo = meta
        .create_repository(repo_record("replicated/app"))
        .await
        .unwrap();
    let image = |n: u8| ImageRecord {
        digest: Digest::sha256_of(&[n, 7]),
        manifest: vec![n, 7],
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_media_type: None,
        subject: None,
        size: 1,
        pushed_at: 2_000,
        state: Default::default(),
    };
    let dest = |r: &str| ReplicationDestination {
        region: r.into(),
        registry_id: "111111111111".into(),
    };
    let work = ReplicationWork {
        registry_id: "000000000000".into(),
        repository: repo.name.clone(),
        destinations: vec![dest("eu-west-1"), dest("us-east-1")],
    };
    let a = image(1);
    let t1 = ImageTag::parse("t1").unwrap();
    let put = |img: ImageRecord, tag: Option<ImageTag>| {
        let work = work.clone();
        async move {
            meta.put_image_noting(
                repo.id,
                &img,
                &ImageReferences::default(),
                tag.as_ref().map(TagWrite::Move),
                usize::MAX,
                None,
                Some(&work),
            )
            .await
            .unwrap()
        }
    };
    put(a.clone(), Some(t1.clone())).await;
    // The same push again changes nothing, and writes no work.
    put(a.clone(), Some(t1.clone())).await;
    let due = meta.due_replications(i64::MAX, 100).await.unwrap();
    let mine: Vec<_> = due.iter().filter(|t| t.repository_id == repo.id).collect();
    assert_eq!(mine.len(), 2, "{due:?}");
    assert_eq!(mine[0].destination, dest("eu-west-1"));
    assert_eq!(mine[0].tag.as_ref(), Some(&t1));
    assert_eq!(mine[0].digest, a.digest);
    assert_eq!(mine[0].repository, repo.name);
    assert_eq!(mine[0].registry_id, "000000000000");
    assert!(meta.due_replications(1_999, 100).await.unwrap().is_empty());
    let (first, second) = (mine[0].id, mine[1].id);
    let statuses = meta.replication_statuses(repo.id, &a.digest).await.unwrap();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|s| s.status == "IN_PROGRESS"));
    // A retry waits for its time and counts the attempt.
    meta.retry_replication(first, 9_000, Some("X"), 3_000)
        .await
        .unwrap();
    let due: Vec<_> = meta.due_replications(8_999, 100).await.unwrap();
    assert!(due.iter().all(|t| t.id != first));
    let due: Vec<_> = meta.due_replications(9_000, 100).await.unwrap();
    assert_eq!(due.iter().find(|t| t.id == first).unwrap().attempts, 1);
    meta.finish_replication(first, "COMPLETE", None, 9_500, None)
        .await
        .unwrap();
    meta.finish_replication(second, "FAILED", Some("ACCESS_DENIED"), 9_500, None)
        .await
        .unwrap();
    // An ended row is not ended again.
    meta.finish_replication(first, "FAILED", Some("LATE"), 9_600, None)
        .await
        .unwrap();
    let statuses = meta.replication_statuses(repo.id, &a.digest).await.unwrap();
    assert_eq!(
        statuses
            .iter()
            .map(|s| (
                s.destination.region.as_str(),
                s.status.as_str(),
                s.failure_code.as_deref()
            ))
            .collect::<Vec<_>>(),
        [
            ("eu-west-1", "COMPLETE", None),
            ("us-east-1", "FAILED", Some("ACCESS_DENIED"))
        ]
    );
    // A new tag on the image: new work, the latest row answers; ending it prunes the old one.
    put(a.clone(), Some(ImageTag::parse("t2").unwrap())).await;
    let statuses = meta.replication_statuses(repo.id, &a.digest).await.unwrap();
    assert!(statuses.iter().all(|s| s.status == "IN_PROGRESS"));
    for t in meta.due_replications(i64::MAX, 100).await.unwrap() {
        if t.repository_id == repo.id {
            meta.finish_replication(t.id, "COMPLETE", None, 10_000, None)
                .await
                .unwrap();
        }
    }
    let statuses = meta.replication_statuses(repo.id, &a.digest).await.unwrap();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|s| s.status == "COMPLETE"));
    assert!(
        meta.replication_statuses(repo.id, &image(9).digest)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Image states: storage class changes, pull times, and what reads see of them.
pub async fn image_states(meta: &dyn MetaStore) {
    let repo = meta
        .create_repository(repo_record("states/app"))
        .await
        .unwrap();
    let id = UploadId::new_random();
    meta.create_upload(new_upload(id, repo.id)).await.unwrap();
    let layer = Digest::sha256_of(b"state layer");
    meta.complete_upload(id, repo.id, &layer, 3, 1)
        .await
        .unwrap();
    let image = |n: u8| ImageRecord {
        digest: Digest::sha256_of(&[n, n]),
        manifest: vec![n, n],
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_media_type: None,
        subject: None,
        size: 3,
        pushed_at: 1_000,
        state: Default::default(),
    };
    let refs = ImageReferences {
        blobs: vec![(
            layer.clone(),
            "application/vnd.oci.image.layer.v1.tar".into(),
        )],
        ..Default::default()
    };
    let (a, b) = (image(1), image(2));
    let v1 = ImageTag::parse("v1").unwrap();
    meta.put_image(repo.id, &a, &refs, Some(TagWrite::Move(&v1)))
        .await
        .unwrap();
    meta.put_image(repo.id, &b, &refs, None).await.unwrap();
    let state = |d: &Digest| {
        let d = d.clone();
        async move { meta.get_image(repo.id, &d).await.unwrap().unwrap().state }
    };
    assert_eq!(state(&a.digest).await, ImageState::default());
    let blob = meta
        .repository_blob(repo.id, &layer)
        .await
        .unwrap()
        .unwrap();
    assert!(blob.referenced && !blob.archived_only);

    // Archive a: only once; its tag lookup sees it too.
    assert!(
        meta.set_storage_class(repo.id, std::slice::from_ref(&a.digest), true, 50)
            .await
            .unwrap()
    );
    assert!(
        !meta
            .set_storage_class(repo.id, std::slice::from_ref(&a.digest), true, 60)
            .await
            .unwrap()
    );
    let archived = ImageState {
        archived: true,
        last_archived_at: Some(50),
        ..Default::default()
    };
    assert_eq!(state(&a.digest).await, archived);
    assert_eq!(
        meta.image_by_tag(repo.id, &v1)
            .await
            .unwrap()
            .unwrap()
            .state,
        archived
    );
    assert_eq!(archived.status(100), ImageStatus::Archived);
    // b still uses the layer.
    assert!(
        !meta
            .repository_blob(repo.id, &layer)
            .await
            .unwrap()
            .unwrap()
            .archived_only
    );
    assert!(
        meta.set_storage_class(repo.id, std::slice::from_ref(&b.digest), true, 55)
            .await
            .unwrap()
    );
    assert!(
        meta.repository_blob(repo.id, &layer)
            .await
            .unwrap()
            .unwrap()
            .archived_only
    );
    // Restore a: the archive time stays, the restore completes at 90.
    assert!(
        meta.set_storage_class(repo.id, std::slice::from_ref(&a.digest), false, 90)
            .await
            .unwrap()
    );
    let restoring = state(&a.digest).await;
    assert_eq!(
        restoring,
        ImageState {
            archived: false,
            last_archived_at: Some(50),
            last_activated_at: Some(90),
            last_pulled_at: None,
        }
    );
    assert_eq!(restoring.status(89), ImageStatus::Activating);
    assert_eq!(restoring.status(90), ImageStatus::Active);
    // A missing image moves nothing.
    let gone = Digest::sha256_of(b"no such image");
    assert!(
        !meta
            .set_storage_class(repo.id, std::slice::from_ref(&gone), true, 1)
            .await
            .unwrap()
    );

    // Pull times: the later wins, in either order; a deleted image is skipped.
    meta.record_pull_times(&[
        (repo.id, a.digest.clone(), 200),
        (repo.id, b.digest.clone(), 300),
        (repo.id, gone.clone(), 300),
    ])
    .await
    .unwrap();
    meta.record_pull_times(&[(repo.id, a.digest.clone(), 150)])
        .await
        .unwrap();
    assert_eq!(state(&a.digest).await.last_pulled_at, Some(200));
    assert_eq!(state(&b.digest).await.last_pulled_at, Some(300));
    assert!(
        state(&b.digest).await.archived,
        "a pull leaves the class alone"
    );
    // A page's states, in digest order, by range.
    let mut digests = [a.digest.clone(), b.digest.clone()];
    digests.sort();
    let page = meta
        .image_states_between(repo.id, digests[0].as_str(), digests[1].as_str())
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        digests.to_vec()
    );
    let only_first = meta
        .image_states_between(repo.id, digests[0].as_str(), digests[0].as_str())
        .await
        .unwrap();
    assert_eq!(only_first.len(), 1);

    // A deleted image's state goes with it: pushed again, it starts afresh.
    assert!(meta.delete_image(repo.id, &b.digest).await.unwrap());
    meta.put_image(repo.id, &b, &refs, None).await.unwrap();
    assert_eq!(state(&b.digest).await, ImageState::default());
}

/// The event outbox: rows only for changes that were made, one per tag, in the transaction of
/// the change; then taken, retried and given up.
pub async fn event_outbox(meta: &dyn MetaStore) {
    let repo = meta
        .create_repository(repo_record("events/app"))
        .await
        .unwrap();
    let image = |n: u8| ImageRecord {
        digest: Digest::sha256_of(&[n]),
        manifest: vec![n],
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_media_type: Some("application/vnd.oci.image.config.v1+json".into()),
        subject: None,
        size: 1,
        pushed_at: 1_000,
        state: Default::default(),
    };
    let event = |action: &str, img: &ImageRecord| ImageEvent {
        detail_type: "ECR Image Action".into(),
        action_type: action.into(),
        service: Service::Private,
        registry_id: "000000000000".into(),
        repository: repo.name.clone(),
        region: None,
        digest: Some(img.digest.clone()),
        manifest_media_type: Some(img.media_type.clone()),
        artifact_media_type: img.artifact_media_type.clone(),
        detail: None,
        at: 5_000,
    };
    let rows = || async {
        meta.due_events(i64::MAX, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.event.action_type, r.tag, r.event.digest))
            .collect::<Vec<_>>()
    };
    let (a, b) = (image(1), image(2));
    let (t1, t2) = (
        ImageTag::parse("t1").unwrap(),
        ImageTag::parse("t2").unwrap(),
    );
    async fn put_noting(
        meta: &dyn MetaStore,
        repo: RepositoryId,
        img: &ImageRecord,
        write: Option<TagWrite<'_>>,
        e: &ImageEvent,
    ) -> Result<PutImageOutcome, StorageError> {
        meta.put_image_noting(
            repo,
            img,
            &ImageReferences::default(),
            write,
            usize::MAX,
            Some(e),
            None,
        )
        .await
    }
    // Pushed by digest, then tagged twice: three rows. The same tag again changes nothing.
    put_noting(meta, repo.id, &a, None, &event("PUSH", &a))
        .await
        .unwrap();
    put_noting(
        meta,
        repo.id,
        &a,
        Some(TagWrite::Move(&t1)),
        &event("PUSH", &a),
    )
    .await
    .unwrap();
    put_noting(
        meta,
        repo.id,
        &a,
        Some(TagWrite::Move(&t2)),
        &event("PUSH", &a),
    )
    .await
    .unwrap();
    put_noting(
        meta,
        repo.id,
        &a,
        Some(TagWrite::Move(&t2)),
        &event("PUSH", &a),
    )
    .await
    .unwrap();
    // Refused (the tag moved since the caller looked): no row.
    assert!(matches!(
        put_noting(
            meta,
            repo.id,
            &b,
            Some(TagWrite::IfUnchanged(&t1, None)),
            &event("PUSH", &b)
        )
        .await,
        Err(StorageError::Conflict(_))
    ));
    let p = |tag: Option<&str>, d: &ImageRecord| {
        (
            "PUSH".to_owned(),
            tag.map(str::to_owned),
            Some(d.digest.clone()),
        )
    };
    let del = |tag: Option<&str>, d: &ImageRecord| {
        (
            "DELETE".to_owned(),
            tag.map(str::to_owned),
            Some(d.digest.clone()),
        )
    };
    assert_eq!(
        rows().await,
        [p(None, &a), p(Some("t1"), &a), p(Some("t2"), &a)]
    );
    // A tag's delete names the image it pointed at; an image's, each of its tags.
    assert!(
        meta.delete_tag_noting(repo.id, &t1, Some(&event("DELETE", &b)))
            .await
            .unwrap()
    );
    assert!(
        !meta
            .delete_tag_noting(repo.id, &t1, Some(&event("DELETE", &a)))
            .await
            .unwrap()
    );
    put_noting(
        meta,
        repo.id,
        &a,
        Some(TagWrite::Move(&t1)),
        &event("PUSH", &a),
    )
    .await
    .unwrap();
    assert!(
        meta.delete_image_noting(repo.id, &a.digest, Some(&event("DELETE", &a)))
            .await
            .unwrap()
    );
    assert!(
        !meta
            .delete_image_noting(repo.id, &a.digest, Some(&event("DELETE", &a)))
            .await
            .unwrap()
    );
    put_noting(meta, repo.id, &b, None, &event("PUSH", &b))
        .await
        .unwrap();
    assert!(
        meta.delete_image_noting(repo.id, &b.digest, Some(&event("DELETE", &b)))
            .await
            .unwrap()
    );
    let all = meta.due_events(i64::MAX, 100).await.unwrap();
    assert_eq!(
        rows().await,
        [
            p(None, &a),
            p(Some("t1"), &a),
            p(Some("t2"), &a),
            del(Some("t1"), &a),
            p(Some("t1"), &a),
            del(Some("t1"), &a),
            del(Some("t2"), &a),
            p(None, &b),
            del(None, &b),
        ]
    );
    assert_eq!(all[0].event, event("PUSH", &a));
    assert_eq!(
        meta.event_backlog().await.unwrap(),
        EventBacklog {
            pending: 9,
            given_up: 0
        }
    );
    // Not due before their time; retried later with what was delivered; given up; taken.
    assert!(meta.due_events(4_999, 100).await.unwrap().is_empty());
    assert_eq!(meta.due_events(5_000, 2).await.unwrap().len(), 2);
    let hooks = ["https://a".to_owned(), "https://b".to_owned()];
    meta.retry_event(all[0].id, &hooks[..1], 9_000, false)
        .await
        .unwrap();
    meta.retry_event(all[1].id, &hooks, 9_000, true)
        .await
        .unwrap();
    for e in &all[2..] {
        meta.delete_event(e.id).await.unwrap();
    }
    assert!(meta.due_events(8_999, 100).await.unwrap().is_empty());
    let again = meta.due_events(9_000, 100).await.unwrap();
    assert_eq!(again.len(), 1, "the given-up row is no longer due");
    assert_eq!(
        (again[0].attempts, again[0].delivered_to.clone()),
        (1, hooks[..1].to_vec())
    );
    assert_eq!(
        meta.event_backlog().await.unwrap(),
        EventBacklog {
            pending: 1,
            given_up: 1
        }
    );
    // Events outlive their repository.
    meta.delete_repository(repo.id, false).await.unwrap();
    assert_eq!(meta.due_events(9_000, 100).await.unwrap().len(), 1);
}

/// Region views (`meta::region`): the registries of one account in two regions are two
/// registries, the home region's under the bare account id as before regions existed, and
/// the home region is recorded once.
pub async fn region_views(meta: std::sync::Arc<dyn MetaStore>) {
    use crate::region::{RegionView, event_region, home_region, repository_region};
    assert_eq!(home_region(&*meta, "eu-west-1").await.unwrap(), "eu-west-1");
    // Recorded once: a later open as another region keeps it.
    assert_eq!(home_region(&*meta, "us-east-1").await.unwrap(), "eu-west-1");
    let view = |region: &str| RegionView::new(meta.clone(), region.into(), "eu-west-1".into());
    let (home, other) = (view("eu-west-1"), view("us-east-1"));
    let account = "000000000000";
    let name = RepositoryName::parse("regions/app").unwrap();

    let in_home = home
        .create_repository(repo_record("regions/app"))
        .await
        .unwrap();
    let in_other = other
        .create_repository(repo_record("regions/app"))
        .await
        .unwrap();
    assert_ne!(in_home.id, in_other.id, "two repositories");
    assert_eq!(
        in_other.registry_id, account,
        "records name the account only"
    );
    assert_eq!(
        home.get_repository(Service::Private, account, &name)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(in_home.id)
    );
    // The home region's key is the account id itself; another region's is <account>:<region>.
    let raw = |key: &str| {
        let (meta, key, name) = (meta.clone(), key.to_owned(), name.clone());
        async move {
            meta.get_repository(Service::Private, &key, &name)
                .await
                .unwrap()
                .map(|r| r.id)
        }
    };
    assert_eq!(raw(account).await, Some(in_home.id));
    assert_eq!(raw("000000000000:us-east-1").await, Some(in_other.id));
    let listed = other
        .list_repositories(Service::Private, account, None, 100)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [in_other.id]
    );
    // A third region sees neither.
    let third = view("ap-south-1");
    assert!(
        third
            .get_repository(Service::Private, account, &name)
            .await
            .unwrap()
            .is_none()
    );

    // Registry policies and settings are per region.
    other
        .set_registry_policy(account, Some("{}"))
        .await
        .unwrap();
    assert_eq!(home.registry_policy(account).await.unwrap(), None);
    assert_eq!(
        other.registry_policy(account).await.unwrap().as_deref(),
        Some("{}")
    );
    assert!(
        other
            .swap_registry_setting(Service::Private, account, "regions/s", None, Some(b"x"))
            .await
            .unwrap()
    );
    assert_eq!(
        home.registry_setting(Service::Private, account, "regions/s")
            .await
            .unwrap(),
        None
    );

    // A background job's list: each view its own region's; the store-wide list names regions.
    for id in [in_home.id, in_other.id] {
        meta.put_repository_settings(id, &[("regions/flag", Some(b"1"))])
            .await
            .unwrap();
    }
    let of = |rows: Vec<(Service, String, RepositoryName)>| {
        rows.into_iter()
            .filter(|(_, _, n)| n == &name)
            .map(|(_, key, _)| key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(home
            .repositories_with_setting("regions/flag")
            .await
            .unwrap()),
        [account]
    );
    assert_eq!(
        of(other
            .repositories_with_setting("regions/flag")
            .await
            .unwrap()),
        [account]
    );
    let mut all = of(meta
        .repositories_with_setting("regions/flag")
        .await
        .unwrap());
    all.sort();
    assert_eq!(all, [account, "000000000000:us-east-1"]);
    assert_eq!(
        repository_region(Service::Private, "000000000000:us-east-1"),
        (Some("us-east-1"), account)
    );
    assert_eq!(
        repository_region(Service::Private, account),
        (None, account)
    );

    // Events written through a view name their region in the outbox.
    let image = ImageRecord {
        digest: Digest::sha256_of(b"regions"),
        manifest: b"regions".to_vec(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_media_type: None,
        subject: None,
        size: 7,
        pushed_at: 1_000,
        state: Default::default(),
    };
    let event = ImageEvent {
        detail_type: "ECR Image Action".into(),
        action_type: "PUSH".into(),
        service: Service::Private,
        registry_id: account.into(),
        repository: name.clone(),
        region: None,
        digest: Some(image.digest.clone()),
        manifest_media_type: Some(image.media_type.clone()),
        artifact_media_type: None,
        detail: None,
        at: 1_000,
    };
    other
        .put_image_noting(
            in_other.id,
            &image,
            &ImageReferences::default(),
            None,
            usize::MAX,
            Some(&event),
            None,
        )
        .await
        .unwrap();
    let due = meta.due_events(i64::MAX, 1000).await.unwrap();
    let ours: Vec<_> = due
        .iter()
        .filter(|r| r.event.repository == name)
        .map(|r| event_region(&r.event))
        .collect();
    assert_eq!(ours, [(account, Some("us-east-1"))]);
    for r in due.iter().filter(|r| r.event.repository == name) {
        meta.delete_event(r.id).await.unwrap();
    }

    // A replication reports in its destination's region, whichever region's view ends the
    // row, and only once; an event that reports no change (a failed pull-through sync) is
    // written on its own, with no digest and its extra detail.
    let replica = ImageRecord {
        digest: Digest::sha256_of(b"replicated"),
        ..image.clone()
    };
    let work = ReplicationWork {
        registry_id: account.into(),
        repository: name.clone(),
        destinations: vec![ReplicationDestination {
            region: "ap-south-1".into(),
            registry_id: "111111111111".into(),
        }],
    };
    home.put_image_noting(
        in_home.id,
        &replica,
        &ImageReferences::default(),
        None,
        usize::MAX,
        None,
        Some(&work),
    )
    .await
    .unwrap();
    let task = meta
        .due_replications(i64::MAX, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.repository_id == in_home.id)
        .unwrap();
    let replicated = ImageEvent {
        detail_type: "ECR Replication Action".into(),
        action_type: "REPLICATE".into(),
        service: Service::Private,
        registry_id: "111111111111".into(),
        region: Some("ap-south-1".into()),
        repository: name.clone(),
        digest: Some(replica.digest.clone()),
        manifest_media_type: None,
        artifact_media_type: None,
        detail: Some(r#"{"result":"SUCCESS"}"#.into()),
        at: 2_000,
    };
    home.finish_replication(
        task.id,
        "COMPLETE",
        None,
        2_000,
        Some((&replicated, Some("v1"))),
    )
    .await
    .unwrap();
    home.finish_replication(
        task.id,
        "FAILED",
        Some("X"),
        2_001,
        Some((&replicated, None)),
    )
    .await
    .unwrap();
    let failed = ImageEvent {
        detail_type: "ECR Pull Through Cache Action".into(),
        action_type: String::new(),
        region: None,
        digest: None,
        detail: Some(r#"{"sync-status":"FAILED"}"#.into()),
        ..replicated.clone()
    };
    other.record_event(&failed, Some("latest")).await.unwrap();
    let due = meta.due_events(i64::MAX, 1000).await.unwrap();
    let ours: Vec<_> = due
        .iter()
        .filter(|r| r.event.repository == name)
        .map(|r| {
            (
                event_region(&r.event),
                r.tag.as_deref(),
                r.event.digest.clone(),
                r.event.detail.as_deref(),
                r.event.action_type.as_str(),
                r.event.region.clone(),
            )
        })
        .collect();
    assert_eq!(
        ours,
        [
            (
                ("111111111111", Some("ap-south-1")),
                Some("v1"),
                Some(replica.digest.clone()),
                Some(r#"{"result":"SUCCESS"}"#),
                "REPLICATE",
                None
            ),
            (
                ("111111111111", Some("us-east-1")),
                Some("latest"),
                None,
                Some(r#"{"sync-status":"FAILED"}"#),
                "",
                None
            ),
        ]
    );
    for r in due.iter().filter(|r| r.event.repository == name) {
        meta.delete_event(r.id).await.unwrap();
    }
}

#[tokio::test]
async fn embedded_backends_conform() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open_embedded(dir.path()).await.unwrap();
    blob_store(storage.blobs.as_ref()).await;
    blob_store_uploads(storage.blobs.as_ref()).await;
    meta_store(storage.meta.as_ref()).await;
    meta_listings(storage.meta.as_ref()).await;
    coordination(storage.meta.as_ref()).await;
    public_registries_and_settings(storage.meta.as_ref()).await;
    event_outbox(storage.meta.as_ref()).await;
    replication_outbox(storage.meta.as_ref()).await;
    image_states(storage.meta.as_ref()).await;
    region_views(storage.meta.clone()).await;
    races(storage.meta.clone()).await;
}

/// PostgreSQL: a fresh schema of the database `BERTH_TEST_POSTGRES_URL` names, dropped at the
/// end, so that tests run side by side. Skipped (with a message) without that variable, except
/// under CI, where a skip would hide that PostgreSQL was never tested.
#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    pub(crate) struct Schema {
        pub options: PgConnectOptions,
        admin: PgConnectOptions,
        pub name: String,
    }

    pub(crate) async fn schema() -> Option<Schema> {
        let Ok(url) = std::env::var("BERTH_TEST_POSTGRES_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but BERTH_TEST_POSTGRES_URL is not set: PostgreSQL was not tested");
            }
            eprintln!("skipped: BERTH_TEST_POSTGRES_URL not set");
            return None;
        };
        let admin: PgConnectOptions = url.parse().expect("BERTH_TEST_POSTGRES_URL");
        let name = format!(
            "berth_test_{}",
            model::UploadId::new_random().to_string().replace('-', "")
        );
        let mut conn = admin
            .connect()
            .await
            .expect("connect to BERTH_TEST_POSTGRES_URL");
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let options = admin.clone().options([("search_path", name.as_str())]);
        Some(Schema {
            options,
            admin,
            name,
        })
    }

    impl Schema {
        pub(crate) async fn drop(self) {
            let mut conn = self.admin.connect().await.unwrap();
            sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.name))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_conforms() {
    let Some(schema) = postgres::schema().await else {
        return;
    };
    let meta = meta::postgres::PostgresMetaStore::open_with(schema.options.clone())
        .await
        .unwrap();
    meta_store(&meta).await;
    meta_listings(&meta).await;
    coordination(&meta).await;
    public_registries_and_settings(&meta).await;
    event_outbox(&meta).await;
    replication_outbox(&meta).await;
    image_states(&meta).await;
    let meta: std::sync::Arc<dyn MetaStore> = std::sync::Arc::new(meta);
    region_views(meta.clone()).await;
    races(meta).await;
    schema.drop().await;
}

/// Several nodes starting at once on an empty database apply the migrations once.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_nodes_migrate_together() {
    let Some(schema) = postgres::schema().await else {
        return;
    };
    let opens = futures_util::future::join_all(
        (0..4).map(|_| meta::postgres::PostgresMetaStore::open_with(schema.options.clone())),
    );
    for store in opens.await {
        store.unwrap();
    }
    schema.drop().await;
}

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use super::*;
    use crate::blob::object_store::{S3BlobStore, S3Location};

    #[tokio::test]
    async fn object_store_in_memory_conforms() {
        let mem = Arc::new(::object_store::memory::InMemory::new());
        let store = S3BlobStore::new(mem.clone(), mem, None, "some/prefix");
        blob_store(&store).await;
        blob_store_uploads(&store).await;
    }

    /// Against a real S3 server when `BERTH_TEST_S3_ENDPOINT` and `BERTH_TEST_S3_BUCKET` are
    /// set (credentials and region from the AWS environment, as the server reads them). CI
    /// must have one.
    #[tokio::test]
    async fn s3_conforms() {
        let (Ok(endpoint), Ok(bucket)) = (
            std::env::var("BERTH_TEST_S3_ENDPOINT"),
            std::env::var("BERTH_TEST_S3_BUCKET"),
        ) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run the S3 conformance suite: BERTH_TEST_S3_ENDPOINT/BUCKET are not set"
            );
            eprintln!("skipped: BERTH_TEST_S3_ENDPOINT/BUCKET are not set (no S3 server to test)");
            return;
        };
        // Each run in its own prefix, so runs and parallel tests never meet.
        let location = S3Location {
            bucket,
            prefix: format!("conformance-{}", UploadId::new_random()),
        };
        let store = S3BlobStore::open_s3(&location, Some(&endpoint))
            .await
            .unwrap();
        blob_store(&store).await;
        blob_store_uploads(&store).await;
        let digest = Digest::sha256_of(b"signed");
        let id = UploadId::new_random();
        let (_, saved) = store
            .write_part(id, 0, &[], stream(&[b"signed"]), &mut |_| {})
            .await
            .unwrap();
        store.commit_upload(id, &saved, 6, &digest).await.unwrap();
        let url = store
            .download_url(&digest, std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .expect("S3 presigns");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        store.delete(&digest).await.unwrap();
    }
}
