//! Replication's two server-side pieces: the job that carries out the replication outbox
//! (`Registries::replicate_due`) under the `replication` lease, and the `/v2` client that
//! delivers to `[[replication-remotes]]` (another berth, any OCI registry), built on the
//! pull-through cache's upstream client and its authentication (Basic, or a Bearer token
//! challenge).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use model::Digest;
use registry::{
    BlobSource, ReplicationDestination, ReplicationRemote, UpstreamError, UpstreamTarget,
};
use reqwest13 as reqwest;
use storage::ByteStream;

use crate::config::ReplicationRemoteConfig;
use crate::metrics::{Job, Metrics};
use crate::upstream::{HttpUpstream, UpstreamSecret};

/// Rows taken per round.
const BATCH: u32 = 20;
/// How often the outbox is looked at when it is idle (a read; the lease is taken only when
/// something is due).
const POLL: Duration = Duration::from_millis(500);
/// The `replication` lease: renewed every third of it while a round runs; a node killed in a
/// round holds the other nodes back for at most this long.
const LEASE: Duration = Duration::from_secs(10);
/// A manifest PUT or upload start must be answered within this.
const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The replication job's settings.
#[derive(Clone)]
pub struct Replicator {
    pub retry: registry::ReplicationRetry,
}

impl Replicator {
    /// Carries out due replication rows until the process ends.
    pub fn spawn(self, registries: Arc<registry::Registries>, metrics: Arc<Metrics>) {
        let registry = registries.default_region().clone();
        let holder = uuid::Uuid::new_v4().to_string();
        tokio::spawn(async move {
            loop {
                match registries.replication_due().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the replication outbox");
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                }
                let started = std::time::Instant::now();
                let job = registries.replicate_due(BATCH, self.retry);
                let result = registry
                    .run_leased_for("replication", &holder, LEASE, job)
                    .await;
                match &result {
                    Ok(Some(_)) => metrics.job_run(Job::Replication, true, started.elapsed()),
                    Ok(None) => {}
                    Err(_) => metrics.job_run(Job::Replication, false, started.elapsed()),
                }
                match result {
                    // A full batch: more are probably due, so no pause.
                    Ok(Some(n)) if n == u64::from(BATCH) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "replication round failed"),
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }
}

/// The `[[replication-remotes]]`, reached over `/v2`.
pub struct HttpRemote {
    client: HttpUpstream,
    /// Each remote's base URL and the key of its credentials in `client`, by destination.
    remotes: HashMap<ReplicationDestination, (String, Option<String>)>,
}

impl HttpRemote {
    pub fn new(entries: &[ReplicationRemoteConfig]) -> anyhow::Result<Self> {
        let mut secrets = HashMap::new();
        let mut remotes = HashMap::new();
        for r in entries {
            let key = format!("replication-remote:{}:{}", r.region, r.registry_id);
            let secret = match (&r.username, &r.password, &r.token) {
                (Some(u), Some(p), _) => Some(UpstreamSecret::Basic {
                    username: u.clone(),
                    password: auth::Secret::new(p.clone()),
                }),
                (_, _, Some(t)) => Some(UpstreamSecret::Token(auth::Secret::new(t.clone()))),
                _ => None,
            };
            let has_secret = secret.is_some();
            if let Some(s) = secret {
                secrets.insert(key.clone(), s);
            }
            remotes.insert(
                ReplicationDestination {
                    region: r.region.clone(),
                    registry_id: r.registry_id.clone(),
                },
                (
                    r.url.trim_end_matches('/').to_owned(),
                    has_secret.then_some(key),
                ),
            );
        }
        Ok(Self {
            client: HttpUpstream::for_purpose(secrets, "replication")?,
            remotes,
        })
    }

    fn target(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
    ) -> Result<UpstreamTarget, UpstreamError> {
        let (base_url, key) = self.remotes.get(dest).ok_or_else(|| {
            UpstreamError::Unavailable(format!(
                "no [[replication-remotes]] entry names region '{}' with registry '{}'",
                dest.region, dest.registry_id
            ))
        })?;
        Ok(UpstreamTarget {
            base_url: base_url.clone(),
            repository: repository.to_owned(),
            credential_arn: key.clone(),
        })
    }
}

/// An upload's `Location`, absolute (registries may answer a path).
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

#[async_trait]
impl ReplicationRemote for HttpRemote {
    fn serves(&self, dest: &ReplicationDestination) -> bool {
        self.remotes.contains_key(dest)
    }

    async fn has_blob(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, UpstreamError> {
        let target = self.target(dest, repository)?;
        let url = format!("{}/v2/{repository}/blobs/{digest}", target.base_url);
        let http = self.client.client();
        match self
            .client
            .send(&target, &url, || {
                http.head(&url).timeout(SMALL_REQUEST_TIMEOUT)
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(UpstreamError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_blob(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        source: &dyn BlobSource,
    ) -> Result<(), UpstreamError> {
        let target = self.target(dest, repository)?;
        let http = self.client.client();
        let start = format!("{}/v2/{repository}/blobs/uploads/", target.base_url);
        // Starting the upload also earns the push token a Bearer registry asks for, so the
        // PUT that carries the bytes normally goes out authorized; when it meets a challenge
        // all the same (the token expired meanwhile), it is sent again with the blob reread.
        let resp = self
            .client
            .send(&target, &start, || {
                http.post(&start)
                    .header("content-length", "0")
                    .timeout(SMALL_REQUEST_TIMEOUT)
            })
            .await?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                UpstreamError::Unavailable(format!(
                    "the registry at {} started an upload without a Location",
                    target.base_url
                ))
            })?;
        let location = absolute(&target.base_url, location);
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let mut first = Some(body);
        self.client
            .send_with(&target, &put, || {
                let first = first.take();
                let put = put.as_str();
                async move {
                    let stream = match first {
                        Some(s) => s,
                        None => source.reopen().await?,
                    };
                    Ok(http
                        .put(put)
                        .header("content-type", "application/octet-stream")
                        .header("content-length", size.to_string())
                        .body(reqwest::Body::wrap_stream(stream)))
                }
            })
            .await?;
        Ok(())
    }

    async fn put_manifest(
        &self,
        dest: &ReplicationDestination,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), UpstreamError> {
        let target = self.target(dest, repository)?;
        let url = format!("{}/v2/{repository}/manifests/{reference}", target.base_url);
        let http = self.client.client();
        self.client
            .send(&target, &url, || {
                http.put(&url)
                    .header("content-type", media_type)
                    .body(bytes.to_vec())
                    .timeout(SMALL_REQUEST_TIMEOUT)
            })
            .await?;
        Ok(())
    }
}
