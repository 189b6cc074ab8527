//! `berth pull`: BatchGetImage for the manifest (and an index's children), then for each
//! blob GetDownloadUrlForLayer and ranged GETs in parallel into a temporary file, hashed and
//! renamed into the layout only when its digest matches.

use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_ecr::types::ImageIdentifier;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::Semaphore;

use crate::image::{Descriptor, MANIFEST_TYPES, Manifest, ManifestBody, hash_file_range, is_index};
use crate::layout::{self, Writer};
use crate::progress::{Progress, short};
use crate::push::describe;
use crate::reference::{ImageRef, Reference};
use crate::{PullArgs, archive};

/// The size of one ranged GET.
const RANGE_SIZE: u64 = 8 * 1024 * 1024;
/// Attempts for one range (a dropped connection, a 5xx) before the pull fails.
const RANGE_ATTEMPTS: u32 = 5;

enum Dest {
    Layout { dir: PathBuf, name: Option<String> },
    Archive { file: PathBuf },
}

/// DEST: `oci:DIR[:REF]`, `docker-archive:FILE`, else a path ending in `.tar` is a tarball
/// and anything else a layout directory.
fn parse_dest(dest: &str) -> Dest {
    if let Some(rest) = dest.strip_prefix("oci:") {
        return match rest.rsplit_once(':') {
            Some((dir, name)) if !name.contains('/') => Dest::Layout {
                dir: dir.into(),
                name: Some(name.to_owned()),
            },
            _ => Dest::Layout {
                dir: rest.into(),
                name: None,
            },
        };
    }
    if let Some(rest) = dest.strip_prefix("docker-archive:") {
        return Dest::Archive { file: rest.into() };
    }
    if std::path::Path::new(dest)
        .extension()
        .is_some_and(|e| e == "tar")
    {
        Dest::Archive { file: dest.into() }
    } else {
        Dest::Layout {
            dir: dest.into(),
            name: None,
        }
    }
}

struct Source {
    ecr: aws_sdk_ecr::Client,
    registry_id: Option<String>,
    repository: String,
    http: reqwest::Client,
}

pub async fn run(
    ecr: &aws_sdk_ecr::Client,
    args: &PullArgs,
    from: &ImageRef,
) -> anyhow::Result<()> {
    let src = Arc::new(Source {
        ecr: ecr.clone(),
        registry_id: args
            .connection
            .registry_id
            .clone()
            .or(from.registry_id.clone()),
        repository: from.repository.clone(),
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?,
    });
    let dest = parse_dest(&args.destination);
    let id = match &from.reference {
        Reference::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        Reference::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
    };
    let top = get_manifests(&src, vec![id]).await?.remove(0);
    if let Reference::Digest(d) = &from.reference {
        anyhow::ensure!(&top.digest == d, "asked for {d}, got {}", top.digest);
    }

    // Children first; a tarball holds one platform's image.
    let mut manifests = Vec::new();
    let image_for_archive;
    if is_index(&top.media_type) {
        let body = ManifestBody::parse(&top.bytes)?;
        let children: Vec<&Descriptor> = match &dest {
            Dest::Archive { .. } => vec![
                body.manifests
                    .iter()
                    .find(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| p.matches(&args.platform))
                    })
                    .with_context(|| format!("the index has no image for {}", args.platform))?,
            ],
            Dest::Layout { .. } => body.manifests.iter().collect(),
        };
        let ids = children
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(&d.digest).build())
            .collect();
        let fetched = get_manifests(&src, ids).await?;
        for d in &children {
            let m = fetched
                .iter()
                .find(|m| m.digest == d.digest)
                .with_context(|| format!("BatchGetImage did not return {}", d.digest))?;
            manifests.push(m.clone());
        }
        image_for_archive = manifests[0].clone();
    } else {
        image_for_archive = top.clone();
    }
    let keep_index = matches!(dest, Dest::Layout { .. });
    if keep_index || !is_index(&top.media_type) {
        manifests.push(top.clone());
    }

    let mut blobs: Vec<Descriptor> = Vec::new();
    for m in &manifests {
        if is_index(&m.media_type) {
            continue;
        }
        for b in ManifestBody::parse(&m.bytes)?.blobs() {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b.clone());
            }
        }
    }

    let layout_dir = match &dest {
        Dest::Layout { dir, .. } => dir.clone(),
        // Kept on failure, so that a second try downloads only what is missing.
        Dest::Archive { file } => file.with_file_name(format!(
            ".{}.layout.partial",
            file.file_name().context("no file name")?.to_string_lossy()
        )),
    };
    let writer = Arc::new(Writer::create(&layout_dir)?);
    let need: Vec<Descriptor> = blobs
        .iter()
        .filter(|b| !writer.has_blob(&b.digest, b.size))
        .cloned()
        .collect();
    let total: u64 = need.iter().map(|b| b.size).sum();
    let progress = Arc::new(Progress::new(args.connection.quiet, total, "pull"));
    let ranges = Arc::new(Semaphore::new(args.jobs.max(1)));
    let mut running = FuturesUnordered::new();
    let mut queue = need.into_iter();
    loop {
        // Blobs in flight are bounded too, so each holds its share of the range permits.
        while running.len() < args.jobs.max(1) {
            let Some(b) = queue.next() else { break };
            let (s, w, p, r) = (
                src.clone(),
                writer.clone(),
                progress.clone(),
                ranges.clone(),
            );
            running.push(tokio::spawn(
                async move { download(&s, &w, &p, &r, &b).await },
            ));
        }
        match running.next().await {
            Some(done) => done??,
            None => break,
        }
    }

    for m in &manifests {
        writer.write_manifest(m)?;
    }
    let tag = match &from.reference {
        Reference::Tag(t) => t.clone(),
        Reference::Digest(d) => d.clone(),
    };
    match &dest {
        Dest::Layout { name, .. } => writer.tag(&top, name.as_deref().unwrap_or(&tag))?,
        Dest::Archive { file } => {
            let repo_tag = format!("{}:{}", from.repository, tag.replace("sha256:", "sha256-"));
            let (dir, m, f) = (layout_dir.clone(), image_for_archive.clone(), file.clone());
            tokio::task::spawn_blocking(move || archive::write(&dir, &m, &repo_tag, &f)).await??;
            std::fs::remove_dir_all(&layout_dir)
                .with_context(|| format!("remove {}", layout_dir.display()))?;
        }
    }
    progress.finish(
        &format!(
            "pulled {}@{} ({} blobs)",
            from.repository,
            top.digest,
            blobs.len()
        ),
        total,
    );
    println!("{}", top.digest);
    Ok(())
}

/// BatchGetImage, every manifest checked against its digest.
async fn get_manifests(src: &Source, ids: Vec<ImageIdentifier>) -> anyhow::Result<Vec<Manifest>> {
    let out = src
        .ecr
        .batch_get_image()
        .set_registry_id(src.registry_id.clone())
        .repository_name(&src.repository)
        .set_image_ids(Some(ids))
        .set_accepted_media_types(Some(
            MANIFEST_TYPES.iter().map(|m| (*m).to_owned()).collect(),
        ))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("BatchGetImage: {}", describe(&e)))?;
    if let Some(f) = out.failures().first() {
        anyhow::bail!(
            "BatchGetImage: {}: {}",
            f.failure_code().map_or("failure", |c| c.as_str()),
            f.failure_reason().unwrap_or_default()
        );
    }
    let mut manifests = Vec::new();
    for image in out.images() {
        let digest = image
            .image_id()
            .and_then(|i| i.image_digest())
            .context("BatchGetImage gave an image without a digest")?;
        let bytes = image
            .image_manifest()
            .context("BatchGetImage gave an image without a manifest")?
            .as_bytes()
            .to_vec();
        manifests.push(Manifest::new(
            digest,
            bytes,
            image.image_manifest_media_type(),
        )?);
    }
    anyhow::ensure!(!manifests.is_empty(), "BatchGetImage returned no image");
    Ok(manifests)
}

/// One blob: ranged GETs in parallel into `.<hex>.partial`, then hashed and renamed.
async fn download(
    src: &Source,
    writer: &Writer,
    progress: &Progress,
    ranges: &Arc<Semaphore>,
    blob: &Descriptor,
) -> anyhow::Result<()> {
    let bar = progress.blob(&blob.digest, blob.size);
    let url = src
        .ecr
        .get_download_url_for_layer()
        .set_registry_id(src.registry_id.clone())
        .repository_name(&src.repository)
        .layer_digest(&blob.digest)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetDownloadUrlForLayer {}: {}", blob.digest, describe(&e)))?
        .download_url()
        .context("GetDownloadUrlForLayer gave no URL")?
        .to_owned();
    let partial = writer.partial_path(&blob.digest)?;
    let file = Arc::new(
        std::fs::File::create(&partial).with_context(|| format!("{}", partial.display()))?,
    );
    file.set_len(blob.size)?;
    let mut tasks = FuturesUnordered::new();
    let mut start = 0;
    while start < blob.size {
        let end = (start + RANGE_SIZE).min(blob.size);
        let permit = ranges.clone().acquire_owned().await?;
        let (http, url, file, bar, overall) = (
            src.http.clone(),
            url.clone(),
            file.clone(),
            bar.clone(),
            progress.overall.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = fetch_range(&http, &url, &file, start, end, &bar, &overall).await;
            drop(permit);
            r
        }));
        start = end;
        // Reap finished ranges as we go so an early failure stops the blob.
        while let Some(Some(done)) = tasks.next().now_or_never() {
            done??;
        }
    }
    while let Some(done) = tasks.next().await {
        done??;
    }
    let (path, size, digest) = (partial.clone(), blob.size, blob.digest.clone());
    let file2 = file.clone();
    let actual = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        file2.sync_all()?;
        hash_file_range(&path, 0, size)
    })
    .await??;
    if actual != digest {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("blob {digest} downloaded with the digest {actual}: discarded");
    }
    layout::commit(&partial, &writer.blob_path(&blob.digest)?)?;
    bar.finish_and_clear();
    progress.note(&format!("{}: done", short(&blob.digest)));
    Ok(())
}

/// Bytes `start..end` of the blob, written at their offset; retried on a dropped connection.
async fn fetch_range(
    http: &reqwest::Client,
    url: &str,
    file: &std::fs::File,
    start: u64,
    end: u64,
    bar: &indicatif::ProgressBar,
    overall: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut at = start;
    let mut attempts = 0;
    loop {
        match fetch_from(http, url, file, &mut at, end, bar, overall).await {
            Ok(()) => return Ok(()),
            Err(_) if attempts + 1 < RANGE_ATTEMPTS => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200 << attempts)).await;
            }
            Err(e) => return Err(e.context(format!("bytes {start}-{} of {url}", end - 1))),
        }
    }
}

/// One GET from `*at` to `end`; `*at` advances with what was written, so a retry asks only
/// for the rest.
async fn fetch_from(
    http: &reqwest::Client,
    url: &str,
    file: &std::fs::File,
    at: &mut u64,
    end: u64,
    bar: &indicatif::ProgressBar,
    overall: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut resp = http
        .get(url)
        .header(reqwest::header::RANGE, format!("bytes={}-{}", *at, end - 1))
        .send()
        .await?;
    let status = resp.status();
    anyhow::ensure!(
        status == reqwest::StatusCode::PARTIAL_CONTENT,
        "GET answered {status} to a Range request"
    );
    while let Some(chunk) = resp.chunk().await? {
        let len = chunk.len() as u64;
        anyhow::ensure!(*at + len <= end, "the server sent more than the range");
        file.write_all_at(&chunk, *at)?;
        *at += len;
        bar.inc(len);
        overall.inc(len);
    }
    anyhow::ensure!(
        *at == end,
        "the connection closed {} bytes early",
        end - *at
    );
    Ok(())
}
