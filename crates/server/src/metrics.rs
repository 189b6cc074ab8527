//! Prometheus metrics: every name is a constant here, and `GET /metrics` writes them in
//! Prometheus's text exposition format (version 0.0.4).
//!
//! Written by hand rather than with a client crate: every label value comes from a fixed set
//! (`classify.rs`), so there is nothing to escape or bound, and the format of counters, gauges
//! and one histogram family is a few dozen lines; `prometheus-client` would add a proc-macro
//! crate and a registry to learn for the same output (in OpenMetrics rather than the plain
//! format every scraper reads).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::classify::Api;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub const REQUESTS: &str = "berth_http_requests_total";
pub const REQUEST_DURATION: &str = "berth_http_request_duration_seconds";
pub const RECEIVED: &str = "berth_http_received_bytes_total";
pub const SENT: &str = "berth_http_sent_bytes_total";
pub const IN_FLIGHT: &str = "berth_http_requests_in_flight";
pub const UPLOADS_IN_PROGRESS: &str = "berth_uploads_in_progress";
pub const GC_RUNS: &str = "berth_gc_runs_total";
pub const GC_DELETED_BLOBS: &str = "berth_gc_deleted_blobs_total";
pub const GC_FREED: &str = "berth_gc_freed_bytes_total";
pub const GC_EXPIRED_UPLOADS: &str = "berth_gc_expired_uploads_total";
pub const GC_LAST_SUCCESS: &str = "berth_gc_last_success_timestamp_seconds";
pub const GC_LAST_DURATION: &str = "berth_gc_last_duration_seconds";
pub const JOB_RUNS: &str = "berth_job_runs_total";
pub const JOB_LAST_SUCCESS: &str = "berth_job_last_success_timestamp_seconds";
pub const JOB_LAST_DURATION: &str = "berth_job_last_duration_seconds";
pub const BUILD_INFO: &str = "berth_build_info";
pub const EVENTS_PENDING: &str = "berth_events_pending";
pub const EVENTS_GIVEN_UP: &str = "berth_events_given_up";
pub const EVENTS_DELIVERED: &str = "berth_events_delivered_total";
pub const EVENT_DELIVERY_FAILURES: &str = "berth_event_delivery_failures_total";
pub const REPOSITORY_STORAGE: &str = "berth_repository_storage_bytes";
pub const REPOSITORY_IMAGES: &str = "berth_repository_images";
pub const REGISTRY_STORAGE: &str = "berth_registry_storage_bytes";
pub const REGISTRY_IMAGES: &str = "berth_registry_images";
pub const REGISTRY_REPOSITORIES: &str = "berth_registry_repositories";
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_VSIZE: &str = "process_virtual_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_START: &str = "process_start_time_seconds";

/// Upper bounds of the latency buckets, in seconds: from a cached manifest HEAD (about a
/// millisecond) to a layer part of 20 MiB over a slow link.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// Status classes, `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One operation's requests: counts by status class and the latency histogram.
#[derive(Default)]
struct Series {
    by_class: [u64; 5],
    /// Observations per bucket (not cumulative), the last one past every bound.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
}

/// The counters of one process.
pub struct Metrics {
    requests: Mutex<BTreeMap<(Api, &'static str), Series>>,
    received: [AtomicU64; Api::ALL.len()],
    sent: [AtomicU64; Api::ALL.len()],
    in_flight: [AtomicI64; Api::ALL.len()],
    uploads_in_progress: AtomicI64,
    gc: Mutex<GcTotals>,
    events: Mutex<EventTotals>,
    jobs: Mutex<BTreeMap<Job, JobTimes>>,
}

/// The background jobs that run on a timer, one node at a time (each under its lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// Garbage collection, which also expires idle uploads.
    Gc,
    Lifecycle,
    /// One round of webhook delivery from the event outbox.
    Events,
    /// A fold of the storage-use deltas.
    UsageFold,
    /// One round of replication from its outbox.
    Replication,
}

impl Job {
    fn label(self) -> &'static str {
        match self {
            Job::Gc => "gc",
            Job::Lifecycle => "lifecycle",
            Job::Events => "events",
            Job::UsageFold => "usage_fold",
            Job::Replication => "replication",
        }
    }
}

/// A job's runs on this node; a run another node held the lease for is not one.
#[derive(Default)]
struct JobTimes {
    ok: u64,
    failed: u64,
    last_success: Option<f64>,
    last_duration: f64,
}

/// The event outbox as this node's delivery job last saw it, and its deliveries.
#[derive(Default)]
struct EventTotals {
    pending: u64,
    given_up: u64,
    delivered: u64,
    failures: u64,
}

#[derive(Default)]
struct GcTotals {
    ok: u64,
    failed: u64,
    deleted_blobs: u64,
    freed_bytes: u64,
    expired_uploads: u64,
    last_success: Option<f64>,
    last_duration: Option<f64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            received: Default::default(),
            sent: Default::default(),
            in_flight: Default::default(),
            uploads_in_progress: AtomicI64::new(0),
            gc: Mutex::default(),
            events: Mutex::default(),
            jobs: Mutex::default(),
        }
    }
}

/// Counts a request as in flight (and an upload as in progress) until dropped.
pub struct InFlight {
    metrics: Arc<Metrics>,
    api: Api,
    upload: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight[self.api.index()].fetch_sub(1, Ordering::Relaxed);
        if self.upload {
            self.metrics
                .uploads_in_progress
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Metrics {
    pub fn in_flight(self: &Arc<Self>, api: Api, upload: bool) -> InFlight {
        self.in_flight[api.index()].fetch_add(1, Ordering::Relaxed);
        if upload {
            self.uploads_in_progress.fetch_add(1, Ordering::Relaxed);
        }
        InFlight {
            metrics: self.clone(),
            api,
            upload,
        }
    }

    /// A request answered with `status` after `latency` (until its response headers).
    pub fn request(&self, api: Api, operation: &'static str, status: u16, latency: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        let secs = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry((api, operation)).or_default();
        s.by_class[class] += 1;
        s.buckets[bucket] += 1;
        s.sum_seconds += secs;
    }

    pub fn received(&self, api: Api, bytes: u64) {
        self.received[api.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn sent(&self, api: Api, bytes: u64) {
        self.sent[api.index()].fetch_add(bytes, Ordering::Relaxed);
    }

    /// One run of a background job on this node: whether it succeeded and how long it took.
    pub fn job_run(&self, job: Job, ok: bool, took: Duration) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let j = jobs.entry(job).or_default();
        j.last_duration = took.as_secs_f64();
        if ok {
            j.ok += 1;
            j.last_success = Some(unix_now());
        } else {
            j.failed += 1;
        }
    }

    /// The outbox's counts, as the delivery job read them after a round.
    pub fn event_backlog(&self, pending: u64, given_up: u64) {
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        e.pending = pending;
        e.given_up = given_up;
    }

    /// One post of an event to a webhook: taken or not.
    pub fn event_post(&self, ok: bool) {
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match ok {
            true => e.delivered += 1,
            false => e.failures += 1,
        }
    }

    /// One garbage collection: its report, or `None` if it failed.
    pub fn gc_run(&self, report: Option<&registry::GcReport>, took: Duration) {
        let mut gc = self.gc.lock().unwrap_or_else(|e| e.into_inner());
        gc.last_duration = Some(took.as_secs_f64());
        let Some(r) = report else {
            gc.failed += 1;
            return;
        };
        gc.ok += 1;
        gc.deleted_blobs += r.deleted_blobs as u64;
        gc.freed_bytes += r.freed_bytes;
        gc.expired_uploads += r.expired_uploads as u64;
        gc.last_success = Some(unix_now());
    }

    /// The exposition: every metric, then the process's own.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let w = &mut out;
        {
            let map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            header(
                w,
                REQUESTS,
                "counter",
                "Requests answered, by API, operation (ECR) or route kind (/v2), and status class.",
            );
            for ((api, op), s) in map.iter() {
                for (class, n) in CLASSES.iter().zip(s.by_class) {
                    if n > 0 {
                        let _ = writeln!(
                            w,
                            "{REQUESTS}{{api=\"{}\",operation=\"{op}\",status_class=\"{class}\"}} {n}",
                            api.label()
                        );
                    }
                }
            }
            header(
                w,
                REQUEST_DURATION,
                "histogram",
                "Time from a request's arrival to its response headers, by API and operation.",
            );
            for ((api, op), s) in map.iter() {
                let labels = format!("api=\"{}\",operation=\"{op}\"", api.label());
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        w,
                        "{REQUEST_DURATION}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                cumulative += s.buckets[BUCKETS.len()];
                let _ = writeln!(
                    w,
                    "{REQUEST_DURATION}_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
                );
                let _ = writeln!(w, "{REQUEST_DURATION}_sum{{{labels}}} {}", s.sum_seconds);
                let _ = writeln!(w, "{REQUEST_DURATION}_count{{{labels}}} {cumulative}");
            }
        }
        let per_api =
            |w: &mut String, name: &str, kind: &str, help: &str, v: &dyn Fn(Api) -> i64| {
                header(w, name, kind, help);
                for api in Api::ALL {
                    let _ = writeln!(w, "{name}{{api=\"{}\"}} {}", api.label(), v(api));
                }
            };
        per_api(
            w,
            RECEIVED,
            "counter",
            "Bytes of request bodies received.",
            &|a| self.received[a.index()].load(Ordering::Relaxed) as i64,
        );
        per_api(w, SENT, "counter", "Bytes of response bodies sent.", &|a| {
            self.sent[a.index()].load(Ordering::Relaxed) as i64
        });
        per_api(
            w,
            IN_FLIGHT,
            "gauge",
            "Requests being served, until their response body ends.",
            &|a| self.in_flight[a.index()].load(Ordering::Relaxed),
        );
        sample(
            w,
            UPLOADS_IN_PROGRESS,
            "gauge",
            "Requests sending a layer's bytes (UploadLayerPart, /v2 upload POST, PATCH and PUT) being served.",
            self.uploads_in_progress.load(Ordering::Relaxed),
        );
        {
            let gc = self.gc.lock().unwrap_or_else(|e| e.into_inner());
            header(
                w,
                GC_RUNS,
                "counter",
                "Background garbage collections this node ran, by result.",
            );
            let _ = writeln!(w, "{GC_RUNS}{{result=\"ok\"}} {}", gc.ok);
            let _ = writeln!(w, "{GC_RUNS}{{result=\"error\"}} {}", gc.failed);
            sample(
                w,
                GC_DELETED_BLOBS,
                "counter",
                "Blobs garbage collection deleted.",
                gc.deleted_blobs,
            );
            sample(
                w,
                GC_FREED,
                "counter",
                "Bytes of blobs garbage collection deleted.",
                gc.freed_bytes,
            );
            sample(
                w,
                GC_EXPIRED_UPLOADS,
                "counter",
                "Idle uploads garbage collection expired.",
                gc.expired_uploads,
            );
            if let Some(t) = gc.last_success {
                sample(
                    w,
                    GC_LAST_SUCCESS,
                    "gauge",
                    "When this node's last garbage collection succeeded (Unix time); alert when it falls far behind the interval.",
                    t,
                );
            }
            if let Some(t) = gc.last_duration {
                sample(
                    w,
                    GC_LAST_DURATION,
                    "gauge",
                    "How long this node's last garbage collection took.",
                    t,
                );
            }
        }
        {
            let e = self.events.lock().unwrap_or_else(|e| e.into_inner());
            sample(
                w,
                EVENTS_PENDING,
                "gauge",
                "Events in the outbox waiting for delivery to a webhook.",
                e.pending,
            );
            sample(
                w,
                EVENTS_GIVEN_UP,
                "gauge",
                "Events in the outbox whose delivery was given up after the last retry.",
                e.given_up,
            );
            sample(
                w,
                EVENTS_DELIVERED,
                "counter",
                "Events this node posted to a webhook that took them.",
                e.delivered,
            );
            sample(
                w,
                EVENT_DELIVERY_FAILURES,
                "counter",
                "Posts of an event to a webhook that failed (each is retried with backoff).",
                e.failures,
            );
        }
        {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            header(
                w,
                JOB_RUNS,
                "counter",
                "Runs of a background job on this node, by job and result.",
            );
            for (job, j) in jobs.iter() {
                let job = job.label();
                let _ = writeln!(w, "{JOB_RUNS}{{job=\"{job}\",result=\"ok\"}} {}", j.ok);
                let _ = writeln!(
                    w,
                    "{JOB_RUNS}{{job=\"{job}\",result=\"error\"}} {}",
                    j.failed
                );
            }
            header(
                w,
                JOB_LAST_SUCCESS,
                "gauge",
                "When a background job last succeeded on this node (Unix time); alert on time() minus the newest across nodes.",
            );
            for (job, j) in jobs.iter() {
                if let Some(t) = j.last_success {
                    let _ = writeln!(w, "{JOB_LAST_SUCCESS}{{job=\"{}\"}} {t}", job.label());
                }
            }
            header(
                w,
                JOB_LAST_DURATION,
                "gauge",
                "How long a background job's last run on this node took, whatever its result.",
            );
            for (job, j) in jobs.iter() {
                let _ = writeln!(
                    w,
                    "{JOB_LAST_DURATION}{{job=\"{}\"}} {}",
                    job.label(),
                    j.last_duration
                );
            }
        }
        header(
            w,
            BUILD_INFO,
            "gauge",
            "The version and commit of this berth.",
        );
        let _ = writeln!(
            w,
            "{BUILD_INFO}{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            crate::COMMIT
        );
        if let Some(p) = process::read() {
            sample(
                w,
                PROCESS_CPU,
                "counter",
                "CPU time (user and system) this process used.",
                p.cpu_seconds,
            );
            sample(
                w,
                PROCESS_RSS,
                "gauge",
                "Resident memory of this process.",
                p.resident_bytes,
            );
            sample(
                w,
                PROCESS_VSIZE,
                "gauge",
                "Virtual memory of this process.",
                p.virtual_bytes,
            );
            sample(
                w,
                PROCESS_OPEN_FDS,
                "gauge",
                "Open file descriptors.",
                p.open_fds,
            );
            if let Some(max) = p.max_fds {
                sample(
                    w,
                    PROCESS_MAX_FDS,
                    "gauge",
                    "The limit of open file descriptors.",
                    max,
                );
            }
            sample(
                w,
                PROCESS_START,
                "gauge",
                "When this process started (Unix time).",
                p.start_time,
            );
        }
        out
    }
}

/// Storage use, appended to [`Metrics::render`]'s exposition: every registry's totals, and
/// the largest repositories (as many as `metrics-repositories` allows: with 100,000
/// repositories a series each would swamp the scraper, and the few largest are the ones to
/// watch). The figures are the metadata store's, the same on every node: aggregate them
/// across nodes with `max`, not `sum`. The `registry` label is the registry's key: the
/// account id, or `public:<account id>` for its ECR Public registry.
pub fn render_usage(w: &mut String, usage: &storage::StorageUsage) {
    let registry = |service: model::Service, account: &str| {
        escape(&service.registry_key(account)).into_owned()
    };
    header(
        w,
        REGISTRY_STORAGE,
        "gauge",
        "Bytes a registry's repositories use: the blobs each links (each once per repository) and its manifests.",
    );
    for r in &usage.registries {
        let _ = writeln!(
            w,
            "{REGISTRY_STORAGE}{{registry=\"{}\"}} {}",
            registry(r.service, &r.registry_id),
            r.bytes
        );
    }
    header(w, REGISTRY_IMAGES, "gauge", "Images a registry holds.");
    for r in &usage.registries {
        let _ = writeln!(
            w,
            "{REGISTRY_IMAGES}{{registry=\"{}\"}} {}",
            registry(r.service, &r.registry_id),
            r.images
        );
    }
    header(
        w,
        REGISTRY_REPOSITORIES,
        "gauge",
        "Repositories a registry holds.",
    );
    for r in &usage.registries {
        let _ = writeln!(
            w,
            "{REGISTRY_REPOSITORIES}{{registry=\"{}\"}} {}",
            registry(r.service, &r.registry_id),
            r.repositories
        );
    }
    if usage.largest.is_empty() {
        return;
    }
    header(
        w,
        REPOSITORY_STORAGE,
        "gauge",
        "Bytes a repository uses: the blobs it links (layers and configs, each once) and its manifests; the largest repositories only.",
    );
    for r in &usage.largest {
        let _ = writeln!(
            w,
            "{REPOSITORY_STORAGE}{{registry=\"{}\",repository=\"{}\"}} {}",
            registry(r.service, &r.registry_id),
            escape(r.name.as_str()),
            r.bytes
        );
    }
    header(
        w,
        REPOSITORY_IMAGES,
        "gauge",
        "Images a repository holds; the repositories of berth_repository_storage_bytes only.",
    );
    for r in &usage.largest {
        let _ = writeln!(
            w,
            "{REPOSITORY_IMAGES}{{registry=\"{}\",repository=\"{}\"}} {}",
            registry(r.service, &r.registry_id),
            escape(r.name.as_str()),
            r.images
        );
    }
}

/// A label value as the text format writes it. Repository names and registry keys hold none
/// of the three characters to escape; this keeps a future name from breaking the format.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// Whether a request to `/metrics` carries `Authorization: Bearer <token>`. The comparison
/// takes the same time wherever the first difference is (an HMAC's constant-time check), so
/// that the token cannot be guessed a byte at a time.
pub fn bearer_matches(headers: &axum::http::HeaderMap, token: &str) -> bool {
    use hmac::{Mac, digest::KeyInit};
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
    else {
        return false;
    };
    let mac = |t: &str| {
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"berth /metrics")
            .expect("HMAC takes any key");
        m.update(t.as_bytes());
        m
    };
    let want = mac(token).finalize().into_bytes();
    mac(given).verify_slice(&want).is_ok()
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(w: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    header(w, name, kind, help);
    let _ = writeln!(w, "{name} {v}");
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The process's own figures, from `/proc` (Linux; elsewhere they are left out).
mod process {
    pub struct Figures {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub virtual_bytes: u64,
        pub open_fds: u64,
        pub max_fds: Option<u64>,
        pub start_time: f64,
    }

    /// `/proc`'s clock ticks are USER_HZ, which the kernel fixes at 100 for userspace on
    /// every architecture Linux runs berth on (the value `getconf CLK_TCK` prints).
    const TICKS_PER_SECOND: f64 = 100.0;

    pub fn read() -> Option<Figures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // stat(5) numbers fields from 1 (pid), 2 (comm), 3 (state): field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let (utime, stime, start_ticks) = (field(14)?, field(15)?, field(22)?);
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
                .map(|k| k * 1024)
        };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<u64>()
            .ok()?;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))?
                    .split_whitespace()
                    .nth(3)?
                    .parse()
                    .ok()
            });
        Some(Figures {
            cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
            resident_bytes: kib("VmRSS:")?,
            virtual_bytes: kib("VmSize:")?,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
            max_fds,
            start_time: boot as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_class_and_buckets() {
        let m = Metrics::default();
        m.request(Api::Ecr, "PutImage", 200, Duration::from_millis(3));
        m.request(Api::Ecr, "PutImage", 200, Duration::from_secs(500));
        m.request(Api::Ecr, "PutImage", 404, Duration::from_millis(1));
        let text = m.render();
        assert!(text.contains(
            "berth_http_requests_total{api=\"ecr\",operation=\"PutImage\",status_class=\"2xx\"} 2\n"
        ));
        assert!(text.contains(
            "berth_http_requests_total{api=\"ecr\",operation=\"PutImage\",status_class=\"4xx\"} 1\n"
        ));
        let bucket = |le: &str| {
            format!(
                "berth_http_request_duration_seconds_bucket{{api=\"ecr\",operation=\"PutImage\",le=\"{le}\"}} "
            )
        };
        assert!(text.contains(&format!("{}1\n", bucket("0.001"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("0.005"))));
        assert!(text.contains(&format!("{}2\n", bucket("120"))));
        assert!(text.contains(&format!("{}3\n", bucket("+Inf"))));
        assert!(text.contains(
            "berth_http_request_duration_seconds_count{api=\"ecr\",operation=\"PutImage\"} 3\n"
        ));
    }

    #[test]
    fn the_token_is_a_bearer_token_compared_whole() {
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(&with("bearer s3cret"), "s3cret"));
        for refused in [
            "Bearer s3cre",
            "Bearer s3cretx",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            assert!(!bearer_matches(&with(refused), "s3cret"), "{refused}");
        }
        assert!(!bearer_matches(&axum::http::HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn usage_series_name_registries_and_the_largest_repositories() {
        let usage = storage::StorageUsage {
            largest: vec![storage::RepositoryStorage {
                service: model::Service::Public,
                registry_id: "123456789012".into(),
                name: model::RepositoryName::parse("team/app").unwrap(),
                images: 2,
                bytes: 4096,
            }],
            registries: vec![storage::RegistryStorage {
                service: model::Service::Private,
                registry_id: "123456789012".into(),
                repositories: 3,
                images: 5,
                bytes: 10,
            }],
        };
        let mut text = String::new();
        render_usage(&mut text, &usage);
        for line in [
            "berth_registry_storage_bytes{registry=\"123456789012\"} 10\n",
            "berth_registry_images{registry=\"123456789012\"} 5\n",
            "berth_registry_repositories{registry=\"123456789012\"} 3\n",
            "berth_repository_storage_bytes{registry=\"public:123456789012\",repository=\"team/app\"} 4096\n",
            "berth_repository_images{registry=\"public:123456789012\",repository=\"team/app\"} 2\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn process_figures_come_from_proc() {
        let p = process::read().expect("/proc on Linux");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds > 0);
        let now = unix_now();
        assert!(p.start_time <= now + 1.0 && p.start_time > now - 86_400.0);
    }
}
