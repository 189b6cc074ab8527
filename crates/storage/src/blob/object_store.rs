//! Blobs in S3-compatible object storage (or any `object_store` backend with multipart
//! uploads), so that many stateless nodes share them.
//!
//! Layout under the configured prefix:
//! - `data/<upload-id>`: a layer's bytes, where its S3 multipart upload (or, for a layer under
//!   [`PART_SIZE`], one plain PUT) puts them. Completion never copies the layer: the object stays
//!   where its upload put it.
//! - `blobs/<alg>/<hex>`: a small pointer naming the data object and its size. A digest has at
//!   most one pointer (a conditional create), so a digest pushed twice is stored once: a later
//!   completion of the same digest aborts its own multipart upload.
//! - `uploads/<upload-id>/...`: what an open upload has beside its multipart parts: `seg-*`
//!   objects (bytes written but too few for an S3 part), `mp-*` markers naming each multipart
//!   upload begun for it (so an orphan can be aborted without the metadata), and `complete`
//!   (a multipart upload being completed). Committing or discarding an upload removes them.
//!
//! An upload's progress is its staging state (saved by the metadata store with each
//! acknowledged part): the multipart upload id, the S3 parts acknowledged so far (their ETags
//! and sizes) and the sizes of the segments after them. A part may come to any node: the node
//! continues from the saved state. A write that is never acknowledged only adds parts with
//! numbers after the saved ones, and segments at offsets past the saved end, so the next write
//! overwrites them; it never changes an object the saved state names.
//!
//! Memory per upload being written is bounded: a part is cut into S3 parts of [`PART_SIZE`]
//! as it arrives, one filling while the previous one is sent.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use model::{Digest, UploadId};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use serde::{Deserialize, Serialize};

use super::{BlobRange, BlobReader, BlobStore, ByteStream};
use crate::StorageError;

/// The size of the S3 parts a layer is cut into as it arrives: every part but the last has
/// exactly this size (at least S3's 5 MiB minimum; equal, as Cloudflare R2 requires). Fewer
/// bytes at the end of a write are kept as segment objects until the next write or the
/// completion makes a part of them. Each upload being written holds at most two parts' worth
/// (one filling, one being sent).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Pointers remembered per node (a digest's data object never changes while it exists).
const POINTER_CACHE: usize = 4096;
/// Requests in flight when listing blobs reads their pointers.
const LIST_CONCURRENCY: usize = 16;

/// An upload's progress, saved with each acknowledged part.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Staging {
    /// The S3 multipart upload, begun with the first full part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<String>,
    /// The S3 parts acknowledged, in order.
    #[serde(default)]
    parts: Vec<StagedPart>,
    /// Sizes of the segment objects after the parts, in order (together under [`PART_SIZE`]).
    #[serde(default)]
    segments: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StagedPart {
    etag: String,
    size: u64,
}

impl Staging {
    fn parse(raw: &[u8]) -> Result<Self, StorageError> {
        if raw.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_slice(raw)
            .map_err(|e| StorageError::Other(format!("corrupt upload staging state: {e}").into()))
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("staging state serializes")
    }

    fn parts_len(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    fn segments_len(&self) -> u64 {
        self.segments.iter().sum()
    }

    fn len(&self) -> u64 {
        self.parts_len() + self.segments_len()
    }

    /// Where each segment starts in the layer, with its size.
    fn segment_ranges(&self) -> Vec<Range<u64>> {
        let mut at = self.parts_len();
        self.segments
            .iter()
            .map(|&len| {
                let r = at..at + len;
                at += len;
                r
            })
            .collect()
    }
}

/// What a pointer object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pointer {
    /// The data object's key, relative to the store's prefix.
    key: String,
    size: u64,
}

/// What the `complete` marker of an upload holds: the digest it is being committed as, once
/// known, so that discarding the upload spares a data object a pointer names.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Completing {
    #[serde(default)]
    digest: Option<String>,
}

pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    signer: Option<Arc<dyn Signer>>,
    /// Key prefix, empty or ending in '/'.
    prefix: String,
    pointers: Mutex<HashMap<Digest, Pointer>>,
    /// Whether the endpoint is on loopback (so clients elsewhere cannot reach it).
    loopback: bool,
}

/// Where an `s3://` URL and the AWS environment put the blobs.
#[derive(Debug, Clone)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{url}' is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("'{url}' names no bucket"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

/// Whether `endpoint` is a plain-http URL on the loopback interface (allowed without TLS).
fn loopback_http(endpoint: &str) -> Option<bool> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
    )
}

impl S3BlobStore {
    /// Connects to `s3://bucket/prefix` with the endpoint, region and credentials of the AWS
    /// environment (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
    /// else web identity, the container or the instance metadata). A custom endpoint is
    /// addressed path-style; plain http is allowed only on loopback. Requests answered 5xx
    /// (SlowDown included) or timing out are retried with exponential backoff.
    /// `endpoint`, when given, overrides the environment's. Where the environment has no
    /// access key or no region, the AWS profile (`AWS_PROFILE`, else `default`, in
    /// `~/.aws/credentials` and `~/.aws/config` or the files `AWS_SHARED_CREDENTIALS_FILE` and
    /// `AWS_CONFIG_FILE` name) gives them, as for the aws CLI and the SDKs.
    pub async fn open_s3(
        location: &S3Location,
        endpoint: Option<&str>,
    ) -> Result<Self, StorageError> {
        use object_store::aws::AmazonS3Builder;
        use object_store::{BackoffConfig, ClientOptions, RetryConfig};
        // reqwest's rustls needs a process-wide provider; berth uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = match endpoint {
            Some(e) => Some(e.to_owned()),
            None => std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok()
                .filter(|e| !e.is_empty()),
        };
        let mut client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // Generous for one 8 MiB part on a slow link; a stuck request is retried.
            .with_timeout(Duration::from_secs(120));
        if let Some(e) = &endpoint {
            match loopback_http(e) {
                Some(true) => client = client.with_allow_http(true),
                Some(false) => {
                    return Err(StorageError::Other(
                        format!("S3 endpoint {e}: plain http is allowed only on loopback").into(),
                    ));
                }
                None => {}
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 6,
            retry_timeout: Duration::from_secs(60),
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(e) = &endpoint {
            builder = builder
                .with_endpoint(e)
                .with_virtual_hosted_style_request(false);
        }
        let profile = profile::Profile::load().await?;
        if let Some(region) = profile.region {
            builder = builder.with_region(region);
        }
        if let Some(c) = profile.credentials {
            builder =
                builder.with_credentials(Arc::new(object_store::StaticCredentialProvider::new(c)));
        }
        // Sign requests with UNSIGNED-PAYLOAD, as the AWS SDKs do for S3 over TLS, unless the
        // environment says otherwise (AWS_UNSIGNED_PAYLOAD=false). Signing the payload makes
        // berth SHA-256 every layer byte a second time (besides the digest it must compute)
        // and the S3 server verify that hash: 0.7 CPU-s per GiB pushed in berth, a third of
        // its push cost (docs/benchmarks.md). The bytes still travel under TLS, or only over
        // loopback (plain http is refused elsewhere), and the layer's digest is checked by
        // berth as it arrives.
        if std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_none() {
            builder = builder.with_unsigned_payload(true);
        }
        let s3 = Arc::new(
            builder
                .build()
                .map_err(|e| StorageError::Other(Box::new(e)))?,
        );
        let mut store = Self::new(s3.clone(), s3.clone(), Some(s3), &location.prefix);
        store.loopback = endpoint.as_deref().is_some_and(|e| {
            let host = e.split("://").nth(1).unwrap_or(e);
            loopback_http(&format!("http://{host}")) == Some(true)
        });
        Ok(store)
    }

    /// A store over any backend with multipart uploads (tests use `InMemory`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        multipart: Arc<dyn MultipartStore>,
        signer: Option<Arc<dyn Signer>>,
        prefix: &str,
    ) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            store,
            multipart,
            signer,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            pointers: Mutex::default(),
            loopback: false,
        }
    }

    /// Whether the S3 endpoint is on this host's loopback interface: presigned URLs to it
    /// only work for clients on this host.
    pub fn endpoint_is_loopback(&self) -> bool {
        self.loopback
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{key}", self.prefix))
    }

    fn data_key(upload: UploadId) -> String {
        format!("data/{upload}")
    }

    fn upload_dir(upload: UploadId) -> String {
        format!("uploads/{upload}/")
    }

    fn segment_key(upload: UploadId, at: &Range<u64>) -> String {
        format!("uploads/{upload}/seg-{}-{}", at.start, at.end)
    }

    fn pointer_key(digest: &Digest) -> String {
        format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
    }

    async fn get_bytes(&self, key: &str) -> Result<Bytes, StorageError> {
        let got = self.store.get(&self.path(key)).await.map_err(map_err)?;
        got.bytes().await.map_err(map_err)
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&self.path(key), PutPayload::from(data))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_key(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// The pointer of a stored blob, or `None`.
    async fn pointer(&self, digest: &Digest) -> Result<Option<Pointer>, StorageError> {
        if let Some(p) = self.cached(digest) {
            return Ok(Some(p));
        }
        let raw = match self.get_bytes(&Self::pointer_key(digest)).await {
            Ok(raw) => raw,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let p: Pointer = serde_json::from_slice(&raw)
            .map_err(|e| StorageError::Other(format!("corrupt pointer {digest}: {e}").into()))?;
        let mut cache = self.pointers.lock().expect("pointer cache poisoned");
        if cache.len() >= POINTER_CACHE {
            cache.clear();
        }
        cache.insert(digest.clone(), p.clone());
        Ok(Some(p))
    }

    fn cached(&self, digest: &Digest) -> Option<Pointer> {
        let cache = self.pointers.lock().expect("pointer cache poisoned");
        cache.get(digest).cloned()
    }

    fn forget(&self, digest: &Digest) {
        self.pointers
            .lock()
            .expect("pointer cache poisoned")
            .remove(digest);
    }

    /// The saved segments' bytes, in order (under [`PART_SIZE`] together).
    async fn read_segments(
        &self,
        upload: UploadId,
        st: &Staging,
    ) -> Result<BytesMut, StorageError> {
        let mut out = BytesMut::with_capacity(st.segments_len() as usize);
        for at in st.segment_ranges() {
            let b = self.get_bytes(&Self::segment_key(upload, &at)).await?;
            if b.len() as u64 != at.end - at.start {
                return Err(StorageError::Other(
                    format!("upload {upload}: segment {at:?} holds {} bytes", b.len()).into(),
                ));
            }
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// Begins the upload's multipart upload, leaving a marker so that it can be aborted even
    /// if no write naming it is ever acknowledged.
    async fn begin_multipart(&self, upload: UploadId) -> Result<String, StorageError> {
        let id = self
            .multipart
            .create_multipart(&self.path(&Self::data_key(upload)))
            .await
            .map_err(map_err)?;
        let marker = format!("{}mp-{}", Self::upload_dir(upload), UploadId::new_random());
        self.put_bytes(&marker, Bytes::from(id.clone())).await?;
        Ok(id)
    }

    /// Objects under the upload's directory, by key relative to the prefix.
    async fn upload_objects(&self, upload: UploadId) -> Result<Vec<String>, StorageError> {
        let dir = self.path(&Self::upload_dir(upload));
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(map_err)?;
        Ok(metas
            .into_iter()
            .map(|m| {
                m.location
                    .as_ref()
                    .strip_prefix(&self.prefix)
                    .unwrap_or(m.location.as_ref())
                    .to_owned()
            })
            .collect())
    }

    /// Removes everything an upload left beside its data object: aborts each multipart upload
    /// begun for it (but `keep`, already completed) and deletes its segments and markers.
    async fn clean_upload(&self, upload: UploadId, keep: Option<&str>) -> Result<(), StorageError> {
        let data = self.path(&Self::data_key(upload));
        let objects = self.upload_objects(upload).await?;
        for key in objects.iter().filter(|k| k.contains("/mp-")) {
            let id = match self.get_bytes(key).await {
                Ok(id) => String::from_utf8_lossy(&id).into_owned(),
                Err(StorageError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            if Some(id.as_str()) == keep {
                continue;
            }
            match self.multipart.abort_multipart(&data, &id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        // Markers last: while one is left, a retry can still find what it names.
        let (markers, others): (Vec<_>, Vec<_>) =
            objects.into_iter().partition(|k| k.contains("/mp-"));
        for key in others.into_iter().chain(markers) {
            self.delete_key(&key).await?;
        }
        Ok(())
    }

    /// Sends one S3 part; the previous one must have been sent.
    fn send_part(
        &self,
        upload: UploadId,
        multipart: String,
        idx: usize,
        body: Bytes,
    ) -> tokio::task::JoinHandle<Result<(PartId, u64), StorageError>> {
        let store = self.multipart.clone();
        let path = self.path(&Self::data_key(upload));
        let size = body.len() as u64;
        tokio::spawn(async move {
            let id = store
                .put_part(&path, &multipart, idx, PutPayload::from(body))
                .await
                .map_err(map_err)?;
            Ok((id, size))
        })
    }
}

fn map_err(e: object_store::Error) -> StorageError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => StorageError::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => {
            StorageError::Conflict("the object exists already")
        }
        // A request this store or server cannot serve at all (a bad key, or an S3 server that
        // answers 501 to an operation berth uses): a deployment fault, not an outage to wait
        // out, so it is not reported as `Unavailable`.
        E::InvalidPath { .. } | E::NotSupported { .. } | E::NotImplemented { .. } => {
            StorageError::Other(Box::new(e))
        }
        // HTTP failures that outlasted the retries, timeouts, refused connections.
        other => StorageError::Unavailable(Box::new(other)),
    }
}

async fn join(
    h: tokio::task::JoinHandle<Result<(PartId, u64), StorageError>>,
) -> Result<StagedPart, StorageError> {
    let (id, size) = h.await.map_err(|e| StorageError::Other(Box::new(e)))??;
    Ok(StagedPart {
        etag: id.content_id,
        size,
    })
}

/// A write in progress: the saved state it continues, the bytes not yet sent, and the part
/// being sent.
struct Writer<'a> {
    store: &'a S3BlobStore,
    upload: UploadId,
    st: Staging,
    buf: BytesMut,
    sending: Option<tokio::task::JoinHandle<Result<(PartId, u64), StorageError>>>,
}

impl Writer<'_> {
    /// Bytes waiting for a part: the saved segments and the buffer.
    fn pending(&self) -> usize {
        self.st.segments_len() as usize + self.buf.len()
    }

    /// Makes one S3 part of the segments and the buffer, sent while the next part fills.
    async fn flush(&mut self) -> Result<(), StorageError> {
        let body = if self.st.segments.is_empty() {
            self.buf.split().freeze()
        } else {
            let mut body = self.store.read_segments(self.upload, &self.st).await?;
            body.extend_from_slice(&self.buf.split());
            self.st.segments.clear();
            body.freeze()
        };
        if let Some(h) = self.sending.take() {
            self.st.parts.push(join(h).await?);
        }
        let multipart = match &self.st.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self.store.begin_multipart(self.upload).await?;
                self.st.multipart = Some(id.clone());
                id
            }
        };
        self.sending =
            Some(
                self.store
                    .send_part(self.upload, multipart, self.st.parts.len(), body),
            );
        self.buf.reserve(PART_SIZE);
        Ok(())
    }

    async fn finish(mut self) -> Result<Staging, StorageError> {
        // Every S3 part but the last is exactly PART_SIZE: Cloudflare R2 refuses a multipart
        // upload whose parts differ in size. So what is left (under PART_SIZE) waits as a
        // segment for the next write or the completion, even when it would make a valid part.
        if !self.buf.is_empty() {
            // The segment starts after the part being sent.
            if let Some(h) = self.sending.take() {
                self.st.parts.push(join(h).await?);
            }
            // Too few bytes for an S3 part: a segment, until a later write or the completion.
            let start = self.st.len();
            let at = start..start + self.buf.len() as u64;
            let key = S3BlobStore::segment_key(self.upload, &at);
            self.store
                .put_bytes(&key, self.buf.split().freeze())
                .await?;
            self.st.segments.push(at.end - at.start);
        }
        if let Some(h) = self.sending.take() {
            self.st.parts.push(join(h).await?);
        }
        Ok(self.st)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn write_part(
        &self,
        upload: UploadId,
        offset: u64,
        staging: &[u8],
        mut data: ByteStream,
        observe: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
    ) -> Result<(u64, Vec<u8>), StorageError> {
        let st = Staging::parse(staging)?;
        if st.len() != offset {
            return Err(StorageError::Other(
                format!(
                    "upload {upload}: {} bytes staged but part starts at {offset}",
                    st.len()
                )
                .into(),
            ));
        }
        let mut w = Writer {
            store: self,
            upload,
            st,
            buf: BytesMut::with_capacity(PART_SIZE),
            sending: None,
        };
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| StorageError::SourceFailed(e.to_string()))?;
            observe(&chunk);
            written += chunk.len() as u64;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (PART_SIZE - w.pending()).min(rest.len());
                w.buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if w.pending() >= PART_SIZE {
                    w.flush().await?;
                }
            }
        }
        let st = w.finish().await?;
        Ok((written, st.encode()))
    }

    async fn commit_upload(
        &self,
        upload: UploadId,
        staging: &[u8],
        size: u64,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let mut st = Staging::parse(staging)?;
        if st.len() != size {
            return Err(StorageError::Other(
                format!(
                    "upload {upload}: {} bytes staged, {size} to commit",
                    st.len()
                )
                .into(),
            ));
        }
        self.forget(digest);
        if self.pointer(digest).await?.is_some() {
            // Stored already: this upload's bytes are not needed.
            self.clean_upload(upload, None).await?;
            return Ok(());
        }
        let data_key = Self::data_key(upload);
        let marker = format!("{}complete", Self::upload_dir(upload));
        let completing = Completing {
            digest: Some(digest.to_string()),
        };
        let completing = Bytes::from(serde_json::to_vec(&completing).expect("serializes"));
        self.put_bytes(&marker, completing).await?;
        match st.multipart.clone() {
            // Under one S3 part in all: one PUT of the segments (under PART_SIZE bytes).
            None => {
                let body = self.read_segments(upload, &st).await?;
                self.put_bytes(&data_key, body.freeze()).await?;
            }
            Some(mp) => {
                if !st.segments.is_empty() {
                    // The last S3 part may be small.
                    let body = self.read_segments(upload, &st).await?.freeze();
                    let h = self.send_part(upload, mp.clone(), st.parts.len(), body);
                    st.parts.push(join(h).await?);
                }
                let parts = st
                    .parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.etag.clone(),
                    })
                    .collect();
                let path = self.path(&data_key);
                match self.multipart.complete_multipart(&path, &mp, parts).await {
                    Ok(_) => {}
                    // Completed by an earlier attempt (or a read for a sha512 check).
                    Err(object_store::Error::NotFound { .. }) => {
                        let head = self.store.head(&path).await.map_err(map_err)?;
                        if head.size != size {
                            return Err(StorageError::Other(
                                format!("upload {upload}: completed with {} bytes", head.size)
                                    .into(),
                            ));
                        }
                    }
                    Err(e) => return Err(map_err(e)),
                }
            }
        }
        let pointer = Pointer {
            key: data_key.clone(),
            size,
        };
        let body = PutPayload::from(serde_json::to_vec(&pointer).expect("serializes"));
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(&Self::pointer_key(digest)), body, create)
            .await
        {
            Ok(_) => {}
            // Another upload of the same digest won the race: keep its copy.
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                self.delete_key(&data_key).await?;
            }
            Err(e) => return Err(map_err(e)),
        }
        self.clean_upload(upload, st.multipart.as_deref()).await
    }

    async fn read_upload(
        &self,
        upload: UploadId,
        staging: &[u8],
        size: u64,
    ) -> Result<ByteStream, StorageError> {
        let st = Staging::parse(staging)?;
        if st.len() < size {
            return Err(StorageError::Other(
                format!("upload {upload}: {} bytes staged, {size} asked", st.len()).into(),
            ));
        }
        let Some(mp) = st.multipart.clone() else {
            let body = self.read_segments(upload, &st).await?.freeze();
            let body = body.slice(..size as usize);
            return Ok(Box::pin(futures_util::stream::iter([Ok(body)])));
        };
        // S3 cannot read the parts of an open multipart upload: complete it (the upload
        // takes no further part after this) and read the object. The `complete` marker lets a
        // discard remove it; the commit that follows finds it completed.
        let marker = format!("{}complete", Self::upload_dir(upload));
        let body = serde_json::to_vec(&Completing::default()).expect("serializes");
        self.put_bytes(&marker, Bytes::from(body)).await?;
        let mut parts: Vec<PartId> = st
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.etag.clone(),
            })
            .collect();
        if !st.segments.is_empty() {
            let body = self.read_segments(upload, &st).await?.freeze();
            let h = self.send_part(upload, mp.clone(), parts.len(), body);
            parts.push(PartId {
                content_id: join(h).await?.etag,
            });
        }
        let path = self.path(&Self::data_key(upload));
        match self.multipart.complete_multipart(&path, &mp, parts).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(map_err(e)),
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(0..size)),
            ..Default::default()
        };
        if size == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let got = self.store.get_opts(&path, opts).await.map_err(map_err)?;
        Ok(Box::pin(got.into_stream().map_err(std::io::Error::other)))
    }

    async fn delete_upload(&self, upload: UploadId, _staging: &[u8]) -> Result<(), StorageError> {
        // Everything the upload began is under its directory (the staging state names a
        // subset of it), so the listing finds even what an unacknowledged write left.
        let marker = format!("{}complete", Self::upload_dir(upload));
        match self.get_bytes(&marker).await {
            Ok(raw) => {
                // Its multipart upload was completed: delete the object unless a pointer
                // names it (a commit that finished all but its clean-up).
                let c: Completing = serde_json::from_slice(&raw).unwrap_or_default();
                let named = match c.digest.as_deref().map(Digest::parse) {
                    Some(Ok(d)) => {
                        self.forget(&d);
                        self.pointer(&d)
                            .await?
                            .is_some_and(|p| p.key == Self::data_key(upload))
                    }
                    _ => false,
                };
                if !named {
                    self.delete_key(&Self::data_key(upload)).await?;
                }
            }
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e),
        }
        self.clean_upload(upload, None).await
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        Ok(self.pointer(digest).await?.map(|p| p.size))
    }

    async fn open(
        &self,
        digest: &Digest,
        range: Option<BlobRange>,
    ) -> Result<BlobReader, StorageError> {
        // A cached pointer may name an object GC has since removed (and the digest been
        // pushed again elsewhere): on NotFound, read the pointer afresh once.
        for attempt in 0..2 {
            if attempt == 1 {
                self.forget(digest);
            }
            let Some(p) = self.pointer(digest).await? else {
                return Err(StorageError::NotFound);
            };
            if p.size == 0 {
                return Ok(BlobReader {
                    size: 0,
                    body: Box::pin(futures_util::stream::empty()),
                });
            }
            let opts = GetOptions {
                range: Some(match range {
                    Some(r) => GetRange::Bounded(r.first..r.last + 1),
                    None => GetRange::Bounded(0..p.size),
                }),
                ..Default::default()
            };
            match self.store.get_opts(&self.path(&p.key), opts).await {
                Ok(got) => {
                    return Ok(BlobReader {
                        size: p.size,
                        body: Box::pin(got.into_stream().map_err(std::io::Error::other)),
                    });
                }
                Err(object_store::Error::NotFound { .. }) if attempt == 0 => continue,
                Err(e) => return Err(map_err(e)),
            }
        }
        Err(StorageError::NotFound)
    }

    async fn download_url(
        &self,
        digest: &Digest,
        expires_in: Duration,
    ) -> Result<Option<String>, StorageError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        // Read afresh: a URL to an object GC removed (the digest since pushed again under
        // another key) would fail at the client, where berth cannot retry.
        self.forget(digest);
        let Some(p) = self.pointer(digest).await? else {
            return Ok(None);
        };
        let url = signer
            .signed_url(
                object_store::signer::Method::GET,
                &self.path(&p.key),
                expires_in,
            )
            .await
            .map_err(map_err)?;
        Ok(Some(url.to_string()))
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        self.forget(digest);
        let Some(p) = self.pointer(digest).await? else {
            return Ok(());
        };
        // Data first: a crash in between leaves a pointer to nothing, which GC finds as an
        // unknown blob and removes, rather than bytes nothing names.
        self.delete_key(&p.key).await?;
        self.delete_key(&Self::pointer_key(digest)).await?;
        self.forget(digest);
        Ok(())
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, u64, SystemTime)>, StorageError> {
        let dir = self.path("blobs/");
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(map_err)?;
        let named: Vec<(Digest, SystemTime)> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(&self.prefix)?;
                let (alg, hex) = key.strip_prefix("blobs/")?.split_once('/')?;
                let d = Digest::parse(&format!("{alg}:{hex}")).ok()?;
                Some((d, m.last_modified.into()))
            })
            .collect();
        futures_util::stream::iter(named)
            .map(|(d, t)| async move { Ok(self.pointer(&d).await?.map(|p| (d, p.size, t))) })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await
    }

    async fn list_uploads(&self) -> Result<Vec<(UploadId, SystemTime)>, StorageError> {
        let dir = self.path("uploads/");
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(map_err)?;
        let mut latest: HashMap<UploadId, SystemTime> = HashMap::new();
        for m in metas {
            let Some(key) = m.location.as_ref().strip_prefix(&self.prefix) else {
                continue;
            };
            let Some(id) = key
                .strip_prefix("uploads/")
                .and_then(|k| k.split('/').next())
                .and_then(UploadId::parse)
            else {
                continue;
            };
            let t: SystemTime = m.last_modified.into();
            let e = latest.entry(id).or_insert(t);
            *e = (*e).max(t);
        }
        Ok(latest.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let l = S3Location::parse("s3://bucket/a/b/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bucket", "a/b"));
        let l = S3Location::parse("s3://bucket").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bucket", ""));
        assert!(S3Location::parse("s3:///x").is_err());
        assert!(S3Location::parse("http://bucket").is_err());
    }

    /// Cloudflare R2 refuses a multipart upload whose parts (but the last) differ in size, so
    /// writes of any sizes, at any boundaries, leave only PART_SIZE parts behind them.
    #[tokio::test]
    async fn every_part_but_the_last_has_the_same_size() {
        use futures_util::stream;
        let mem = Arc::new(::object_store::memory::InMemory::new());
        let store = S3BlobStore::new(mem.clone(), mem, None, "p");
        let upload = UploadId::new_random();
        let mut staging = Vec::new();
        let mut offset = 0u64;
        let mut layer = Vec::new();
        for size in [5 << 20, 6 << 20, 1, 12 << 20, (3 << 20) + 7, 20 << 20] {
            let part: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            layer.extend_from_slice(&part);
            let data: ByteStream = Box::pin(stream::iter([Ok(Bytes::from(part))]));
            let (written, next) = store
                .write_part(upload, offset, &staging, data, &mut |_| {})
                .await
                .unwrap();
            offset += written;
            staging = next;
            let st = Staging::parse(&staging).unwrap();
            assert!(
                st.parts.iter().all(|p| p.size == PART_SIZE as u64),
                "part sizes after {offset} bytes: {:?}",
                st.parts.iter().map(|p| p.size).collect::<Vec<_>>()
            );
            assert!(st.segments_len() < PART_SIZE as u64);
            assert_eq!(st.len(), offset);
        }
        let digest = Digest::sha256_of(&layer);
        store
            .commit_upload(upload, &staging, offset, &digest)
            .await
            .unwrap();
        assert_eq!(store.stat(&digest).await.unwrap(), Some(offset));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert_eq!(loopback_http("http://127.0.0.1:9000"), Some(true));
        assert_eq!(loopback_http("http://localhost:9000/"), Some(true));
        assert_eq!(loopback_http("http://[::1]:9000"), Some(true));
        assert_eq!(loopback_http("http://s3.internal:9000"), Some(false));
        assert_eq!(loopback_http("https://s3.amazonaws.com"), None);
    }
}

/// The AWS profile's part of the S3 settings. object_store reads the `AWS_*` variables only;
/// people who keep their keys in a profile (`aws configure`, `AWS_PROFILE=prod`) expect every
/// AWS tool to find them there. The environment wins where it says something, as in the SDKs.
/// Read with aws-config's own parser of the shared files (their locations, `[profile x]`
/// sections and `AWS_PROFILE` as the SDKs have them); only keys written in the profile are
/// taken. Profiles that get credentials from elsewhere (`role_arn`, `sso_session`,
/// `credential_process`) are left to object_store's chain, since they need an HTTP client
/// aws-config is built without here.
mod profile {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    use object_store::aws::AwsCredential;

    use crate::StorageError;

    #[derive(Default)]
    pub(super) struct Profile {
        /// The profile's `region`, where `AWS_REGION` and `AWS_DEFAULT_REGION` are unset.
        pub region: Option<String>,
        /// The profile's keys, where `AWS_ACCESS_KEY_ID` is unset.
        pub credentials: Option<AwsCredential>,
    }

    fn set(name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }

    impl Profile {
        pub async fn load() -> Result<Self, StorageError> {
            let named = set("AWS_PROFILE");
            let files = aws_config::profile::load(
                &Fs::real(),
                &Env::real(),
                &EnvConfigFiles::default(),
                None,
            )
            .await;
            let files = match files {
                Ok(f) => f,
                Err(e) if named => {
                    return Err(StorageError::Other(
                        format!("AWS_PROFILE: reading the AWS config files: {e}").into(),
                    ));
                }
                // No files: nothing to take from them.
                Err(_) => return Ok(Self::default()),
            };
            let name = files.selected_profile().to_owned();
            let Some(profile) = files.get_profile(&name) else {
                if named {
                    return Err(StorageError::Other(
                        format!("AWS_PROFILE: no profile {name:?} in the AWS config files").into(),
                    ));
                }
                return Ok(Self::default());
            };
            let mut out = Self::default();
            if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") {
                out.region = profile.get("region").map(str::to_owned);
            }
            if !set("AWS_ACCESS_KEY_ID") {
                out.credentials = match (
                    profile.get("aws_access_key_id"),
                    profile.get("aws_secret_access_key"),
                ) {
                    (Some(key), Some(secret)) => Some(AwsCredential {
                        key_id: key.to_owned(),
                        secret_key: secret.to_owned(),
                        token: profile.get("aws_session_token").map(str::to_owned),
                    }),
                    _ => None,
                };
            }
            Ok(out)
        }
    }
}
