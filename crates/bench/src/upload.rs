//! The default benchmark: berth's ECR layer upload path (InitiateLayerUpload → UploadLayerPart ×n
//! → CompleteLayerUpload) against a real `berth serve` child process on 127.0.0.1 with a fresh
//! data directory for every run; `--parallel N` runs N such uploads at once, each on its own
//! connection, and `--ceiling` runs the same client against `null-server` (which does no work):
//! the client's own ceiling, so that a client limit is never taken for berth's.
//!
//! The parts go as pre-signed raw requests over hyper (`raw_part.rs`), whose CPU cost is a small
//! fraction of the server's; `--client sdk` sends them with the AWS SDK instead (about as
//! much client CPU per byte as the server spends). InitiateLayerUpload and CompleteLayerUpload
//! always go through the SDK.
//!
//! For each layer size it reports the throughput (MB/s = 10^6 bytes/s, and MiB/s, all uploads
//! together) from the first UploadLayerPart to the last CompleteLayerUpload response, the
//! server's and the client's CPU time over that window (utime+stime from `/proc/<pid>/stat`, in
//! ticks of `getconf CLK_TCK`, 100 if that fails) per GiB uploaded, and the server's peak RSS
//! (`VmHWM`). The layer is never held in memory: every part is one reusable pseudo-random buffer
//! with the upload's seed and the part's index in its last 16 bytes; the digest each upload must
//! get is computed before the clock starts and checked against berth's answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use aws_sdk_ecr::primitives::Blob;
use serde_json::{Value, json};

use crate::raw_part::{self, Prefixes, VARYING};
use crate::server::{Server, clk_tck, cpu_ticks, vm_kib};
use crate::{GIB, MIB, ecr_client, human, parse_size, random_bytes};

const REPO: &str = "bench/layer";
/// The upload ID used against null-server, which answers `{}` to InitiateLayerUpload.
const NULL_UPLOAD_ID: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Pre-signed raw requests over hyper.
    Raw,
    /// The AWS SDK for Rust.
    Sdk,
}

#[derive(clap::Args)]
pub struct UploadArgs {
    /// Comma-separated layer sizes (binary suffixes K, M, G; e.g. 256M,1G).
    #[arg(long, default_value = "256M,1G")]
    pub sizes: String,
    /// Size of each UploadLayerPart (the last one is smaller).
    #[arg(long, default_value = "20M")]
    pub part_size: String,
    /// Runs per size, each on a fresh server; the table shows the median [min-max].
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Uploads of each size at once, each on its own connection (MB/s counts them all).
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// How UploadLayerPart requests are sent.
    #[arg(long, value_enum, default_value_t = Client::Raw)]
    pub client: Client,
    /// Also run the same uploads against `null-server` (the client's ceiling), `repeat` times.
    #[arg(long)]
    pub ceiling: bool,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench/upload-layer-part.json")]
    pub json: PathBuf,
    /// Give berth an access key, so that it verifies every signature (and payload hash).
    /// The raw client needs it: its requests are signed with that key.
    #[arg(long)]
    pub verify_signatures: bool,
}

struct Sample {
    secs: f64,
    server_cpu_s: f64,
    client_cpu_s: f64,
    server_hwm_kib: u64,
    server_rss_before_kib: u64,
    parts: usize,
}

/// What every run of one size shares: the part buffer, the request prefixes, the digests.
pub(crate) struct Layer {
    size: u64,
    part_size: u64,
    base: Arc<Vec<u8>>,
    prefixes: Arc<Prefixes>,
    /// The digest of upload `i` (seed `i`).
    digests: Vec<String>,
}

/// Which server a run goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Berth { keys: bool },
    Null,
}

async fn run_once(
    berth: &Path,
    layer: &Layer,
    args: &UploadArgs,
    target: Target,
    tck: f64,
) -> Result<Sample> {
    let server = match target {
        Target::Berth { keys: true } => Server::start_with_keys(berth).await?,
        Target::Berth { keys: false } => Server::start(berth).await?,
        Target::Null => Server::start_null().await?,
    };
    let real = target != Target::Null;
    let pid = server.pid();
    let ecr = ecr_client(&server.endpoint);
    ecr.create_repository()
        .repository_name(REPO)
        .send()
        .await
        .context("CreateRepository")?;
    let ids = initiate(&ecr, REPO, args.parallel).await?;

    server.reset_peak_rss();
    let rss_before = vm_kib(&pid, "VmRSS")?;
    let (srv0, cli0) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    let start = Instant::now();
    let parts = upload_all(&ecr, &server.endpoint, REPO, layer, ids, args.client, real).await?;
    let secs = start.elapsed().as_secs_f64();
    let (srv1, cli1) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    let sample = Sample {
        secs,
        server_cpu_s: (srv1 - srv0) as f64 / tck,
        client_cpu_s: (cli1 - cli0) as f64 / tck,
        server_hwm_kib: vm_kib(&pid, "VmHWM")?,
        server_rss_before_kib: rss_before,
        parts,
    };
    drop(server); // kill + wait; also happens on every `?` above
    Ok(sample)
}

impl Layer {
    /// Makes the request prefixes and the digests of `uploads` uploads of `size` bytes, off
    /// the async threads (and before any clock starts).
    pub(crate) async fn prepare(
        base: Arc<Vec<u8>>,
        size: u64,
        part_size: u64,
        uploads: usize,
    ) -> Result<Self> {
        Ok(tokio::task::spawn_blocking(move || Layer {
            size,
            part_size,
            prefixes: Prefixes::new(&base, size, part_size),
            digests: (0..uploads as u64)
                .map(|seed| raw_part::layer_digest(&base, size, part_size, seed))
                .collect(),
            base,
        })
        .await?)
    }
}

/// Initiates `n` uploads in `repo` (null-server answers none; it gets a made-up ID).
pub(crate) async fn initiate(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    n: usize,
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let init = ecr
            .initiate_layer_upload()
            .repository_name(repo)
            .send()
            .await
            .context("InitiateLayerUpload")?;
        ids.push(init.upload_id().unwrap_or(NULL_UPLOAD_ID).to_owned());
    }
    Ok(ids)
}

/// Sends upload `i` of `layer` to `ids[i]`, all at once, and completes each, checking the
/// digest berth answers when `real`. Returns the number of parts sent.
pub(crate) async fn upload_all(
    ecr: &aws_sdk_ecr::Client,
    endpoint: &str,
    repo: &'static str,
    layer: &Layer,
    ids: Vec<String>,
    client: Client,
    real: bool,
) -> Result<usize> {
    let mut tasks = tokio::task::JoinSet::new();
    for (seed, id) in ids.into_iter().enumerate() {
        let (ecr, endpoint) = (ecr.clone(), endpoint.to_owned());
        let (base, prefixes) = (layer.base.clone(), layer.prefixes.clone());
        let digest = layer.digests[seed].clone();
        let (size, part_size) = (layer.size, layer.part_size);
        tasks.spawn(async move {
            let parts = match client {
                Client::Raw => {
                    raw_part::upload_parts(
                        &endpoint,
                        &prefixes,
                        &base,
                        repo,
                        &id,
                        seed as u64,
                        size,
                        real,
                    )
                    .await?
                }
                Client::Sdk => {
                    sdk_parts(&ecr, repo, &base, &id, seed as u64, size, part_size).await?
                }
            };
            let done = ecr
                .complete_layer_upload()
                .repository_name(repo)
                .upload_id(&id)
                .layer_digests(&digest)
                .send()
                .await
                .context("CompleteLayerUpload")?;
            if real {
                ensure!(
                    done.layer_digest() == Some(digest.as_str()),
                    "berth answered {:?}, expected {digest}",
                    done.layer_digest()
                );
            }
            Ok::<_, anyhow::Error>(parts)
        });
    }
    let mut parts = 0;
    while let Some(r) = tasks.join_next().await {
        parts += r??;
    }
    Ok(parts)
}

/// The parts of one upload through the AWS SDK, one copy of the part buffer per upload.
async fn sdk_parts(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    base: &[u8],
    upload_id: &str,
    seed: u64,
    size: u64,
    part_size: u64,
) -> Result<usize> {
    let mut buf = base[..part_size as usize].to_vec();
    let (mut offset, mut index) = (0u64, 0u64);
    while offset < size {
        let len = (size - offset).min(part_size) as usize;
        let constant = len.saturating_sub(VARYING);
        let mut v = [0u8; VARYING];
        v[..8].copy_from_slice(&seed.to_le_bytes());
        v[8..].copy_from_slice(&index.to_le_bytes());
        buf[..constant].copy_from_slice(&base[..constant]);
        buf[constant..len].copy_from_slice(&v[VARYING - (len - constant)..]);
        ecr.upload_layer_part()
            .repository_name(repo)
            .upload_id(upload_id)
            .part_first_byte(offset as i64)
            .part_last_byte((offset + len as u64 - 1) as i64)
            .layer_part_blob(Blob::new(&buf[..len]))
            .send()
            .await
            .with_context(|| format!("UploadLayerPart {index} at byte {offset}"))?;
        offset += len as u64;
        index += 1;
    }
    Ok(index as usize)
}

/// (median, min, max) over the runs.
type Stat = (f64, f64, f64);

fn stats(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Stat {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    ((v[(n - 1) / 2] + v[n / 2]) / 2.0, v[0], v[n - 1])
}

fn stat_json((median, min, max): Stat) -> Value {
    json!({ "median": median, "min": min, "max": max })
}

fn range((median, min, max): Stat) -> String {
    format!("{median:.1} [{min:.1}-{max:.1}]")
}

/// The figures for one layer size.
struct Summary {
    size: u64,
    parts: usize,
    mb_s: Stat,
    mib_s: Stat,
    server_cpu_per_gib: Stat,
    client_cpu_per_gib: Stat,
    server_rss_mib: Stat,
    runs: Vec<Sample>,
}

impl Summary {
    /// `bytes`: what one run uploads, all parallel uploads together.
    fn new(size: u64, bytes: u64, runs: Vec<Sample>) -> Self {
        let (bytes, gib) = (bytes as f64, bytes as f64 / GIB);
        Summary {
            size,
            parts: runs[0].parts,
            mb_s: stats(&runs, |s| bytes / s.secs / 1e6),
            mib_s: stats(&runs, |s| bytes / s.secs / MIB as f64),
            server_cpu_per_gib: stats(&runs, |s| s.server_cpu_s / gib),
            client_cpu_per_gib: stats(&runs, |s| s.client_cpu_s / gib),
            server_rss_mib: stats(&runs, |s| s.server_hwm_kib as f64 / 1024.0),
            runs,
        }
    }

    fn to_json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|s| {
                json!({
                    "seconds": s.secs,
                    "server_cpu_seconds": s.server_cpu_s,
                    "client_cpu_seconds": s.client_cpu_s,
                    "server_peak_rss_kib": s.server_hwm_kib,
                    "server_rss_before_upload_kib": s.server_rss_before_kib,
                })
            })
            .collect();
        json!({
            "size": human(self.size),
            "size_bytes": self.size,
            "parts": self.parts,
            "mb_per_s": stat_json(self.mb_s),
            "mib_per_s": stat_json(self.mib_s),
            "server_cpu_s_per_gib": stat_json(self.server_cpu_per_gib),
            "client_cpu_s_per_gib": stat_json(self.client_cpu_per_gib),
            "server_peak_rss_mib": stat_json(self.server_rss_mib),
            "runs": runs,
        })
    }
}

pub async fn run(berth: &Path, args: &UploadArgs) -> Result<()> {
    let mut sizes: Vec<u64> = args
        .sizes
        .split(',')
        .map(parse_size)
        .collect::<Result<_>>()?;
    sizes.sort_unstable();
    let part_size = parse_size(&args.part_size)?;
    ensure!(
        part_size >= VARYING as u64,
        "--part-size must be at least {VARYING} bytes"
    );
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    ensure!(
        (1..=64).contains(&args.parallel),
        "--parallel must be in 1..=64"
    );
    ensure!(
        args.verify_signatures || args.client == Client::Sdk,
        "the raw client signs with the benchmark's key: add --verify-signatures (or --client sdk)"
    );
    let tck = clk_tck();
    let base = Arc::new(random_bytes(usize::try_from(part_size)?));

    let mut summaries = Vec::new();
    let mut ceilings = Vec::new();
    for &size in &sizes {
        // Before the clock: the request prefixes and each upload's digest.
        let layer = Layer::prepare(base.clone(), size, part_size, args.parallel).await?;
        let label = if args.parallel > 1 {
            format!("{} x {}", args.parallel, human(size))
        } else {
            human(size)
        };
        let mut targets = vec![(
            "berth",
            Target::Berth {
                keys: args.verify_signatures,
            },
        )];
        if args.ceiling {
            targets.push(("null-server", Target::Null));
        }
        for (name, target) in targets {
            let mut runs = Vec::new();
            for i in 1..=args.repeat {
                let s = run_once(berth, &layer, args, target, tck)
                    .await
                    .with_context(|| format!("{label} run {i} against {name}"))?;
                eprintln!(
                    "{label} {name} run {i}/{}: {:.2} s ({:.1} MB/s), server CPU {:.2} s, client CPU {:.2} s, server peak RSS {} KiB",
                    args.repeat,
                    s.secs,
                    (size * args.parallel as u64) as f64 / s.secs / 1e6,
                    s.server_cpu_s,
                    s.client_cpu_s,
                    s.server_hwm_kib
                );
                runs.push(s);
            }
            let summary = Summary::new(size, size * args.parallel as u64, runs);
            if target == Target::Null {
                ceilings.push(summary);
            } else {
                summaries.push(summary);
            }
        }
    }

    let (part, n) = (human(part_size), args.repeat);
    let (uploads, client) = (
        args.parallel,
        match args.client {
            Client::Raw => "raw pre-signed requests",
            Client::Sdk => "AWS SDK",
        },
    );
    println!(
        "\nECR layer upload, part size {part}, {uploads} upload(s) at once, {client}, {n} run(s) per size: median [min-max]\n"
    );
    println!(
        "{:>9} {:>5} {:>24} {:>7} {:>17} {:>17} {:>24}",
        "size",
        "parts",
        "MB/s",
        "MiB/s",
        "server CPU s/GiB",
        "client CPU s/GiB",
        "server peak RSS MiB"
    );
    for s in &summaries {
        println!(
            "{:>9} {:>5} {:>24} {:>7.1} {:>17.2} {:>17.2} {:>24}",
            human(s.size),
            s.parts,
            range(s.mb_s),
            s.mib_s.0,
            s.server_cpu_per_gib.0,
            s.client_cpu_per_gib.0,
            range(s.server_rss_mib),
        );
    }
    for c in &ceilings {
        println!(
            "{:>9} {:>5} {:>24} {:>7.1} {:>17} {:>17.2}   client ceiling (null-server)",
            human(c.size),
            c.parts,
            range(c.mb_s),
            c.mib_s.0,
            "-",
            c.client_cpu_per_gib.0,
        );
    }
    let (lo, hi) = (&summaries[0], &summaries[summaries.len() - 1]);
    let ratio = hi.server_rss_mib.0 / lo.server_rss_mib.0;
    println!(
        "\nserver peak RSS ratio {} / {}: {ratio:.2} (for {:.1}x the bytes)",
        human(hi.size),
        human(lo.size),
        hi.size as f64 / lo.size as f64
    );

    let report = json!({
        "benchmark": "ecr-upload-layer-part",
        "berth": berth.display().to_string(),
        "part_size_bytes": part_size,
        "repeat": args.repeat,
        "signatures_verified": args.verify_signatures,
        "parallel_uploads": args.parallel,
        "client": client,
        "clk_tck": tck,
        "results": summaries.iter().map(Summary::to_json).collect::<Vec<_>>(),
        "client_ceiling_null_server": ceilings.iter().map(Summary::to_json).collect::<Vec<_>>(),
        "server_peak_rss_ratio_largest_to_smallest": ratio,
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", args.json.display()))?;
    println!("figures written to {}", args.json.display());
    Ok(())
}
