//! berth's configuration, loaded in layers: built-in defaults, then the TOML file (`--config`),
//! then `BERTH_*` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The effective configuration of `berth serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address and port to listen on. Default `127.0.0.1:5000`.
    pub listen: SocketAddr,
    /// Directory for blobs, the metadata database and the signing key. Default `./berth-data`.
    pub data_dir: PathBuf,
    /// Where the metadata lives: `postgres://user@host:port/db` (shared by several nodes) or
    /// `sqlite://PATH`. Default: SQLite in the data directory.
    pub metadata: Option<storage::Metadata>,
    /// The default region: what a `/v2` request to the bare host and the web UI (unless its URL
    /// names another) address, and what a new data directory records as its home region.
    /// Default `us-east-1`.
    pub region: String,
    /// The one region the ECR Public API answers in (AWS offers it in `us-east-1` only); a
    /// request signed for another gets UnsupportedCommandException. Default `us-east-1`.
    pub public_region: String,
    /// The 12-digit account (registry id) callers belong to. Default `000000000000`.
    pub account_id: String,
    /// Base URL clients reach berth at, for download URLs and `proxyEndpoint`. Default: the
    /// scheme and `Host` of each request.
    pub public_url: Option<String>,
    /// Create a missing repository with default settings on a `/v2` push instead of answering
    /// NAME_UNKNOWN, when no repository creation template with CREATE_ON_PUSH covers its name
    /// (such a template creates it either way, as in ECR). The ECR API still requires
    /// CreateRepository. Default false.
    pub create_on_push: bool,
    /// Let `DELETE /v2/<name>/blobs/<digest>` unlink a blob that no image of the repository
    /// references (garbage collection reclaims the bytes later). When false, such a DELETE
    /// answers 405 UNSUPPORTED. Default true.
    pub blob_delete: bool,
    /// Repository name patterns (`*` matches any run of characters) that anyone may pull
    /// through `/v2` without logging in. Default: none.
    pub anonymous_pull: Vec<String>,
    /// Access keys whose SigV4 signatures are verified. With none, any well-formed signature is
    /// accepted (laptop mode), which berth allows only on loopback unless
    /// `insecure_accept_any_signature` is set.
    pub access_keys: Vec<auth::Identity>,
    /// Allow listening beyond loopback with no access keys. Default false.
    pub insecure_accept_any_signature: bool,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP. Default: none.
    pub tls: Option<TlsConfig>,
    /// The key registry passwords and download URLs are signed with (32 bytes, created if
    /// absent). Every node of one deployment must use the same file. Default:
    /// `<data-dir>/signing.key`.
    pub signing_key_file: PathBuf,
    /// Seconds between background garbage collections; 0 turns them off. Default 3600.
    pub gc_interval_secs: u64,
    /// Seconds an unreferenced blob (or an unknown file) is kept before GC may remove it.
    /// Default 3600.
    pub gc_grace_secs: u64,
    /// Seconds an upload may receive nothing before it expires. Default 86400.
    pub upload_expiry_secs: u64,
    /// Open uploads one repository may have at once. Default 1000.
    pub max_open_uploads: u64,
    /// Seconds a connection may stay silent: while sending request headers (or idle between
    /// requests) and between pieces of a request body. Stops slow-loris clients holding
    /// connections and uploads open. Default 60 (an AWS load balancer's idle timeout).
    pub idle_timeout_secs: u64,
    /// Re-hash every whole-blob read on its way out, so a blob corrupted on disk fails the
    /// transfer instead of being served. Costs a core per ~1.4 GB/s and rules out zero-copy
    /// serving; clients verify digests themselves and `berth fsck` scrubs. Default false.
    pub verify_reads: bool,
    /// Where blobs live: `None` for files under the data directory (the default), or
    /// `s3://bucket[/prefix]` for S3-compatible object storage, with the endpoint, region and
    /// credentials of the AWS environment.
    pub blobs: Option<String>,
    /// With blobs on S3: whether clients download layers straight from S3 (presigned URLs
    /// from GetDownloadUrlForLayer, 307 redirects from `/v2` blob GETs) rather than through
    /// berth. `None` (the default) decides by the endpoint: on for a non-loopback endpoint,
    /// off for a loopback one, which clients on other hosts cannot reach.
    pub blob_redirect: Option<bool>,
    /// Bytes of upload bodies held in memory at once, across both APIs (an UploadLayerPart is
    /// held whole until its signature checks; a `/v2` upload holds a 2 MiB window of its
    /// stream). A request past it waits up to 5 s, then is refused as throttled. Default: a
    /// sixteenth of the machine's (or cgroup's) memory, between 256 MiB and 4 GiB.
    pub max_inflight_part_bytes: u64,
    /// Limit overrides (tests only): `max-layer-size=N`, `max-parts-per-upload=N`,
    /// `body-memory-wait-ms=N`.
    pub limit_overrides: Vec<String>,
    /// Crash points to arm (tests only; see `Registry::failpoint`). Default: none.
    pub failpoints: Vec<String>,
    /// The public registry (ECR Public) alias of `account-id`: its repositories are
    /// `<host>/<alias>/<name>`. 2-50 characters, `[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*`.
    /// Default: generated from the account id (eight characters, the same on every node).
    pub public_registry_alias: Option<String>,
    /// Public registry aliases of other accounts (`[public-registry-aliases]` in the file,
    /// `"<account>" = "<alias>"`). Accounts not named get generated aliases. Default: none.
    pub public_registry_aliases: Vec<(String, String)>,
    // Access control (issue 19).
    /// Each access key's identity policy and tags (`policy`, `policy-file`, `tags` of
    /// `[[access-keys]]`). A key without a policy may do anything in its own account.
    pub key_access: Vec<registry::KeyAccess>,
    /// A header set by a trusted reverse proxy (e.g. `X-Forwarded-For`) whose first address is
    /// the client's `aws:SourceIp`. Default: none (the peer's address).
    pub trusted_proxy_header: Option<String>,
    /// Request-rate quotas per principal and node: operation -> requests per second (0: no
    /// limit), over ECR's documented rates (`registry::DEFAULT_RATES`). `[rate-limits]` in the
    /// file, `--rate-limit Op=N` on the command line.
    pub rate_limits: Vec<(String, u64)>,
    /// Seconds of its rate a quota lets through at once. Default 5.
    pub rate_limit_burst_secs: u64,
    /// The audit trail's file (CloudTrail-shaped JSON lines, rotated by size); `None` keeps
    /// none. Default: `<data-dir>/audit/audit.log`.
    pub audit_log: Option<PathBuf>,
    /// Bytes an audit file holds before it is rotated (5 rotated files are kept). Default 64 MiB.
    pub audit_log_max_bytes: u64,

    // Operating berth: connection pools, metrics, logs.
    /// With the metadata in PostgreSQL: connections a node keeps for metadata statements.
    /// Default 16.
    pub metadata_pool_size: u32,
    /// With the metadata in PostgreSQL: connections a node keeps for the GC fence (one per
    /// completion or mount in flight). Default 32.
    pub fence_pool_size: u32,
    /// Serve `/metrics` on a listener of its own at this address, and not on the main one.
    /// Default: none, `/metrics` is served on the main listener without authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// How log lines on stderr look: `text` (for people, the default) or `json` (one object
    /// per line, for log collectors).
    pub log_format: LogFormat,

    // Lifecycle policies.
    /// Seconds between runs of the lifecycle policies (one node at a time, under a lease); 0
    /// turns the background runs off (`berth lifecycle run` still runs them). Default 3600:
    /// ECR acts on a policy within 24 hours, berth within the hour.
    pub lifecycle_interval_secs: u64,
    /// Seconds added to the clock that push times and lifecycle ages are read from (tests
    /// only: images pushed under a negative offset are old). Default 0.
    pub clock_offset_secs: i64,

    // Web UI.
    /// Serve the web UI at `/ui/` (sign-in with an access key or a registry token). Default
    /// true.
    pub ui: bool,
    // Pull-through cache (issue 16).
    /// Seconds between checks of a cached tag against its upstream registry. Default 86400:
    /// ECR checks at most once every 24 hours.
    pub pull_through_refresh_secs: u64,
    /// Allow pull-through cache upstreams at `http://` on hosts that are not loopback.
    /// Default false (loopback may always be `http://`).
    pub allow_http_upstreams: bool,
    /// The secrets `credentialArn`s name (`[[upstream-credentials]]`), by ARN.
    pub upstream_credentials: Vec<(String, crate::upstream::UpstreamSecret)>,
    // Events (issue 17).
    /// Where ECR's image events are posted (`[[webhooks]]`); none: no events are recorded.
    pub webhooks: Vec<WebhookConfig>,
    /// Delivery rounds an event gets before it is given up. Default 12.
    pub webhook_max_attempts: u32,
    /// Milliseconds before the first retry; each later one waits twice as long, up to an hour.
    /// Default 1000.
    pub webhook_retry_base_ms: u64,
    // Image archival and pull times (issue 15).
    /// Seconds a restore from the archive storage class takes (UpdateImageStorageClass to
    /// STANDARD): the image is ACTIVATING, and cannot be pulled, until then. Default 10 (ECR
    /// takes up to some 20 minutes).
    pub archive_restore_secs: u64,
    /// Seconds between writes of the pull times noted in memory (`lastRecordedPullTime`);
    /// they are also written on shutdown. Default 5.
    pub pull_time_flush_secs: u64,
    // Regions (issue 15 section 1).
    /// The regions served; a request signed for another is refused as AWS refuses a region it
    /// does not know. Empty (the default): every well-formed region name, so that a client
    /// configured for any region works with no setup. `region` must be one of them.
    pub regions: Vec<String>,
    /// The domain of registry host names: `/v2` requests to `<account>.dkr.ecr.<region>.<domain>`
    /// address that registry, and `repositoryUri` and `proxyEndpoint` are written that way.
    /// Default none: every host is the caller's registry in the default region.
    pub registry_domain: Option<String>,
    // Storage use and access to /metrics (issue 17 §1).
    /// A bearer token `/metrics` requires (`Authorization: Bearer <token>`), on whichever
    /// listener serves it. Default: none.
    pub metrics_token: Option<String>,
    /// How many repositories `/metrics` reports storage use for, the largest first (each is two
    /// series). Default: 100 where `/metrics` is protected (`metrics-listen` or
    /// `metrics-token`), 0 where anyone who reaches the main port may read it, since the
    /// series name repositories.
    pub metrics_repositories: u32,
    /// Seconds between folds of the storage-use deltas (one node at a time, under a lease); 0
    /// turns them off. Readings include pending deltas either way: folding keeps them cheap.
    /// Default 60.
    pub usage_fold_interval_secs: u64,
    // Replication (issue 16).
    /// Registries outside this deployment that replication destinations name
    /// (`[[replication-remotes]]`).
    pub replication_remotes: Vec<ReplicationRemoteConfig>,
    /// Attempts of one image's replication to one destination before it is FAILED. Default 10.
    pub replication_max_attempts: u32,
    /// Milliseconds before the first retry of a failed replication; each later one waits
    /// twice as long, up to an hour. Default 1000.
    pub replication_retry_base_ms: u64,
}

/// One `[[replication-remotes]]` entry: a replication destination `(region, registry-id)`
/// that is another registry (another berth, any OCI registry), reached over `/v2` at `url`
/// with Basic credentials (`username` and `password`) or a bearer `token`. Repositories keep
/// their names there; a registry that requires them to exist first must have them (berth:
/// `--create-on-push` or a CREATE_ON_PUSH template).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReplicationRemoteConfig {
    /// The destination's `region` in replication rules.
    pub region: String,
    /// The destination's `registryId` in replication rules (12 digits).
    pub registry_id: String,
    /// `https://host[:port]`, or `http://` to a loopback host (any host with
    /// `allow-http-upstreams`).
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

/// One `[[webhooks]]` entry: where events go, which ones, and how they are signed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookConfig {
    /// `https://...`, or `http://` to a loopback address.
    pub url: String,
    /// Signs each body: `X-Berth-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    pub secret: Option<String>,
    /// Only events of these `detail-type`s (e.g. "ECR Image Action"). Default: all.
    #[serde(default)]
    pub detail_types: Vec<String>,
    /// Only these `action-type`s ("PUSH", "DELETE", "REPLICATE"); events without one (the
    /// pull-through cache's) do not match a set filter. Default: all.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Only repositories whose name starts with this. Default: all.
    pub repository_prefix: Option<String>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[access-keys]]` entry of the TOML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AccessKeyConfig {
    /// The access key id clients sign with.
    pub id: String,
    /// The secret access key; or give `secret-file`.
    pub secret: Option<String>,
    /// A file holding the secret access key (trailing whitespace ignored).
    pub secret_file: Option<PathBuf>,
    /// The key's account (registry id). Default: `account-id`.
    pub account_id: Option<String>,
    /// The key's principal. Default: `arn:aws:iam::<account>:user/<id>`.
    pub arn: Option<String>,
    /// When set, requests must carry this `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    // Access control (issue 19).
    /// The key's IAM identity policy (JSON); or give `policy-file`. Default: none, which
    /// allows everything in the key's own account that no resource policy denies.
    pub policy: Option<String>,
    /// A file holding the key's identity policy.
    pub policy_file: Option<PathBuf>,
    /// The key's tags, read by `aws:PrincipalTag/<key>` conditions.
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// One `[[upstream-credentials]]` entry: the secret a pull-through cache rule's
/// `credentialArn` names, given as `username` and `password`, as a bearer `token`, or as a
/// `file` holding ECR's secret JSON (`{"username": ..., "accessToken": ...}`, read at each
/// use).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UpstreamCredentialConfig {
    /// `arn:aws:secretsmanager:<region>:<account>:secret:ecr-pullthroughcache/<name>`.
    pub arn: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".parse().expect("valid default address"),
            data_dir: PathBuf::from("./berth-data"),
            metadata: None,
            region: "us-east-1".into(),
            public_region: "us-east-1".into(),
            account_id: "000000000000".into(),
            public_url: None,
            create_on_push: false,
            blob_delete: true,
            anonymous_pull: vec![],
            access_keys: vec![],
            insecure_accept_any_signature: false,
            tls: None,
            signing_key_file: PathBuf::from("./berth-data/signing.key"),
            gc_interval_secs: 3600,
            gc_grace_secs: 3600,
            upload_expiry_secs: 86_400,
            max_open_uploads: 1_000,
            idle_timeout_secs: 60,
            verify_reads: false,
            blobs: None,
            blob_redirect: None,
            max_inflight_part_bytes: registry::default_budget_bytes(),
            limit_overrides: vec![],
            failpoints: vec![],
            public_registry_alias: None,
            public_registry_aliases: vec![],
            key_access: vec![],
            trusted_proxy_header: None,
            rate_limits: vec![],
            rate_limit_burst_secs: registry::DEFAULT_RATE_BURST_SECS as u64,
            audit_log: Some(PathBuf::from("./berth-data/audit/audit.log")),
            audit_log_max_bytes: crate::audit::DEFAULT_MAX_BYTES,

            metadata_pool_size: storage::PostgresPools::default().metadata,
            fence_pool_size: storage::PostgresPools::default().fence,
            metrics_listen: None,
            log_format: LogFormat::Text,

            lifecycle_interval_secs: 3600,
            clock_offset_secs: 0,

            ui: true,
            pull_through_refresh_secs: 86_400,
            allow_http_upstreams: false,
            upstream_credentials: vec![],
            webhooks: Vec::new(),
            webhook_max_attempts: 12,
            webhook_retry_base_ms: 1000,
            archive_restore_secs: registry::DEFAULT_RESTORE_DELAY_MILLIS as u64 / 1000,
            pull_time_flush_secs: 5,

            regions: vec![],
            registry_domain: None,
            metrics_token: None,
            metrics_repositories: 0,
            usage_fold_interval_secs: 60,
            replication_remotes: Vec::new(),
            replication_max_attempts: 10,
            replication_retry_base_ms: 1000,
        }
    }
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub metadata: Option<String>,
    pub region: Option<String>,
    pub public_region: Option<String>,
    pub account_id: Option<String>,
    pub public_url: Option<String>,
    pub create_on_push: Option<bool>,
    pub blob_delete: Option<bool>,
    pub anonymous_pull: Option<Vec<String>>,
    pub access_keys: Option<Vec<AccessKeyConfig>>,
    pub insecure_accept_any_signature: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub signing_key_file: Option<PathBuf>,
    pub gc_interval_secs: Option<u64>,
    pub gc_grace_secs: Option<u64>,
    pub upload_expiry_secs: Option<u64>,
    pub max_open_uploads: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub verify_reads: Option<bool>,
    pub blobs: Option<String>,
    pub blob_redirect: Option<bool>,
    /// Bytes, or a string with a K, M or G suffix (`"1536M"`).
    pub max_inflight_part_bytes: Option<ByteSize>,
    pub public_registry_alias: Option<String>,
    /// `"<account>" = "<alias>"`.
    pub public_registry_aliases: Option<std::collections::BTreeMap<String, String>>,
    // Access control (issue 19).
    pub trusted_proxy_header: Option<String>,
    /// `Operation = requests per second`.
    pub rate_limits: Option<std::collections::BTreeMap<String, u64>>,
    pub rate_limit_burst_secs: Option<u64>,
    /// A path, or `""` for no audit trail.
    pub audit_log: Option<PathBuf>,
    pub audit_log_max_bytes: Option<ByteSize>,

    pub metadata_pool_size: Option<u32>,
    pub fence_pool_size: Option<u32>,
    pub metrics_listen: Option<String>,
    pub log_format: Option<LogFormat>,

    pub lifecycle_interval_secs: Option<u64>,

    pub ui: Option<bool>,
    pub pull_through_refresh_secs: Option<u64>,
    pub allow_http_upstreams: Option<bool>,
    pub upstream_credentials: Option<Vec<UpstreamCredentialConfig>>,
    pub webhooks: Option<Vec<WebhookConfig>>,
    pub webhook_max_attempts: Option<u32>,
    pub webhook_retry_base_ms: Option<u64>,
    pub archive_restore_secs: Option<u64>,
    pub pull_time_flush_secs: Option<u64>,

    pub regions: Option<Vec<String>>,
    pub registry_domain: Option<String>,
    pub metrics_token: Option<String>,
    pub metrics_repositories: Option<u32>,
    pub usage_fold_interval_secs: Option<u64>,
    pub replication_remotes: Option<Vec<ReplicationRemoteConfig>>,
    pub replication_max_attempts: Option<u32>,
    pub replication_retry_base_ms: Option<u64>,
}

/// A size in bytes: a number, or a string with a binary `K`, `M` or `G` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (digits, shift) = [
            ("GiB", 30),
            ("MiB", 20),
            ("KiB", 10),
            ("G", 30),
            ("M", 20),
            ("K", 10),
            ("", 0),
        ]
        .into_iter()
        .find_map(|(unit, shift)| t.strip_suffix(unit).map(|d| (d, shift)))
        .unwrap_or((t, 0));
        let n: u64 = digits
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a size (bytes, or a number with K, M or G)"))?;
        n.checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("'{s}' is too large"))
    }
}

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;

    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(n) => u64::try_from(n)
                .map(ByteSize)
                .map_err(|_| format!("{n} is not a size")),
            toml::Value::String(s) => s.parse(),
            other => Err(format!("{} is not a size", other.type_str())),
        }
    }
}

/// Values from the environment or flags (clap merges those two, flags winning).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<String>,
    /// Data directory [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the metadata lives: postgres://USER@HOST:PORT/DB or sqlite://PATH [default: SQLite in the data directory]
    #[arg(long, env = "BERTH_METADATA")]
    pub metadata: Option<String>,
    /// Default region: of /v2 requests to the bare host and the web UI [default: us-east-1].
    #[arg(long, env = "BERTH_REGION")]
    pub region: Option<String>,
    /// The region ECR Public answers in; requests signed for another get UnsupportedCommandException [default: us-east-1].
    #[arg(long, env = "BERTH_PUBLIC_REGION")]
    pub public_region: Option<String>,
    /// Account id (registry id) of callers [default: 000000000000].
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Public base URL, e.g. https://registry.example.com [default: from the Host header].
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Create missing repositories on /v2 push [default: false].
    #[arg(long, env = "BERTH_CREATE_ON_PUSH", num_args = 0..=1, default_missing_value = "true")]
    pub create_on_push: Option<bool>,
    /// Let /v2 DELETE unlink blobs no image references [default: true].
    #[arg(long, env = "BERTH_BLOB_DELETE", num_args = 0..=1, default_missing_value = "true")]
    pub blob_delete: Option<bool>,
    /// Repository patterns anyone may pull without login, e.g. 'public/*' (repeatable, or comma-separated in the env).
    #[arg(long, env = "BERTH_ANONYMOUS_PULL", value_delimiter = ',')]
    pub anonymous_pull: Vec<String>,
    /// An access key to verify signatures with (adds to the file's [[access-keys]]).
    #[arg(long, env = "BERTH_ACCESS_KEY_ID", requires = "secret")]
    pub access_key_id: Option<String>,
    /// Its secret access key (prefer the environment or a file to a flag).
    #[arg(
        long,
        env = "BERTH_SECRET_ACCESS_KEY",
        hide_env_values = true,
        group = "secret"
    )]
    pub secret_access_key: Option<String>,
    /// A file holding its secret access key.
    #[arg(long, env = "BERTH_SECRET_ACCESS_KEY_FILE", group = "secret")]
    pub secret_access_key_file: Option<PathBuf>,
    /// Accept any well-formed signature even when listening beyond loopback with no access keys.
    #[arg(long, env = "BERTH_INSECURE_ACCEPT_ANY_SIGNATURE", num_args = 0..=1, default_missing_value = "true")]
    pub insecure_accept_any_signature: Option<bool>,
    /// PEM certificate (chain) to serve HTTPS with; needs --tls-key.
    #[arg(long, env = "BERTH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "BERTH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Key file for registry passwords and download URLs, shared by all nodes [default: <data-dir>/signing.key].
    #[arg(long, env = "BERTH_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Seconds between background garbage collections, 0 for none [default: 3600].
    #[arg(long, env = "BERTH_GC_INTERVAL_SECS")]
    pub gc_interval_secs: Option<u64>,
    /// Seconds an unreferenced blob is kept before GC may remove it [default: 3600].
    #[arg(long, env = "BERTH_GC_GRACE_SECS")]
    pub gc_grace_secs: Option<u64>,
    /// Seconds an upload may receive nothing before it expires [default: 86400].
    #[arg(long, env = "BERTH_UPLOAD_EXPIRY_SECS")]
    pub upload_expiry_secs: Option<u64>,
    /// Open uploads one repository may have at once [default: 1000].
    #[arg(long, env = "BERTH_MAX_OPEN_UPLOADS")]
    pub max_open_uploads: Option<u64>,
    /// Seconds a client may send nothing (headers, body, or between requests) before its connection is closed [default: 60].
    #[arg(long, env = "BERTH_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Re-hash whole-blob reads as they are served (no zero-copy) [default: false].
    #[arg(long, env = "BERTH_VERIFY_READS", num_args = 0..=1, default_missing_value = "true")]
    pub verify_reads: Option<bool>,
    /// Where blobs live: s3://bucket/prefix for S3-compatible storage (endpoint, region and credentials from AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) [default: files in the data directory].
    #[arg(long, env = "BERTH_BLOBS")]
    pub blobs: Option<String>,
    /// With blobs on S3, send clients to presigned S3 URLs for layer downloads [default: on unless the S3 endpoint is loopback].
    #[arg(long, env = "BERTH_BLOB_REDIRECT", num_args = 0..=1, default_missing_value = "true")]
    pub blob_redirect: Option<bool>,
    /// Bytes of upload bodies held in memory at once, e.g. 1536M; past it requests are throttled [default: 1/16 of memory, 256M..4G].
    #[arg(long, env = "BERTH_MAX_INFLIGHT_PART_BYTES")]
    pub max_inflight_part_bytes: Option<ByteSize>,
    /// Public registry (ECR Public) alias of --account-id: public repositories are HOST/ALIAS/NAME [default: generated from the account id].
    #[arg(long, env = "BERTH_PUBLIC_REGISTRY_ALIAS")]
    pub public_registry_alias: Option<String>,
    /// Registry limit overrides, for tests only: max-layer-size=N, max-parts-per-upload=N or body-memory-wait-ms=N.
    #[arg(long = "limit", hide = true)]
    pub limit_overrides: Vec<String>,
    /// Crash points to arm, for the crash tests only: the process aborts on reaching one.
    #[arg(long = "failpoint", hide = true)]
    pub failpoints: Vec<String>,
    // Access control (issue 19).
    /// Header a trusted reverse proxy sets to the client's address (e.g. X-Forwarded-For), read for aws:SourceIp [default: the peer's address].
    #[arg(long, env = "BERTH_TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    /// Request-rate quota per principal and node, e.g. PutImage=20; 0 lifts it, '*' names every operation (repeatable, or comma-separated in the env) [default: ECR's rates].
    #[arg(long = "rate-limit", env = "BERTH_RATE_LIMITS", value_delimiter = ',')]
    pub rate_limits: Vec<String>,
    /// Seconds of its rate a quota lets through at once [default: 5].
    #[arg(long, env = "BERTH_RATE_LIMIT_BURST_SECS")]
    pub rate_limit_burst_secs: Option<u64>,
    /// Audit trail file, '' for none [default: <data-dir>/audit/audit.log].
    #[arg(long, env = "BERTH_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Bytes an audit file holds before rotating, e.g. 64M [default: 64M].
    #[arg(long, env = "BERTH_AUDIT_LOG_MAX_BYTES")]
    pub audit_log_max_bytes: Option<ByteSize>,

    /// With PostgreSQL metadata: connections each node keeps for metadata statements [default: 16].
    #[arg(long, env = "BERTH_METADATA_POOL_SIZE")]
    pub metadata_pool_size: Option<u32>,
    /// With PostgreSQL metadata: connections each node keeps for the GC fence [default: 32].
    #[arg(long, env = "BERTH_FENCE_POOL_SIZE")]
    pub fence_pool_size: Option<u32>,
    /// Serve /metrics on its own listener at ADDR:PORT instead of the main one [default: on the main listener, no authentication].
    #[arg(long, env = "BERTH_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Log lines as text or as JSON objects [default: text].
    #[arg(long, env = "BERTH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Seconds between lifecycle policy runs, 0 for none [default: 3600].
    #[arg(long, env = "BERTH_LIFECYCLE_INTERVAL_SECS")]
    pub lifecycle_interval_secs: Option<u64>,
    /// Seconds added to the registry's clock, for tests only (ages images without sleeping).
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub clock_offset_secs: Option<i64>,

    /// Serve the web UI at /ui/ [default: true].
    #[arg(long, env = "BERTH_UI", num_args = 0..=1, default_missing_value = "true")]
    pub ui: Option<bool>,
    /// Seconds between checks of a cached tag against its upstream registry [default: 86400].
    #[arg(long, env = "BERTH_PULL_THROUGH_REFRESH_SECS")]
    pub pull_through_refresh_secs: Option<u64>,
    /// Allow pull-through cache upstreams at http:// on hosts that are not loopback [default: false].
    #[arg(long, env = "BERTH_ALLOW_HTTP_UPSTREAMS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_http_upstreams: Option<bool>,
    /// Seconds a restore from the archive storage class takes [default: 10].
    #[arg(long, env = "BERTH_ARCHIVE_RESTORE_SECS")]
    pub archive_restore_secs: Option<u64>,
    /// Seconds between writes of recorded pull times [default: 5].
    #[arg(long, env = "BERTH_PULL_TIME_FLUSH_SECS")]
    pub pull_time_flush_secs: Option<u64>,

    /// A region to serve (repeatable, or comma-separated in the env) [default: every region name].
    #[arg(long = "regions", env = "BERTH_REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Domain of registry host names <account>.dkr.ecr.<region>.<domain>, e.g. 'localhost' [default: none].
    #[arg(long, env = "BERTH_REGISTRY_DOMAIN")]
    pub registry_domain: Option<String>,

    /// A bearer token /metrics requires (prefer the environment to a flag) [default: none].
    #[arg(long, env = "BERTH_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Repositories /metrics reports storage use for, largest first [default: 100 if /metrics has its own listener or a token, else 0].
    #[arg(long, env = "BERTH_METRICS_REPOSITORIES")]
    pub metrics_repositories: Option<u32>,
    /// Seconds between folds of the storage-use deltas, 0 for none [default: 60].
    #[arg(long, env = "BERTH_USAGE_FOLD_INTERVAL_SECS")]
    pub usage_fold_interval_secs: Option<u64>,
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<Self> {
        let file = match &o.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let listen = o.listen.clone().or(file.listen);
        let data_dir = o.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir);
        let signing_key_file = o
            .signing_key_file
            .clone()
            .or(file.signing_key_file)
            .unwrap_or_else(|| data_dir.join("signing.key"));
        let mut cfg = Config {
            listen: match listen {
                Some(s) => s
                    .parse()
                    .with_context(|| format!("listen: '{s}' is not an ADDR:PORT"))?,
                None => d.listen,
            },
            signing_key_file,
            gc_interval_secs: o
                .gc_interval_secs
                .or(file.gc_interval_secs)
                .unwrap_or(d.gc_interval_secs),
            gc_grace_secs: o
                .gc_grace_secs
                .or(file.gc_grace_secs)
                .unwrap_or(d.gc_grace_secs),
            upload_expiry_secs: o
                .upload_expiry_secs
                .or(file.upload_expiry_secs)
                .unwrap_or(d.upload_expiry_secs),
            max_open_uploads: o
                .max_open_uploads
                .or(file.max_open_uploads)
                .unwrap_or(d.max_open_uploads),
            idle_timeout_secs: o
                .idle_timeout_secs
                .or(file.idle_timeout_secs)
                .unwrap_or(d.idle_timeout_secs),
            verify_reads: o
                .verify_reads
                .or(file.verify_reads)
                .unwrap_or(d.verify_reads),
            blobs: o.blobs.clone().or(file.blobs).filter(|b| !b.is_empty()),
            blob_redirect: o.blob_redirect.or(file.blob_redirect),
            max_inflight_part_bytes: o
                .max_inflight_part_bytes
                .or(file.max_inflight_part_bytes)
                .map_or(d.max_inflight_part_bytes, |b| b.0),
            limit_overrides: o.limit_overrides.clone(),
            failpoints: o.failpoints.clone(),
            lifecycle_interval_secs: o
                .lifecycle_interval_secs
                .or(file.lifecycle_interval_secs)
                .unwrap_or(d.lifecycle_interval_secs),
            clock_offset_secs: o.clock_offset_secs.unwrap_or(d.clock_offset_secs),
            ui: o.ui.or(file.ui).unwrap_or(d.ui),
            webhooks: file.webhooks.unwrap_or_default(),
            webhook_max_attempts: file.webhook_max_attempts.unwrap_or(d.webhook_max_attempts),
            webhook_retry_base_ms: file
                .webhook_retry_base_ms
                .unwrap_or(d.webhook_retry_base_ms),
            public_registry_alias: o
                .public_registry_alias
                .clone()
                .or(file.public_registry_alias),
            public_registry_aliases: file
                .public_registry_aliases
                .unwrap_or_default()
                .into_iter()
                .collect(),
            metadata: match o.metadata.clone().or(file.metadata) {
                Some(m) => Some(
                    storage::Metadata::parse(&m).map_err(|e| anyhow::anyhow!("metadata: {e}"))?,
                ),
                None => None,
            },
            key_access: vec![],
            rate_limits: rate_limits(file.rate_limits, &o.rate_limits)?,
            audit_log: match o.audit_log.clone().or(file.audit_log) {
                Some(p) if p.as_os_str().is_empty() => None,
                Some(p) => Some(p),
                None => Some(data_dir.join("audit").join("audit.log")),
            },
            audit_log_max_bytes: o
                .audit_log_max_bytes
                .or(file.audit_log_max_bytes)
                .map_or(d.audit_log_max_bytes, |b| b.0),
            rate_limit_burst_secs: o
                .rate_limit_burst_secs
                .or(file.rate_limit_burst_secs)
                .unwrap_or(d.rate_limit_burst_secs),
            trusted_proxy_header: o
                .trusted_proxy_header
                .clone()
                .or(file.trusted_proxy_header)
                .filter(|h| !h.is_empty()),
            data_dir,
            region: o.region.clone().or(file.region).unwrap_or(d.region),
            public_region: o
                .public_region
                .clone()
                .or(file.public_region)
                .unwrap_or(d.public_region),
            account_id: o
                .account_id
                .clone()
                .or(file.account_id)
                .unwrap_or(d.account_id),
            public_url: o.public_url.clone().or(file.public_url),
            create_on_push: o
                .create_on_push
                .or(file.create_on_push)
                .unwrap_or(d.create_on_push),
            blob_delete: o.blob_delete.or(file.blob_delete).unwrap_or(d.blob_delete),
            anonymous_pull: if o.anonymous_pull.is_empty() {
                file.anonymous_pull.unwrap_or(d.anonymous_pull)
            } else {
                o.anonymous_pull.clone()
            },
            access_keys: vec![],
            insecure_accept_any_signature: o
                .insecure_accept_any_signature
                .or(file.insecure_accept_any_signature)
                .unwrap_or(false),
            tls: match (
                o.tls_cert.clone().or(file.tls_cert),
                o.tls_key.clone().or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
                (None, None) => None,
                _ => anyhow::bail!("tls-cert and tls-key go together"),
            },

            metadata_pool_size: o
                .metadata_pool_size
                .or(file.metadata_pool_size)
                .unwrap_or(d.metadata_pool_size),
            fence_pool_size: o
                .fence_pool_size
                .or(file.fence_pool_size)
                .unwrap_or(d.fence_pool_size),
            metrics_listen: match o.metrics_listen.clone().or(file.metrics_listen) {
                Some(s) => Some(
                    s.parse()
                        .with_context(|| format!("metrics-listen: '{s}' is not an ADDR:PORT"))?,
                ),
                None => None,
            },
            log_format: o.log_format.or(file.log_format).unwrap_or(d.log_format),

            pull_through_refresh_secs: o
                .pull_through_refresh_secs
                .or(file.pull_through_refresh_secs)
                .unwrap_or(d.pull_through_refresh_secs),
            allow_http_upstreams: o
                .allow_http_upstreams
                .or(file.allow_http_upstreams)
                .unwrap_or(d.allow_http_upstreams),
            upstream_credentials: upstream_credentials(file.upstream_credentials)?,
            archive_restore_secs: o
                .archive_restore_secs
                .or(file.archive_restore_secs)
                .unwrap_or(d.archive_restore_secs),
            pull_time_flush_secs: o
                .pull_time_flush_secs
                .or(file.pull_time_flush_secs)
                .unwrap_or(d.pull_time_flush_secs)
                .max(1),

            regions: if o.regions.is_empty() {
                file.regions.unwrap_or(d.regions)
            } else {
                o.regions.clone()
            },
            registry_domain: o
                .registry_domain
                .clone()
                .or(file.registry_domain)
                .filter(|d| !d.is_empty())
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase()),
            metrics_token: o
                .metrics_token
                .clone()
                .or(file.metrics_token)
                .filter(|t| !t.is_empty()),
            metrics_repositories: d.metrics_repositories,
            usage_fold_interval_secs: o
                .usage_fold_interval_secs
                .or(file.usage_fold_interval_secs)
                .unwrap_or(d.usage_fold_interval_secs),
            replication_remotes: file.replication_remotes.unwrap_or_default(),
            replication_max_attempts: file
                .replication_max_attempts
                .unwrap_or(d.replication_max_attempts),
            replication_retry_base_ms: file
                .replication_retry_base_ms
                .unwrap_or(d.replication_retry_base_ms),
        };
        cfg.metrics_repositories = o
            .metrics_repositories
            .or(file.metrics_repositories)
            .unwrap_or(
                if cfg.metrics_listen.is_some() || cfg.metrics_token.is_some() {
                    DEFAULT_METRICS_REPOSITORIES
                } else {
                    0
                },
            );
        let default_account = cfg.account_id.clone();
        let mut keys: Vec<AccessKeyConfig> = file.access_keys.unwrap_or_default();
        if let Some(id) = &o.access_key_id {
            keys.push(AccessKeyConfig {
                id: id.clone(),
                secret: o.secret_access_key.clone(),
                secret_file: o.secret_access_key_file.clone(),
                account_id: None,
                arn: None,
                session_token: None,
                policy: None,
                policy_file: None,
                tags: None,
            });
        }
        for (i, mut k) in keys.into_iter().enumerate() {
            cfg.key_access.push(key_access(i, &mut k)?);
            cfg.access_keys.push(identity(i, k, &default_account)?);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for (i, r) in self.replication_remotes.iter().enumerate() {
            let key = format!("replication-remotes[{i}]");
            if !self.allow_http_upstreams {
                crate::events::check_url(&r.url).map_err(|e| anyhow::anyhow!("{key}.url: {e}"))?;
            }
            anyhow::ensure!(
                r.url.starts_with("https://") || r.url.starts_with("http://"),
                "{key}.url: '{}' is not an http:// or https:// URL",
                r.url
            );
            anyhow::ensure!(
                r.registry_id.len() == 12 && r.registry_id.bytes().all(|b| b.is_ascii_digit()),
                "{key}.registry-id: '{}' is not 12 digits",
                r.registry_id
            );
            anyhow::ensure!(
                (2..=25).contains(&r.region.len())
                    && r.region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{key}.region: '{}' is not a region name",
                r.region
            );
            anyhow::ensure!(
                matches!(
                    (&r.username, &r.password, &r.token),
                    (Some(_), Some(_), None) | (None, None, Some(_)) | (None, None, None)
                ),
                "{key}: give username and password, or token, or neither"
            );
            anyhow::ensure!(
                !self.replication_remotes[..i]
                    .iter()
                    .any(|o| o.region == r.region && o.registry_id == r.registry_id),
                "{key}: region '{}' and registry-id '{}' are given twice",
                r.region,
                r.registry_id
            );
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            crate::events::check_url(&w.url)
                .map_err(|e| anyhow::anyhow!("webhooks[{i}].url: {e}"))?;
        }
        if let Some(b) = &self.blobs {
            storage::blob::object_store::S3Location::parse(b)
                .map_err(|e| anyhow::anyhow!("blobs: {e} (expected s3://bucket/prefix)"))?;
        }
        anyhow::ensure!(
            !self.access_keys.is_empty()
                || self.listen.ip().is_loopback()
                || self.insecure_accept_any_signature,
            "refusing to listen on {} with no access keys configured: anyone could push and pull. \
             Configure [[access-keys]] (or BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY), or pass \
             --insecure-accept-any-signature",
            self.listen
        );
        anyhow::ensure!(
            self.account_id.len() == 12 && self.account_id.bytes().all(|b| b.is_ascii_digit()),
            "account-id: '{}' is not 12 digits",
            self.account_id
        );
        let region_name = |r: &str| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        anyhow::ensure!(
            model::region::is_region_name(&self.region),
            "region: '{}' is not a region name",
            self.region
        );
        for r in &self.regions {
            anyhow::ensure!(
                model::region::is_region_name(r),
                "regions: '{r}' is not a region name"
            );
        }
        anyhow::ensure!(
            self.regions.is_empty() || self.regions.contains(&self.region),
            "regions: the default region '{}' is not among them",
            self.region
        );
        if let Some(d) = &self.registry_domain {
            anyhow::ensure!(
                d.split('.').all(|label| !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')),
                "registry-domain: '{d}' is not a domain name"
            );
        }
        anyhow::ensure!(
            region_name(&self.public_region),
            "public-region: '{}' is not a region name",
            self.public_region
        );
        anyhow::ensure!(
            self.max_inflight_part_bytes >= 1024 * 1024,
            "max-inflight-part-bytes: {} is below 1 MiB",
            self.max_inflight_part_bytes
        );
        anyhow::ensure!(
            self.metadata_pool_size >= 1,
            "metadata-pool-size: must be at least 1"
        );
        anyhow::ensure!(
            self.fence_pool_size >= 1,
            "fence-pool-size: must be at least 1"
        );
        if let Some(u) = &self.public_url {
            anyhow::ensure!(
                u.starts_with("http://") || u.starts_with("https://"),
                "public-url: '{u}' must start with http:// or https://"
            );
        }
        for (account, _) in &self.public_registry_aliases {
            anyhow::ensure!(
                account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
                "public-registry-aliases: '{account}' is not a 12-digit account id"
            );
        }
        self.public_aliases()?;
        Ok(())
    }

    /// The alias of every account's public registry: the configured ones, and generated ones
    /// for the other accounts this deployment knows (`account-id` and the access keys'
    /// accounts). Every node computes the same map from the same configuration.
    pub fn public_aliases(&self) -> anyhow::Result<registry::PublicAliases> {
        let mut configured = self.public_registry_aliases.clone();
        if let Some(alias) = &self.public_registry_alias {
            if let Some((_, other)) = configured.iter().find(|(a, _)| *a == self.account_id) {
                anyhow::ensure!(
                    other == alias,
                    "public-registry-alias '{alias}' and public-registry-aliases give {} two aliases",
                    self.account_id
                );
            }
            configured.push((self.account_id.clone(), alias.clone()));
        }
        let accounts = std::iter::once(self.account_id.clone())
            .chain(self.access_keys.iter().map(|k| k.account_id.clone()));
        registry::PublicAliases::new(&configured, accounts)
            .map_err(|e| anyhow::anyhow!("public-registry-alias: {e}"))
    }
}

/// The effective configuration as a TOML file `--config` reads back, for `berth serve
/// --print-config`: every key with its value (defaults included), and secrets replaced by
/// [`REDACTED`]: access keys' secrets and session tokens, and a password in the metadata URL.
impl Config {
    pub fn to_toml(&self) -> String {
        use toml::Value;
        let s = |v: &str| Value::String(v.to_owned());
        let path = |p: &Path| Value::String(p.display().to_string());
        let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let mut t = toml::Table::new();
        let mut put = |k: &str, v: Value| {
            t.insert(k.to_owned(), v);
        };
        put("listen", s(&self.listen.to_string()));
        put("data-dir", path(&self.data_dir));
        match &self.metadata {
            Some(storage::Metadata::Postgres(url)) => put("metadata", s(&redact_url(url))),
            Some(storage::Metadata::Sqlite(p)) => {
                put("metadata", s(&format!("sqlite://{}", p.display())));
            }
            None => {}
        }
        put("region", s(&self.region));
        put("public-region", s(&self.public_region));
        put("account-id", s(&self.account_id));
        if let Some(u) = &self.public_url {
            put("public-url", s(u));
        }
        put("create-on-push", Value::Boolean(self.create_on_push));
        put("blob-delete", Value::Boolean(self.blob_delete));
        put(
            "anonymous-pull",
            Value::Array(self.anonymous_pull.iter().map(|p| s(p)).collect()),
        );
        put(
            "insecure-accept-any-signature",
            Value::Boolean(self.insecure_accept_any_signature),
        );
        if let Some(tls) = &self.tls {
            put("tls-cert", path(&tls.cert));
            put("tls-key", path(&tls.key));
        }
        put("signing-key-file", path(&self.signing_key_file));
        put("gc-interval-secs", int(self.gc_interval_secs));
        put("gc-grace-secs", int(self.gc_grace_secs));
        put("upload-expiry-secs", int(self.upload_expiry_secs));
        put("max-open-uploads", int(self.max_open_uploads));
        put("idle-timeout-secs", int(self.idle_timeout_secs));
        put("verify-reads", Value::Boolean(self.verify_reads));
        if let Some(b) = &self.blobs {
            put("blobs", s(b));
        }
        if let Some(r) = self.blob_redirect {
            put("blob-redirect", Value::Boolean(r));
        }
        put("max-inflight-part-bytes", int(self.max_inflight_part_bytes));
        put("lifecycle-interval-secs", int(self.lifecycle_interval_secs));
        put("ui", Value::Boolean(self.ui));
        put(
            "pull-through-refresh-secs",
            int(self.pull_through_refresh_secs),
        );
        put(
            "allow-http-upstreams",
            Value::Boolean(self.allow_http_upstreams),
        );
        put("metadata-pool-size", int(self.metadata_pool_size.into()));
        put("fence-pool-size", int(self.fence_pool_size.into()));
        if let Some(a) = self.metrics_listen {
            put("metrics-listen", s(&a.to_string()));
        }
        put(
            "log-format",
            s(match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
        );
        if let Some(a) = &self.public_registry_alias {
            put("public-registry-alias", s(a));
        }
        if !self.public_registry_aliases.is_empty() {
            let aliases: toml::Table = self
                .public_registry_aliases
                .iter()
                .map(|(account, alias)| (account.clone(), s(alias)))
                .collect();
            put("public-registry-aliases", Value::Table(aliases));
        }
        let keys: Vec<Value> = self
            .access_keys
            .iter()
            .map(|k| {
                let mut e = toml::Table::new();
                e.insert("id".into(), s(&k.access_key_id));
                e.insert("secret".into(), s(REDACTED));
                e.insert("account-id".into(), s(&k.account_id));
                e.insert("arn".into(), s(&k.arn));
                if k.session_token.is_some() {
                    e.insert("session-token".into(), s(REDACTED));
                }
                Value::Table(e)
            })
            .collect();
        if !keys.is_empty() {
            put("access-keys", Value::Array(keys));
        }
        put(
            "webhook-max-attempts",
            int(self.webhook_max_attempts.into()),
        );
        put("webhook-retry-base-ms", int(self.webhook_retry_base_ms));
        put("archive-restore-secs", int(self.archive_restore_secs));
        put("pull-time-flush-secs", int(self.pull_time_flush_secs));
        put(
            "regions",
            Value::Array(self.regions.iter().map(|r| s(r)).collect()),
        );
        if let Some(d) = &self.registry_domain {
            put("registry-domain", s(d));
        }
        if self.metrics_token.is_some() {
            put("metrics-token", s(REDACTED));
        }
        put(
            "metrics-repositories",
            int(self.metrics_repositories.into()),
        );
        put(
            "usage-fold-interval-secs",
            int(self.usage_fold_interval_secs),
        );
        let hooks: Vec<Value> = self
            .webhooks
            .iter()
            .map(|w| {
                let mut e = toml::Table::new();
                let list = |v: &[String]| Value::Array(v.iter().map(|x| s(x)).collect());
                e.insert("url".into(), s(&w.url));
                if w.secret.is_some() {
                    e.insert("secret".into(), s(REDACTED));
                }
                e.insert("detail-types".into(), list(&w.detail_types));
                e.insert("actions".into(), list(&w.actions));
                if let Some(p) = &w.repository_prefix {
                    e.insert("repository-prefix".into(), s(p));
                }
                Value::Table(e)
            })
            .collect();
        if !hooks.is_empty() {
            put("webhooks", Value::Array(hooks));
        }
        put(
            "replication-max-attempts",
            int(self.replication_max_attempts.into()),
        );
        put(
            "replication-retry-base-ms",
            int(self.replication_retry_base_ms),
        );
        let remotes: Vec<Value> = self
            .replication_remotes
            .iter()
            .map(|r| {
                let mut e = toml::Table::new();
                e.insert("region".into(), s(&r.region));
                e.insert("registry-id".into(), s(&r.registry_id));
                e.insert("url".into(), s(&r.url));
                if let Some(u) = &r.username {
                    e.insert("username".into(), s(u));
                }
                if r.password.is_some() {
                    e.insert("password".into(), s(REDACTED));
                }
                if r.token.is_some() {
                    e.insert("token".into(), s(REDACTED));
                }
                Value::Table(e)
            })
            .collect();
        if !remotes.is_empty() {
            put("replication-remotes", Value::Array(remotes));
        }
        toml::to_string(&t).expect("a table of plain values serializes")
    }
}

/// Repositories `/metrics` reports storage use for where it is protected: 200 series, a
/// small part of a scrape, that cover the repositories worth watching; the registry totals
/// cover the rest.
pub const DEFAULT_METRICS_REPOSITORIES: u32 = 100;

/// What stands for a secret in printed configuration.
pub const REDACTED: &str = "REDACTED";

/// A database URL with its password (in the authority, or as `password=` in the query)
/// replaced by [`REDACTED`].
fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let (start, end) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
            out.replace_range(start..end, REDACTED);
        }
    }
    if let Some(q) = out.find('?') {
        let query: Vec<String> = out[q + 1..]
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={REDACTED}"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{}?{}", &out[..q], query.join("&"));
    }
    out
}

/// The `[[upstream-credentials]]` entries, each with exactly one kind of secret.
fn upstream_credentials(
    entries: Option<Vec<UpstreamCredentialConfig>>,
) -> anyhow::Result<Vec<(String, crate::upstream::UpstreamSecret)>> {
    use crate::upstream::UpstreamSecret;
    let mut out: Vec<(String, UpstreamSecret)> = Vec::new();
    for (i, e) in entries.unwrap_or_default().into_iter().enumerate() {
        let key = format!("upstream-credentials[{i}]");
        anyhow::ensure!(
            e.arn.starts_with("arn:") && e.arn.contains(":secret:"),
            "{key}.arn: '{}' is not a Secrets Manager secret ARN",
            e.arn
        );
        anyhow::ensure!(
            !out.iter().any(|(a, _)| *a == e.arn),
            "{key}.arn: '{}' is given twice",
            e.arn
        );
        let secret = match (e.username, e.password, e.token, e.file) {
            (Some(username), Some(password), None, None) => UpstreamSecret::Basic {
                username,
                password: auth::Secret::new(password),
            },
            (None, None, Some(token), None) => UpstreamSecret::Token(auth::Secret::new(token)),
            (None, None, None, Some(file)) => UpstreamSecret::File(file),
            _ => anyhow::bail!("{key}: give username and password, or token, or file"),
        };
        out.push((e.arn, secret));
    }
    Ok(out)
}

fn identity(i: usize, k: AccessKeyConfig, default_account: &str) -> anyhow::Result<auth::Identity> {
    let key = format!("access-keys[{i}]");
    anyhow::ensure!(!k.id.is_empty(), "{key}.id is empty");
    let secret = match (k.secret, k.secret_file) {
        (Some(s), None) => s,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .with_context(|| format!("{key}.secret-file: reading {}", f.display()))?
            .trim_end()
            .to_owned(),
        _ => anyhow::bail!("{key}: give exactly one of secret and secret-file"),
    };
    anyhow::ensure!(!secret.is_empty(), "{key}: the secret is empty");
    let account_id = k.account_id.unwrap_or_else(|| default_account.to_owned());
    anyhow::ensure!(
        account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()),
        "{key}.account-id: '{account_id}' is not 12 digits"
    );
    Ok(auth::Identity {
        arn: k
            .arn
            .unwrap_or_else(|| format!("arn:aws:iam::{account_id}:user/{}", k.id)),
        access_key_id: k.id,
        secret: auth::Secret::new(secret),
        account_id,
        session_token: k.session_token.map(auth::Secret::new),
    })
}

/// The file's `[rate-limits]`, then the `--rate-limit Op=N` flags (which win).
fn rate_limits(
    file: Option<std::collections::BTreeMap<String, u64>>,
    flags: &[String],
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out: Vec<(String, u64)> = file.unwrap_or_default().into_iter().collect();
    for f in flags {
        let (op, n) = f
            .split_once('=')
            .and_then(|(op, n)| Some((op.trim(), n.trim().parse::<u64>().ok()?)))
            .with_context(|| format!("rate-limit: '{f}' is not Operation=N"))?;
        out.push((op.to_owned(), n));
    }
    for (op, _) in &out {
        anyhow::ensure!(
            op == "*" || (!op.is_empty() && op.bytes().all(|b| b.is_ascii_alphabetic())),
            "rate-limits: '{op}' is not an operation name such as PutImage"
        );
    }
    Ok(out)
}

/// The identity policy (checked) and tags of `[[access-keys]]` entry `i`.
fn key_access(i: usize, k: &mut AccessKeyConfig) -> anyhow::Result<registry::KeyAccess> {
    let key = format!("access-keys[{i}]");
    let policy = match (k.policy.take(), k.policy_file.take()) {
        (Some(p), None) => Some(p),
        (None, Some(f)) => Some(
            std::fs::read_to_string(&f)
                .with_context(|| format!("{key}.policy-file: reading {}", f.display()))?,
        ),
        (None, None) => None,
        _ => anyhow::bail!("{key}: give at most one of policy and policy-file"),
    };
    let access = registry::KeyAccess {
        access_key_id: k.id.clone(),
        policy,
        tags: k.tags.take().unwrap_or_default().into_iter().collect(),
    };
    // Checked here so a bad policy stops the start with the key's name in the message.
    registry::Registry::check_key_access(&access).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    Ok(access)
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_in_s3_from_the_file_or_a_flag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "blobs = \"s3://bucket/reg\"\nblob-redirect = false\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.blobs.as_deref(), Some("s3://bucket/reg"));
        assert_eq!(c.blob_redirect, Some(false));
        let flag = Overrides {
            blobs: Some("s3://other".into()),
            blob_redirect: Some(true),
            ..o.clone()
        };
        let c = Config::load(&flag).unwrap();
        assert_eq!(c.blobs.as_deref(), Some("s3://other"));
        assert_eq!(c.blob_redirect, Some(true));
        assert_eq!(Config::load(&Overrides::default()).unwrap().blobs, None);
        let bad = Overrides {
            blobs: Some("/var/blobs".into()),
            ..Default::default()
        };
        let err = Config::load(&bad).unwrap_err().to_string();
        assert!(err.starts_with("blobs:"), "{err}");
    }

    #[test]
    fn public_registry_aliases_from_the_file_a_flag_or_generated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "public-registry-alias = \"acme\"\n[public-registry-aliases]\n\"111111111111\" = \"other-org\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let aliases = Config::load(&o).unwrap().public_aliases().unwrap();
        assert_eq!(aliases.alias_of("000000000000"), "acme");
        assert_eq!(aliases.account_of("other-org"), Some("111111111111"));
        let flag = Overrides {
            public_registry_alias: Some("flagged".into()),
            ..o.clone()
        };
        let aliases = Config::load(&flag).unwrap().public_aliases().unwrap();
        assert_eq!(aliases.account_of("flagged"), Some("000000000000"));
        assert_eq!(aliases.account_of("acme"), None, "a flag beats the file");

        // Unset: generated from the account id, the same on every node.
        let aliases = Config::load(&Overrides::default())
            .unwrap()
            .public_aliases()
            .unwrap();
        let generated = registry::generated_alias("000000000000");
        assert_eq!(aliases.account_of(&generated), Some("000000000000"));

        for (text, why) in [
            ("public-registry-alias = \"A\"\n", "invalid alias"),
            (
                "public-registry-alias = \"acme\"\n[public-registry-aliases]\n\"111111111111\" = \"acme\"\n",
                "one alias, two accounts",
            ),
            (
                "public-registry-alias = \"acme\"\n[public-registry-aliases]\n\"000000000000\" = \"other\"\n",
                "two aliases, one account",
            ),
            (
                "[public-registry-aliases]\n\"12\" = \"short\"\n",
                "not an account id",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(&o).unwrap_err().to_string();
            assert!(err.starts_with("public-registry-alias"), "{why}: {err}");
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            region: Some("ap-south-1".into()),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(
            c.listen.port(),
            6000,
            "the file sets what nothing overrides"
        );
        assert_eq!(c.region, "ap-south-1", "a flag beats the file");
        assert_eq!(c.account_id, "000000000000", "defaults fill the rest");

        std::fs::write(&file, "nonsense = 1\n").unwrap();
        assert!(Config::load(&o).is_err(), "unknown keys are refused");
        let bad = Overrides {
            account_id: Some("12".into()),
            ..Default::default()
        };
        assert!(Config::load(&bad).is_err());
    }

    #[test]
    fn blob_delete_is_on_unless_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        assert!(Config::load(&Overrides::default()).unwrap().blob_delete);
        std::fs::write(&file, "blob-delete = false\n").unwrap();
        let from_file = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert!(!Config::load(&from_file).unwrap().blob_delete);
        let flag = Overrides {
            blob_delete: Some(true),
            ..from_file
        };
        assert!(
            Config::load(&flag).unwrap().blob_delete,
            "a flag beats the file"
        );
    }

    #[test]
    fn memory_budget_sizes() {
        assert_eq!("1536M".parse(), Ok(ByteSize(1536 << 20)));
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert!("12X".parse::<ByteSize>().is_err());
        assert!("99999999999G".parse::<ByteSize>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, "max-inflight-part-bytes = \"64M\"\n").unwrap();
        let mut o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(Config::load(&o).unwrap().max_inflight_part_bytes, 64 << 20);
        std::fs::write(&file, "max-inflight-part-bytes = 100000000\n").unwrap();
        assert_eq!(
            Config::load(&o).unwrap().max_inflight_part_bytes,
            100_000_000
        );
        o.max_inflight_part_bytes = Some(ByteSize(1000));
        assert!(Config::load(&o).is_err(), "below 1 MiB is refused");
        assert!(
            (256 << 20..=4096 << 20).contains(&Config::default().max_inflight_part_bytes),
            "the default comes from the machine, within bounds"
        );
    }

    #[test]
    fn identity_policies_and_tags_of_access_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        let policy = dir.path().join("ci.json");
        std::fs::write(
            &policy,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:PutImage","Resource":"*"}]}"#,
        )
        .unwrap();
        std::fs::write(
            &file,
            format!(
                "trusted-proxy-header = \"X-Forwarded-For\"\n\
                 [[access-keys]]\nid = \"AKIDCI\"\nsecret = \"s\"\npolicy-file = {:?}\ntags = {{ team = \"a\" }}\n\
                 [[access-keys]]\nid = \"AKIDADMIN\"\nsecret = \"s\"\n",
                policy.to_str().unwrap()
            ),
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.trusted_proxy_header.as_deref(), Some("X-Forwarded-For"));
        assert_eq!(c.key_access.len(), 2);
        assert_eq!(c.key_access[0].access_key_id, "AKIDCI");
        assert!(
            c.key_access[0]
                .policy
                .as_deref()
                .unwrap()
                .contains("ecr:PutImage")
        );
        assert_eq!(c.key_access[0].tags, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(c.key_access[1].policy, None);
        // A policy that is no identity policy (it names a Principal) stops the start.
        std::fs::write(
            &file,
            "[[access-keys]]\nid = \"AKIDBAD\"\nsecret = \"s\"\n\
             policy = '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"ecr:*\",\"Resource\":\"*\"}]}'\n",
        )
        .unwrap();
        let e = format!("{:#}", Config::load(&o).unwrap_err());
        assert!(
            e.contains("access-keys[0]") && e.contains("cannot name a Principal"),
            "{e}"
        );
        std::fs::write(
            &file,
            "[[access-keys]]\nid = \"AKIDBAD\"\nsecret = \"s\"\npolicy = '{}'\npolicy-file = \"x\"\n",
        )
        .unwrap();
        assert!(Config::load(&o).is_err(), "policy and policy-file together");
    }

    #[test]
    fn access_keys_and_the_loopback_rule() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::write(
            &file,
            format!(
                "listen = \"0.0.0.0:5000\"\n[[access-keys]]\nid = \"AKIA1\"\nsecret-file = \"{}\"\naccount-id = \"111111111111\"\n",
                secret.display()
            ),
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!(c.access_keys[0].secret.expose(), "s3cret");
        assert_eq!(c.access_keys[0].arn, "arn:aws:iam::111111111111:user/AKIA1");
        assert!(!format!("{c:?}").contains("s3cret"), "secrets never print");

        // No keys beyond loopback: refused unless explicitly allowed.
        let open = Overrides {
            listen: Some("0.0.0.0:5000".into()),
            ..Default::default()
        };
        let err = Config::load(&open).unwrap_err().to_string();
        assert!(err.contains("--insecure-accept-any-signature"), "{err}");
        let allowed = Overrides {
            insecure_accept_any_signature: Some(true),
            ..open
        };
        assert!(Config::load(&allowed).is_ok());
        let half_tls = Overrides {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        assert!(
            Config::load(&half_tls).is_err(),
            "a certificate needs its key"
        );
    }

    #[test]
    fn pool_sizes_metrics_listener_and_log_format() {
        let d = Config::load(&Overrides::default()).unwrap();
        assert_eq!((d.metadata_pool_size, d.fence_pool_size), (16, 32));
        assert_eq!(d.metrics_listen, None, "metrics on the main listener");
        assert_eq!(d.log_format, LogFormat::Text);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "metadata-pool-size = 4\nfence-pool-size = 6\nmetrics-listen = \"127.0.0.1:9100\"\nlog-format = \"json\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        assert_eq!((c.metadata_pool_size, c.fence_pool_size), (4, 6));
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.log_format, LogFormat::Json);
        let flag = Overrides {
            metadata_pool_size: Some(2),
            log_format: Some(LogFormat::Text),
            ..o.clone()
        };
        let c = Config::load(&flag).unwrap();
        assert_eq!(
            (c.metadata_pool_size, c.fence_pool_size),
            (2, 6),
            "a flag beats the file"
        );
        assert_eq!(c.log_format, LogFormat::Text);
        let zero = Overrides {
            fence_pool_size: Some(0),
            ..Default::default()
        };
        let err = Config::load(&zero).unwrap_err().to_string();
        assert!(err.starts_with("fence-pool-size"), "{err}");
        let bad = Overrides {
            metrics_listen: Some("nowhere".into()),
            ..Default::default()
        };
        assert!(Config::load(&bad).is_err());
    }

    #[test]
    fn printed_configuration_reads_back_with_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:5000\"\nmetadata = \"postgres://berth:pa55word@db:5432/berth?sslmode=require&password=other\"\n\
             anonymous-pull = [\"public/*\"]\nlog-format = \"json\"\n\
             [[access-keys]]\nid = \"AKIA1\"\nsecret = \"s3cret-value\"\nsession-token = \"tok3n\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            fence_pool_size: Some(7),
            ..Default::default()
        };
        let c = Config::load(&o).unwrap();
        let printed = c.to_toml();
        for secret in ["pa55word", "other", "s3cret-value", "tok3n"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(
            printed.contains(
                "postgres://berth:REDACTED@db:5432/berth?sslmode=require&password=REDACTED"
            ),
            "{printed}"
        );
        // What is printed is a configuration file that gives the same configuration back.
        std::fs::write(&file, &printed).unwrap();
        let again = Config::load(&Overrides {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        let without_secrets = |c: &Config| Config {
            access_keys: vec![],
            metadata: None,
            ..c.clone()
        };
        assert_eq!(without_secrets(&again), without_secrets(&c));
        assert_eq!(again.fence_pool_size, 7);
        assert_eq!(again.access_keys[0].arn, c.access_keys[0].arn);
        assert_eq!(again.access_keys[0].secret.expose(), REDACTED);
        // Defaults print too.
        let d = Config::load(&Overrides::default()).unwrap().to_toml();
        assert!(d.contains("metadata-pool-size = 16"), "{d}");
        assert_eq!(
            redact_url("postgres://berth@db/berth"),
            "postgres://berth@db/berth"
        );
    }

    /// The commented sample in `docs/` loads, its settings are the built-in defaults, and it
    /// mentions every key `--print-config` prints.
    #[test]
    fn the_sample_configuration_parses_and_documents_every_key() {
        let sample = include_str!("../../../docs/berth.toml.sample");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, sample).unwrap();
        let c = Config::load(&Overrides {
            config: Some(file),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            Config {
                max_inflight_part_bytes: 0,
                ..c
            },
            Config {
                max_inflight_part_bytes: 0,
                ..Config::load(&Overrides::default()).unwrap()
            },
            "the sample's settings are the defaults"
        );
        // Every optional setting set, so that every key prints.
        let full = Config {
            metadata: Some(storage::Metadata::Postgres("postgres://x".into())),
            public_url: Some("https://x".into()),
            tls: Some(TlsConfig {
                cert: "c".into(),
                key: "k".into(),
            }),
            blobs: Some("s3://b".into()),
            blob_redirect: Some(true),
            metrics_listen: Some("127.0.0.1:9100".parse().unwrap()),
            metrics_token: Some("t".into()),
            public_registry_alias: Some("acme".into()),
            public_registry_aliases: vec![("111122223333".into(), "other".into())],
            ..Config::default()
        };
        let printed = full.to_toml();
        assert!(
            printed.contains(&format!("metrics-token = \"{REDACTED}\""))
                && !printed.contains("= \"t\""),
            "{printed}"
        );
        let table: toml::Table = printed.parse().unwrap();
        for key in table.keys() {
            assert!(
                sample.contains(&format!("{key} =")),
                "the sample does not mention {key}"
            );
        }
        for key in [
            "[[access-keys]]",
            "secret-file =",
            "session-token =",
            "[[webhooks]]",
            "url =",
            "secret =",
            "detail-types =",
            "actions =",
            "repository-prefix =",
        ] {
            assert!(sample.contains(key), "the sample does not mention {key}");
        }
    }

    /// `metrics-repositories` defaults to 100 where `/metrics` is protected (a listener of its
    /// own, or a token) and to 0 where it is open on the main port; a value given wins.
    #[test]
    fn metrics_repositories_default_to_none_on_an_open_main_port() {
        let load = |o: Overrides| Config::load(&o).unwrap().metrics_repositories;
        assert_eq!(load(Overrides::default()), 0);
        let token = || Overrides {
            metrics_token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(load(token()), DEFAULT_METRICS_REPOSITORIES);
        let listener = Overrides {
            metrics_listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        assert_eq!(load(listener), DEFAULT_METRICS_REPOSITORIES);
        let given = Overrides {
            metrics_repositories: Some(7),
            ..token()
        };
        assert_eq!(load(given), 7);
        let open_but_given = Overrides {
            metrics_repositories: Some(3),
            ..Default::default()
        };
        assert_eq!(load(open_but_given), 3);
    }

    /// `[[webhooks]]` load from the file, print with their secret redacted, and a plain
    /// `http://` URL is refused unless it names a loopback host.
    #[test]
    fn webhooks_load_print_redacted_and_refuse_plain_http_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        let load = |url: &str| {
            std::fs::write(
                &file,
                format!(
                    "[[webhooks]]\nurl = \"{url}\"\nsecret = \"hook-secret-42\"\nactions = [\"PUSH\"]\n"
                ),
            )
            .unwrap();
            Config::load(&Overrides {
                config: Some(file.clone()),
                ..Default::default()
            })
            .and_then(|c| c.validate().map(|()| c))
        };
        let c = load("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(c.webhooks[0].actions, ["PUSH"]);
        let printed = c.to_toml();
        assert!(!printed.contains("hook-secret-42"), "{printed}");
        assert!(
            printed.contains(&format!("secret = \"{REDACTED}\"")),
            "{printed}"
        );
        assert!(
            printed.contains("url = \"http://127.0.0.1:9000/hook\""),
            "{printed}"
        );
        assert!(load("https://hooks.example.com/berth").is_ok());
        assert!(load("http://[::1]:9000/").is_ok());
        let err = load("http://hooks.example.com/berth")
            .unwrap_err()
            .to_string();
        assert!(err.contains("webhooks[0].url"), "{err}");
    }

    /// `[[replication-remotes]]` load from the file, print with their password redacted, and
    /// are refused with plain `http://` off loopback, a malformed registry id, half a pair of
    /// credentials, or a destination given twice.
    #[test]
    fn replication_remotes_load_print_redacted_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        let load = |entries: &str| {
            std::fs::write(&file, format!("replication-max-attempts = 3\n{entries}")).unwrap();
            Config::load(&Overrides {
                config: Some(file.clone()),
                ..Default::default()
            })
            .and_then(|c| c.validate().map(|()| c))
        };
        let entry = |url: &str, id: &str, creds: &str| {
            format!(
                "[[replication-remotes]]\nregion = \"eu-west-1\"\nregistry-id = \"{id}\"\nurl = \"{url}\"\n{creds}"
            )
        };
        let pw = "username = \"AWS\"\npassword = \"remote-pw-42\"\n";
        let c = load(&entry("http://127.0.0.1:5001", "222222222222", pw)).unwrap();
        assert_eq!(c.replication_max_attempts, 3);
        assert_eq!(c.replication_remotes[0].registry_id, "222222222222");
        let printed = c.to_toml();
        assert!(!printed.contains("remote-pw-42"), "{printed}");
        assert!(
            printed.contains(&format!("password = \"{REDACTED}\"")),
            "{printed}"
        );
        assert!(
            load(&entry(
                "https://registry.example",
                "222222222222",
                "token = \"t\"\n"
            ))
            .is_ok()
        );
        for (bad, words) in [
            (
                entry("http://registry.example", "222222222222", pw),
                "replication-remotes[0].url",
            ),
            (
                entry("ftp://127.0.0.1", "222222222222", pw),
                "replication-remotes[0].url",
            ),
            (
                entry("https://r.example", "2222", pw),
                "replication-remotes[0].registry-id",
            ),
            (
                entry("https://r.example", "222222222222", "username = \"AWS\"\n"),
                "replication-remotes[0]: give",
            ),
            (
                entry("https://r.example", "222222222222", pw)
                    + &entry("https://s.example", "222222222222", pw),
                "replication-remotes[1]",
            ),
        ] {
            let err = load(&bad).unwrap_err().to_string();
            assert!(err.contains(words), "{bad}: {err}");
        }
    }
}
