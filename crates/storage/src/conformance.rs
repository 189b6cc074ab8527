//! Behaviour every backend must share, run against each one. New backends add a test that
//! calls these functions.

use bytes::Bytes;
use model::{Digest, ImageTag, RepositoryName, ResumableSha256, UploadId};

use crate::*;

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
    let n = store
        .write_part(id, 0, stream(&[b"hello ", b"wor"]), &mut |b| {
            seen.extend_from_slice(b)
        })
        .await
        .unwrap();
    assert_eq!(n, 9);
    // A part written but never acknowledged is overwritten by the retry at the same offset.
    store
        .write_part(id, 9, stream(&[b"XXXX"]), &mut |_| {})
        .await
        .unwrap();
    store
        .write_part(id, 9, stream(&[b"ld"]), &mut |b| seen.extend_from_slice(b))
        .await
        .unwrap();
    assert_eq!(seen, b"hello world");
    // Starting past what is staged is refused.
    assert!(
        store
            .write_part(id, 100, stream(&[b"x"]), &mut |_| {})
            .await
            .is_err()
    );

    let staged = store.read_upload(id, 11).await.unwrap();
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
    store.commit_upload(id, 11, &digest).await.unwrap();
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
    store.delete_upload(UploadId::new_random()).await.unwrap();
}

fn repo_record(name: &str) -> RepositoryRecord {
    RepositoryRecord {
        id: RepositoryId(0),
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
        .get_repository("000000000000", &RepositoryName::parse("team/app").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, repo);
    meta.set_repository_policy(repo.id, Some("{\"p\":1}"))
        .await
        .unwrap();
    let with_policy = meta
        .get_repository("000000000000", &repo.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with_policy.policy.as_deref(), Some("{\"p\":1}"));
    meta.set_repository_policy(repo.id, None).await.unwrap();
    assert_eq!(meta.registry_policy("000000000000").await.unwrap(), None);
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
        .list_repositories("000000000000", Some("team/app"), 10)
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
    };
    meta.create_upload(up.clone()).await.unwrap();
    up.received = 5;
    up.part_count = 1;
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
    };
    let refs = ImageReferences {
        blobs: vec![(
            layer.clone(),
            "application/vnd.oci.image.layer.v1.tar".into(),
        )],
        children: vec![],
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
            "000000000000",
            &RepositoryName::parse("team/other").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    meta.link_blob(other.id, &layer, 4).await.unwrap();
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

#[tokio::test]
async fn embedded_backends_conform() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open_embedded(dir.path()).await.unwrap();
    blob_store(storage.blobs.as_ref()).await;
    meta_store(storage.meta.as_ref()).await;
}
