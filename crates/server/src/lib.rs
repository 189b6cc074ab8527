//! Assembles berth from its parts: storage backends chosen by configuration, the registry core,
//! and the protocol front ends on one listener.

pub mod audit;
mod classify;
pub mod config;
mod connection;
pub mod events;
mod health;
mod idle;
pub mod metrics;
mod observe;
pub mod replication;
mod ui;
pub mod upstream;
mod zero_copy;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;

/// The git commit this berth was built from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("BERTH_COMMIT");

/// `0.1.0 (commit 0123456789ab)`: what `berth --version` prints.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BERTH_COMMIT"),
    ")"
);

/// The bound listeners [`App::serve`] serves on (see [`App::bind`]).
pub struct Listeners {
    /// The API's (`listen`).
    pub main: TcpListener,
    /// `/metrics` and the health checks on a port of their own (`metrics-listen`).
    metrics: Option<(TcpListener, Router)>,
}

/// The assembled application.
pub struct App {
    pub router: Router,
    /// The default region's registries (`region`), which also run the store-wide jobs (GC,
    /// fsck, event delivery).
    pub registry: Arc<registry::Registry>,
    /// Every region's.
    pub registries: Arc<registry::Registries>,
    tls: Option<config::TlsConfig>,
    gc: registry::GcOptions,
    gc_interval: Option<std::time::Duration>,
    lifecycle_interval: Option<Duration>,
    /// How often the pull times noted in memory are written.
    pull_time_flush: Duration,
    /// How often the storage-use deltas are folded (none: never).
    usage_fold_interval: Option<Duration>,
    /// Posts the outbox's events to `[[webhooks]]` (none configured: no job).
    delivery: Option<events::Delivery>,
    /// Carries out the replication outbox.
    replicator: replication::Replicator,
    idle_timeout: Option<Duration>,
    pub metrics: Arc<metrics::Metrics>,
    /// `/metrics` (with the health checks) on a listener of its own, when configured.
    metrics_listen: Option<(std::net::SocketAddr, Router)>,
}

impl App {
    /// Opens storage under the data directory and builds every front end.
    pub async fn build(cfg: &Config) -> anyhow::Result<Self> {
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        let pools = storage::PostgresPools {
            metadata: cfg.metadata_pool_size,
            fence: cfg.fence_pool_size,
        };
        let storage =
            storage::Storage::open_with_pools(&cfg.data_dir, cfg.metadata.as_ref(), pools)
                .await
                .with_context(|| match &cfg.metadata {
                    Some(storage::Metadata::Postgres(_)) => {
                        "opening the PostgreSQL metadata".into()
                    }
                    _ => format!("opening storage in {}", cfg.data_dir.display()),
                })?;
        // Blobs elsewhere than the data directory: clients are sent to presigned URLs unless
        // the endpoint is one only this host can reach.
        let (storage, blob_redirect) = match &cfg.blobs {
            Some(url) => {
                let (s, loopback) = storage
                    .with_s3_blobs(url)
                    .await
                    .with_context(|| format!("opening blobs at {url}"))?;
                (s, cfg.blob_redirect.unwrap_or(!loopback))
            }
            None => (storage, false),
        };
        let probe = health::Probe {
            storage: storage.clone(),
        };
        let signing_key = auth::SigningKey::load_or_create(&cfg.signing_key_file)
            .context("loading the signing key")?;
        let replication_remote: Option<Arc<dyn registry::ReplicationRemote>> =
            if cfg.replication_remotes.is_empty() {
                None
            } else {
                Some(Arc::new(
                    replication::HttpRemote::new(&cfg.replication_remotes)
                        .context("building the replication client")?,
                ))
            };
        let template = registry::Registry::new(storage, cfg.region.clone(), limits(cfg)?)
            .with_events(!cfg.webhooks.is_empty())
            .with_failpoints(cfg.failpoints.clone())
            .with_verified_reads(cfg.verify_reads)
            .with_blob_redirect(blob_redirect)
            .with_memory_budget(registry::MemoryBudget::new(
                cfg.max_inflight_part_bytes,
                body_memory_wait(cfg)?,
            ))
            .with_public_aliases(cfg.public_aliases()?)
            .with_clock_offset(cfg.clock_offset_secs.saturating_mul(1000))
            .with_restore_delay(
                i64::try_from(cfg.archive_restore_secs)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            )
            .with_quotas(registry::Quotas::new(
                &cfg.rate_limits
                    .iter()
                    .map(|(op, n)| (op.clone(), *n as f64))
                    .collect::<Vec<_>>(),
                cfg.rate_limit_burst_secs as f64,
            ))
            .with_key_access(cfg.key_access.clone())
            .map_err(|e| anyhow::anyhow!("access-keys: {e}"))?
            .with_pull_through(registry::PullThroughConfig {
                upstream: Arc::new(
                    upstream::HttpUpstream::new(cfg.upstream_credentials.iter().cloned().collect())
                        .context("building the upstream registry client")?,
                ),
                refresh_millis: i64::try_from(cfg.pull_through_refresh_secs)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
                allow_http: cfg.allow_http_upstreams,
            })
            .with_replication_remote(replication_remote);
        let registries = Arc::new(
            registry::Registries::new(
                template,
                (!cfg.regions.is_empty()).then(|| cfg.regions.clone()),
            )
            .await
            .context("recording the home region")?,
        );
        let registry = registries.default_region().clone();
        if cfg.access_keys.len() > 1 && cfg.key_access.iter().all(|k| k.policy.is_none()) {
            tracing::warn!(
                keys = cfg.access_keys.len(),
                "several access keys and none has an identity policy: each may do anything in its \
                 own account that no repository or registry policy denies. Give keys a `policy` \
                 (or `policy-file`) in [[access-keys]] to restrict them."
            );
        }
        let oci = oci_api::router(
            registries.clone(),
            oci_api::OciApiConfig {
                signing_key: signing_key.clone(),
                account_id: cfg.account_id.clone(),
                create_on_push: cfg.create_on_push,
                blob_delete: cfg.blob_delete,
                anonymous_pull: cfg.anonymous_pull.clone(),
                public_url: cfg.public_url.clone(),
                scheme,
                registry_domain: cfg.registry_domain.clone(),
            },
        );
        let credentials = (!cfg.access_keys.is_empty()).then(|| {
            Arc::new(auth::StaticCredentials::new(cfg.access_keys.clone()))
                as Arc<dyn auth::CredentialStore>
        });
        // The web UI signs in with the same keys and reads through the same registry calls.
        let ui = ui::router(
            registries.clone(),
            ui::UiConfig {
                signing_key: signing_key.clone(),
                credentials: credentials.clone(),
                account_id: cfg.account_id.clone(),
                public_url: cfg.public_url.clone(),
                scheme,
                regions: cfg.regions.clone(),
                registry_domain: cfg.registry_domain.clone(),
            },
        );
        let ecr = ecr_api::router(
            registries.clone(),
            ecr_api::EcrApiConfig {
                account_id: cfg.account_id.clone(),
                credentials,
                public_url: cfg.public_url.clone(),
                scheme,
                signing_key,
                public_region: cfg.public_region.clone(),
                registry_domain: cfg.registry_domain.clone(),
            },
        );
        let idle_timeout =
            (cfg.idle_timeout_secs > 0).then(|| Duration::from_secs(cfg.idle_timeout_secs));
        let metrics = Arc::new(metrics::Metrics::default());
        // Like most registries (distribution, zot, Harbor's core), metrics are served on the
        // main port without authentication by default: they then name operations, counts and
        // registries, never repositories or principals (`metrics-repositories` is 0 unless
        // set). `metrics-listen` moves them to a port of their own; `metrics-token` makes them
        // need a bearer token wherever they are.
        let usage = (registry.meta().clone(), cfg.metrics_repositories);
        let token = cfg.metrics_token.clone();
        let operator = |with_metrics: bool| {
            let health = Router::new()
                .route("/healthz", axum::routing::get(health::healthz))
                .route("/readyz", axum::routing::get(health::readyz))
                .with_state(probe.clone());
            if !with_metrics {
                return health;
            }
            let m = metrics.clone();
            let (meta, largest) = usage.clone();
            let token = token.clone();
            health.route(
                "/metrics",
                axum::routing::get(move |headers: axum::http::HeaderMap| async move {
                    use axum::response::IntoResponse;
                    if let Some(t) = &token
                        && !metrics::bearer_matches(&headers, t)
                    {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            [("www-authenticate", "Bearer realm=\"berth metrics\"")],
                            "/metrics needs Authorization: Bearer <metrics-token>\n",
                        )
                            .into_response();
                    }
                    let mut body = m.render();
                    // A store that cannot answer leaves the usage out of this scrape (the
                    // series go stale) rather than failing the other metrics.
                    match meta.storage_usage(largest).await {
                        Ok(u) => metrics::render_usage(&mut body, &u),
                        Err(e) => tracing::warn!(error = %e, "storage use left out of /metrics"),
                    }
                    ([("content-type", metrics::CONTENT_TYPE)], body).into_response()
                }),
            )
        };
        // The connection facts (source address, TLS, audit) wrap the API routes only.
        let mut router = ecr
            .merge(oci)
            .merge(if cfg.ui { ui } else { Router::new() })
            .layer(axum::middleware::from_fn_with_state(
                connection::Facts::new(
                    cfg.trusted_proxy_header.as_deref(),
                    cfg.tls.is_some(),
                    match &cfg.audit_log {
                        Some(p) => Some(Arc::new(audit::AuditLog::new(
                            p.clone(),
                            cfg.audit_log_max_bytes,
                        )?)),
                        None => None,
                    },
                )?,
                connection::scope,
            ))
            .merge(operator(cfg.metrics_listen.is_none()));
        if let Some(idle) = idle_timeout {
            // Per piece of body, not per request: a 10 GiB upload may take as long as it
            // needs, but a client that stops sending is dropped.
            router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(idle));
        }
        // Outermost: it sees every request, and the time and bytes of the whole of it.
        let router = router.layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            observe::observe,
        ));
        let metrics_listen = cfg.metrics_listen.map(|addr| (addr, operator(true)));
        Ok(Self {
            metrics,
            metrics_listen,
            router,
            idle_timeout,
            registry,
            registries: registries.clone(),
            tls: cfg.tls.clone(),
            gc: registry::GcOptions {
                dry_run: false,
                grace: std::time::Duration::from_secs(cfg.gc_grace_secs),
            },
            gc_interval: (cfg.gc_interval_secs > 0)
                .then(|| std::time::Duration::from_secs(cfg.gc_interval_secs)),
            lifecycle_interval: (cfg.lifecycle_interval_secs > 0)
                .then(|| Duration::from_secs(cfg.lifecycle_interval_secs)),
            pull_time_flush: Duration::from_secs(cfg.pull_time_flush_secs.max(1)),
            usage_fold_interval: (cfg.usage_fold_interval_secs > 0)
                .then(|| Duration::from_secs(cfg.usage_fold_interval_secs)),
            delivery: (!cfg.webhooks.is_empty()).then(|| events::Delivery {
                hooks: Arc::new(cfg.webhooks.clone()),
                region: registries.home_region().to_owned(),
                max_attempts: cfg.webhook_max_attempts.max(1),
                retry_base_ms: cfg.webhook_retry_base_ms,
            }),
            replicator: replication::Replicator {
                retry: registry::ReplicationRetry {
                    max_attempts: cfg.replication_max_attempts.max(1),
                    base_millis: cfg.replication_retry_base_ms,
                },
            },
        })
    }

    /// One garbage collection with the configured grace period.
    pub async fn collect_garbage(&self, dry_run: bool) -> anyhow::Result<registry::GcReport> {
        let opts = registry::GcOptions {
            dry_run,
            ..self.gc.clone()
        };
        Ok(self.registry.collect_garbage(&opts).await?)
    }

    /// Runs every repository's lifecycle policy once (`berth lifecycle run`).
    pub async fn run_lifecycle(&self, dry_run: bool) -> anyhow::Result<registry::LifecycleReport> {
        Ok(self.registries.run_lifecycle(dry_run).await?)
    }

    /// Runs the lifecycle policies every `lifecycle_interval` while the server runs, on one
    /// node at a time (the `lifecycle` lease).
    fn spawn_lifecycle(&self) {
        let Some(interval) = self.lifecycle_interval else {
            return;
        };
        let registry = self.registry.clone();
        let registries = self.registries.clone();
        let metrics = self.metrics.clone();
        let holder = lease_holder();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await; // not at start-up: let clients reconnect first
            loop {
                tick.tick().await;
                let job = registries.run_lifecycle(false);
                let started = std::time::Instant::now();
                match registry.run_leased("lifecycle", &holder, job).await {
                    Ok(Some(r)) => {
                        metrics.job_run(metrics::Job::Lifecycle, true, started.elapsed());
                        tracing::info!(?r, "lifecycle policies applied");
                    }
                    Ok(None) => tracing::debug!("lifecycle policies run on another node"),
                    Err(e) => {
                        metrics.job_run(metrics::Job::Lifecycle, false, started.elapsed());
                        tracing::error!(error = ?e, "lifecycle run failed");
                    }
                }
            }
        });
    }

    /// Writes the pull times noted in memory every `pull_time_flush` while the server runs;
    /// every node writes its own.
    fn spawn_pull_time_flush(&self) {
        let registry = self.registry.clone();
        let interval = self.pull_time_flush;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match registry.flush_pull_times().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(images = n, "pull times recorded"),
                    Err(e) => {
                        tracing::warn!(error = ?e, "recording pull times failed; kept for the next try")
                    }
                }
            }
        });
    }

    /// Folds the storage-use deltas every `usage_fold_interval` while the server runs, on
    /// one node at a time (the `usage` lease): until none are left, in batches of one
    /// transaction each.
    fn spawn_usage_fold(&self) {
        /// Deltas per transaction: short ones, beside the pushes that write more.
        const BATCH: u32 = 5_000;
        /// Batches per run: a backlog beyond them waits for the next run.
        const MAX_BATCHES: u32 = 200;
        let Some(interval) = self.usage_fold_interval else {
            return;
        };
        let registry = self.registry.clone();
        let metrics = self.metrics.clone();
        let holder = lease_holder();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let meta = registry.meta().clone();
                let job = async move {
                    let mut folded = 0;
                    for _ in 0..MAX_BATCHES {
                        let n = meta.fold_usage(BATCH).await?;
                        folded += n;
                        if n < u64::from(BATCH) {
                            break;
                        }
                    }
                    Ok(folded)
                };
                let started = std::time::Instant::now();
                match registry.run_leased("usage", &holder, job).await {
                    Ok(Some(n)) => {
                        metrics.job_run(metrics::Job::UsageFold, true, started.elapsed());
                        tracing::debug!(deltas = n, "storage use folded");
                    }
                    Ok(None) => tracing::debug!("storage use is folded on another node"),
                    Err(e) => {
                        metrics.job_run(metrics::Job::UsageFold, false, started.elapsed());
                        tracing::error!(error = ?e, "folding storage use failed");
                    }
                }
            }
        });
    }

    /// Collects garbage every `gc_interval` while the server runs.
    fn spawn_gc(&self) {
        let Some(interval) = self.gc_interval else {
            return;
        };
        let registry = self.registry.clone();
        let metrics = self.metrics.clone();
        let opts = self.gc.clone();
        let holder = lease_holder();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await; // not at start-up: let clients reconnect first
            loop {
                tick.tick().await;
                // Nodes sharing the metadata take turns: the lease goes to one at a time.
                let job = registry.collect_garbage(&opts);
                let started = std::time::Instant::now();
                match registry.run_leased("gc", &holder, job).await {
                    Ok(Some(r)) => {
                        metrics.gc_run(Some(&r), started.elapsed());
                        metrics.job_run(metrics::Job::Gc, true, started.elapsed());
                        tracing::info!(?r, "garbage collected");
                    }
                    Ok(None) => tracing::debug!("garbage collection runs on another node"),
                    Err(e) => {
                        metrics.gc_run(None, started.elapsed());
                        metrics.job_run(metrics::Job::Gc, false, started.elapsed());
                        tracing::error!(error = ?e, "garbage collection failed");
                    }
                }
            }
        });
    }

    /// `http` or `https`, as clients reach this server.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Binds every listener the server needs: `listen` (the API's, at `main`) and
    /// `metrics-listen` when configured. Bound before the server says it listens, so that
    /// a client (or a scraper) that waits for that line is never refused, and a port in use
    /// fails the start instead of a server that half listens.
    pub async fn bind(&self, main: SocketAddr) -> anyhow::Result<Listeners> {
        let main = TcpListener::bind(main)
            .await
            .with_context(|| format!("listen: binding {main}"))?;
        let metrics = match &self.metrics_listen {
            Some((addr, router)) => {
                let listener = TcpListener::bind(*addr)
                    .await
                    .with_context(|| format!("metrics-listen: binding {addr}"))?;
                tracing::info!(addr = %listener.local_addr()?, "metrics listening");
                Some((listener, router.clone()))
            }
            None => None,
        };
        Ok(Listeners { main, metrics })
    }

    /// Serves on `listeners` until `shutdown` completes, then drains open requests (for up
    /// to 30 seconds).
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.spawn_gc();
        self.spawn_lifecycle();
        self.spawn_pull_time_flush();
        self.spawn_usage_fold();
        let registry = self.registry.clone();
        let served = self.serve_until(listeners, shutdown).await;
        // After the drain: the pulls of the last requests are written too.
        if let Err(e) = registry.flush_pull_times().await {
            tracing::warn!(error = ?e, "recording pull times at shutdown failed");
        }
        served
    }

    async fn serve_until(
        self,
        Listeners { main, metrics }: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(d) = &self.delivery {
            d.clone().spawn(self.registry.clone(), self.metrics.clone());
        }
        self.replicator
            .clone()
            .spawn(self.registries.clone(), self.metrics.clone());
        if let Some((listener, router)) = metrics {
            // Ends with the process: scrapes need no draining.
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        let handle = axum_server::Handle::new();
        let on_signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            on_signal.graceful_shutdown(Some(Duration::from_secs(30)));
        });
        let listener = main.into_std()?;
        let Some(tls) = &self.tls else {
            let idle = self.idle_timeout;
            let mut server = axum_server::from_tcp(listener)
                .handle(handle)
                .acceptor(zero_copy::ZeroCopyAcceptor)
                .map(|a| idle::FirstReadTimeout::new(a, idle));
            self.configure_http(server.http_builder());
            // Zero-copy bodies need hyper to queue body slices as they are (see
            // `blob_http::zero_copy`); it would otherwise decide from the stream.
            server.http_builder().http1().writev(true);
            return server
                .serve(
                    self.router
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .context("serving");
        };
        // Another component may have installed a provider already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rustls_config =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
        let idle = self.idle_timeout;
        let mut server = axum_server::from_tcp_rustls(listener, rustls_config)
            .handle(handle)
            .map(|a| idle::FirstReadTimeout::new(a, idle));
        self.configure_http(server.http_builder());
        server
            .serve(
                self.router
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .context("serving TLS")
    }

    /// A client must send a request's headers within the idle timeout, which also closes
    /// keep-alive connections idle that long: slow-loris clients cannot pin connections.
    fn configure_http(
        &self,
        builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    ) {
        let mut http1 = builder.http1();
        http1.timer(hyper_util::rt::TokioTimer::new());
        http1.header_read_timeout(self.idle_timeout);
        // hyper reads a body ahead of the handler (a chunk queued and one in its buffer), also
        // while the request waits for room in the memory budget: at its default of ~400 KiB,
        // 200 parts waiting held ~100 MiB outside the budget; at 64 KiB some 25 MiB, and a
        // single upload is as fast.
        http1.max_buf_size(64 * 1024);
    }
}

/// This process, as lease holders tell nodes apart.
fn lease_holder() -> String {
    format!(
        "{}:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_default(),
        std::process::id(),
        // Randomly keyed: two processes of one host and pid (a restart in a container) still
        // differ.
        std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::time::SystemTime::now()
        )
    )
}

/// ECR's limits, with the configured upload expiry and cap, and any test overrides.
fn limits(cfg: &Config) -> anyhow::Result<registry::Limits> {
    let mut limits = registry::Limits {
        upload_expiry_millis: (cfg.upload_expiry_secs as i64).saturating_mul(1000),
        max_open_uploads_per_repository: cfg.max_open_uploads,
        ..registry::Limits::default()
    };
    for o in &cfg.limit_overrides {
        let (name, value) = o
            .split_once('=')
            .with_context(|| format!("limit '{o}' is not NAME=VALUE"))?;
        let value: u64 = value
            .parse()
            .with_context(|| format!("limit '{o}': not a number"))?;
        match name {
            "max-layer-size" => limits.max_layer_size = value,
            "max-parts-per-upload" => {
                limits.max_parts_per_upload = value.try_into().context("max-parts-per-upload")?;
            }
            "body-memory-wait-ms" => {} // not a registry limit: see `body_memory_wait`
            _ => anyhow::bail!("unknown limit '{name}'"),
        }
    }
    Ok(limits)
}

/// How long a request waits for room in the memory budget: `body-memory-wait-ms=N` among
/// the test overrides (the tests throttle within a second), else the registry's default.
fn body_memory_wait(cfg: &Config) -> anyhow::Result<Duration> {
    for o in &cfg.limit_overrides {
        if let Some(ms) = o.strip_prefix("body-memory-wait-ms=") {
            let ms = ms
                .parse()
                .with_context(|| format!("limit '{o}': not a number"))?;
            return Ok(Duration::from_millis(ms));
        }
    }
    Ok(registry::BODY_MEMORY_WAIT)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
