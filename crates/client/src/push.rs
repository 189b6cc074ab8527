//! `berth push`: BatchCheckLayerAvailability, then the missing blobs uploaded in parallel
//! (InitiateLayerUpload, UploadLayerPart in 20 MiB parts read from disk one at a time,
//! CompleteLayerUpload), then PutImage for each manifest, children before their index.

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::complete_layer_upload::CompleteLayerUploadError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::LayerAvailability;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use crate::image::{BlobSource, LocalImage, is_index};
use crate::progress::{Progress, short};
use crate::reference::{ImageRef, Reference};
use crate::resume::{Store, UploadState};
use crate::{PushArgs, archive, layout};

/// The part size the issue asks for, and the model's maximum for `layerPartBlob`.
pub const PART_SIZE: u64 = 20 * 1024 * 1024;
/// ECR's minimum for every part but the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Failed attempts in a row (connection dropped, 5xx, throttling) before a layer gives up.
const MAX_ATTEMPTS: u32 = 6;
/// The most digests BatchCheckLayerAvailability takes at once.
const CHECK_BATCH: usize = 100;

/// Where a push goes, shared by every layer's task.
struct Target {
    ecr: aws_sdk_ecr::Client,
    registry_id: Option<String>,
    repository: String,
    /// Names the registry in the resume state, so that two registries never share an upload.
    registry_key: String,
}

/// What SOURCE names: `oci:DIR[:REF]`, `docker-archive:FILE[:TAG]`, or a bare path (a
/// directory is a layout, a file a tarball).
pub fn read_source(source: &str) -> anyhow::Result<LocalImage> {
    let (kind, rest) = match source.split_once(':') {
        Some(("oci", rest)) => (Some("oci"), rest),
        Some(("docker-archive", rest)) => (Some("docker-archive"), rest),
        _ => (None, source),
    };
    // `PATH:REF`, unless the whole of it is a path that exists.
    let (path, reference) = match rest.rsplit_once(':') {
        Some((p, r)) if kind.is_some() && !std::path::Path::new(rest).exists() => (p, Some(r)),
        _ => (rest, None),
    };
    let path = std::path::Path::new(path);
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    match kind {
        Some("oci") => layout::read(&layout::Dir(path.to_owned()), reference),
        Some(_) => archive::read(path, reference),
        None if meta.is_dir() => layout::read(&layout::Dir(path.to_owned()), reference),
        None => archive::read(path, reference),
    }
}

pub async fn run(ecr: &aws_sdk_ecr::Client, args: &PushArgs, to: &ImageRef) -> anyhow::Result<()> {
    let tag = match &to.reference {
        Reference::Tag(t) => t.clone(),
        Reference::Digest(_) => anyhow::bail!("push to REPOSITORY[:TAG], not to a digest"),
    };
    let source = args.source.clone();
    let image = tokio::task::spawn_blocking(move || read_source(&source))
        .await?
        .with_context(|| format!("read {}", args.source))?;
    let target = Arc::new(Target {
        ecr: ecr.clone(),
        registry_id: args
            .connection
            .registry_id
            .clone()
            .or(to.registry_id.clone()),
        repository: to.repository.clone(),
        registry_key: format!(
            "{}|{}",
            args.connection.endpoint_url.clone().unwrap_or_else(|| ecr
                .config()
                .region()
                .map_or(String::new(), ToString::to_string)),
            args.connection
                .registry_id
                .clone()
                .or(to.registry_id.clone())
                .unwrap_or_default()
        ),
    });

    let missing = missing_blobs(&target, &image.blobs).await?;
    let total: u64 = missing.iter().map(|b| b.size).sum();
    let skipped = image.blobs.len() - missing.len();
    let progress = Arc::new(Progress::new(args.connection.quiet, total, "push"));
    if skipped > 0 {
        progress.note(&format!(
            "{skipped} of {} blobs already in {}",
            image.blobs.len(),
            to.repository
        ));
    }
    let store = Arc::new(Store::open()?);

    let jobs = args.jobs.max(1);
    let mut queue = missing.into_iter();
    let mut running = FuturesUnordered::new();
    let mut sent = 0u64;
    loop {
        while running.len() < jobs {
            let Some(blob) = queue.next() else { break };
            let (t, s, p) = (target.clone(), store.clone(), progress.clone());
            running.push(tokio::spawn(
                async move { upload_blob(&t, &s, &p, &blob).await },
            ));
        }
        match running.next().await {
            Some(done) => sent += done??,
            None => break,
        }
    }

    for m in &image.manifests {
        let is_top = std::ptr::eq(m, image.manifests.last().expect("at least one manifest"));
        put_image(&target, m, is_top.then_some(tag.as_str())).await?;
    }
    let top = image.manifests.last().expect("at least one manifest");
    let kind = if is_index(&top.media_type) {
        format!("index of {} images", image.manifests.len() - 1)
    } else {
        "image".to_owned()
    };
    progress.finish(
        &format!(
            "pushed {kind} {}:{tag}@{} ({} blobs sent, {skipped} already there)",
            to.repository,
            top.digest,
            image.blobs.len() - skipped
        ),
        sent,
    );
    println!("{}", top.digest);
    Ok(())
}

/// The blobs the repository does not have yet.
async fn missing_blobs(t: &Target, blobs: &[BlobSource]) -> anyhow::Result<Vec<BlobSource>> {
    let mut missing = Vec::new();
    for chunk in blobs.chunks(CHECK_BATCH) {
        let out = t
            .ecr
            .batch_check_layer_availability()
            .set_registry_id(t.registry_id.clone())
            .repository_name(&t.repository)
            .set_layer_digests(Some(chunk.iter().map(|b| b.digest.clone()).collect()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("BatchCheckLayerAvailability: {}", describe(&e)))?;
        for b in chunk {
            let available = out.layers().iter().any(|l| {
                l.layer_digest() == Some(b.digest.as_str())
                    && l.layer_availability() == Some(&LayerAvailability::Available)
            });
            if !available {
                missing.push(b.clone());
            }
        }
    }
    Ok(missing)
}

/// Uploads one blob, resuming an upload a previous run left; returns the bytes sent.
async fn upload_blob(
    t: &Target,
    store: &Store,
    progress: &Progress,
    blob: &BlobSource,
) -> anyhow::Result<u64> {
    let bar = progress.blob(&blob.digest, blob.size);
    let key = (&t.registry_key, &t.repository, &blob.digest);
    let (mut upload_id, mut next, mut part_size) = match store.load(key.0, key.1, key.2) {
        Some(s) => {
            progress.note(&format!(
                "{}: resuming upload {} (last run stopped near byte {})",
                short(&blob.digest),
                s.upload_id,
                s.next_byte
            ));
            (s.upload_id, s.next_byte, PART_SIZE)
        }
        None => {
            let (id, size) = initiate(t).await?;
            (id, 0, size)
        }
    };
    bar.set_position(next);
    let save = |upload_id: &str, next: u64| {
        store.save(&UploadState {
            registry: key.0.clone(),
            repository: key.1.clone(),
            digest: key.2.clone(),
            upload_id: upload_id.to_owned(),
            next_byte: next,
        })
    };
    save(&upload_id, next)?;
    let mut sent = 0u64;
    let mut failures = 0u32;
    while next < blob.size {
        let len = part_size.min(blob.size - next);
        let part = read_part(blob, next, len).await?;
        let last = next + len - 1;
        let res = t
            .ecr
            .upload_layer_part()
            .set_registry_id(t.registry_id.clone())
            .repository_name(&t.repository)
            .upload_id(&upload_id)
            .part_first_byte(i64::try_from(next)?)
            .part_last_byte(i64::try_from(last)?)
            .layer_part_blob(Blob::new(part))
            .send()
            .await;
        match res {
            Ok(out) => {
                let received = out
                    .last_byte_received()
                    .and_then(|b| u64::try_from(b).ok())
                    .unwrap_or(last);
                next = received + 1;
                sent += len;
                failures = 0;
                save(&upload_id, next)?;
                bar.set_position(next);
                progress.overall.inc(len);
            }
            Err(e) => match e.as_service_error() {
                Some(UploadLayerPartError::InvalidLayerPartException(x)) => {
                    // The registry says where it stands: go on from there.
                    let resume = x
                        .last_valid_byte_received()
                        .and_then(|b| u64::try_from(b).ok())
                        .map_or(0, |b| b + 1);
                    if resume == next {
                        // Refused for another reason than its offset: a part too large for
                        // this registry is retried at the size it advertised.
                        anyhow::ensure!(
                            part_size > MIN_PART_SIZE && failures == 0,
                            "UploadLayerPart {}: {}",
                            blob.digest,
                            describe(&e)
                        );
                        part_size = (part_size / 2).max(MIN_PART_SIZE);
                        failures += 1;
                        continue;
                    }
                    progress.note(&format!(
                        "{}: the registry has {resume} bytes; going on from there",
                        short(&blob.digest)
                    ));
                    if resume > next {
                        progress.overall.inc(resume - next);
                    }
                    next = resume;
                    save(&upload_id, next)?;
                    bar.set_position(next);
                }
                Some(UploadLayerPartError::UploadNotFoundException(_)) => {
                    // Expired or never known here: start this layer over.
                    progress.note(&format!(
                        "{}: upload {upload_id} is gone; starting the layer over",
                        short(&blob.digest)
                    ));
                    (upload_id, part_size) = initiate(t).await?;
                    next = 0;
                    save(&upload_id, next)?;
                    bar.set_position(0);
                }
                _ if transient(&e) && failures + 1 < MAX_ATTEMPTS => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(250 << failures)).await;
                }
                _ => anyhow::bail!("UploadLayerPart {}: {}", blob.digest, describe(&e)),
            },
        }
    }
    let done = t
        .ecr
        .complete_layer_upload()
        .set_registry_id(t.registry_id.clone())
        .repository_name(&t.repository)
        .upload_id(&upload_id)
        .layer_digests(&blob.digest)
        .send()
        .await;
    match done {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CompleteLayerUploadError::LayerAlreadyExistsException(_))
            ) => {}
        Err(e) => {
            // A failed layer is not resumable under the same upload.
            store.remove(key.0, key.1, key.2);
            anyhow::bail!("CompleteLayerUpload {}: {}", blob.digest, describe(&e));
        }
    }
    store.remove(key.0, key.1, key.2);
    bar.finish_and_clear();
    Ok(sent)
}

async fn initiate(t: &Target) -> anyhow::Result<(String, u64)> {
    let out = t
        .ecr
        .initiate_layer_upload()
        .set_registry_id(t.registry_id.clone())
        .repository_name(&t.repository)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("InitiateLayerUpload: {}", describe(&e)))?;
    let id = out
        .upload_id()
        .context("InitiateLayerUpload gave no uploadId")?;
    // ECR advertises 10 MiB (`partSize`) but its model allows 20 MiB parts; a registry that
    // refuses one gets halves (see the InvalidLayerPartException arm in `upload_blob`).
    Ok((id.to_owned(), PART_SIZE))
}

/// One part, read from disk (a layout's blob file or a member of a tarball).
async fn read_part(blob: &BlobSource, from: u64, len: u64) -> anyhow::Result<Vec<u8>> {
    let path = blob.path.clone();
    let at = blob.offset + from;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let mut buf = vec![0; usize::try_from(len)?];
        std::fs::File::open(&path)
            .with_context(|| format!("{}", path.display()))?
            .read_exact_at(&mut buf, at)
            .with_context(|| format!("read {}", path.display()))?;
        Ok(buf)
    })
    .await?
}

async fn put_image(
    t: &Target,
    m: &crate::image::Manifest,
    tag: Option<&str>,
) -> anyhow::Result<()> {
    let res = t
        .ecr
        .put_image()
        .set_registry_id(t.registry_id.clone())
        .repository_name(&t.repository)
        .image_manifest(String::from_utf8(m.bytes.clone()).context("a manifest that is not UTF-8")?)
        .image_manifest_media_type(&m.media_type)
        .image_digest(&m.digest)
        .set_image_tag(tag.map(str::to_owned))
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        // The same manifest under the same tag (or untagged): nothing to do.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(PutImageError::ImageAlreadyExistsException(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => anyhow::bail!("PutImage {}: {}", m.digest, describe(&e)),
    }
}

/// Worth another attempt: the connection failed or timed out, or the registry was busy.
fn transient<E: aws_sdk_ecr::error::ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            s.raw().status().is_server_error()
                || s.raw().status().as_u16() == 429
                || s.err().code() == Some("ThrottlingException")
        }
        _ => false,
    }
}

/// `Code: message`, or the transport error's chain.
pub fn describe<E>(e: &SdkError<E>) -> String
where
    E: aws_sdk_ecr::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or_default()
        ),
        other => {
            let mut text = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            text
        }
    }
}
