//! The default benchmark: berth's ECR layer upload path (InitiateLayerUpload → UploadLayerPart ×n
//! → CompleteLayerUpload) with the AWS SDK, against a real `berth serve` child process on
//! 127.0.0.1 with a fresh data directory for every run.
//!
//! For each layer size it reports the throughput (MB/s = 10^6 bytes/s, and MiB/s) from the first
//! UploadLayerPart to the CompleteLayerUpload response, the server's and the client's CPU time
//! over that window (utime+stime from `/proc/<pid>/stat`, in ticks of `getconf CLK_TCK`, 100 if
//! that fails) per GiB uploaded, and the server's peak RSS (`VmHWM`). The layer is never held in
//! memory: each part comes from one reusable pseudo-random buffer with the part index in its first
//! 8 bytes, and the client hashes it incrementally and checks the digest berth answers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use aws_sdk_ecr::primitives::Blob;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::{Server, clk_tck, cpu_ticks, vm_kib};
use crate::{GIB, MIB, ecr_client, human, parse_size, random_bytes};

const REPO: &str = "bench/layer";

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
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench/upload-layer-part.json")]
    pub json: PathBuf,
    /// Give berth an access key, so that it verifies every signature (and payload hash).
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

async fn run_once(berth: &Path, size: u64, buf: &mut [u8], tck: f64, keys: bool) -> Result<Sample> {
    let server = if keys {
        Server::start_with_keys(berth).await?
    } else {
        Server::start(berth).await?
    };
    let pid = server.pid();
    let ecr = ecr_client(&server.endpoint);
    ecr.create_repository()
        .repository_name(REPO)
        .send()
        .await
        .context("CreateRepository")?;
    let init = ecr
        .initiate_layer_upload()
        .repository_name(REPO)
        .send()
        .await
        .context("InitiateLayerUpload")?;
    let upload_id = init.upload_id().context("no uploadId")?.to_owned();

    let rss_before = vm_kib(&pid, "VmRSS")?;
    let (srv0, cli0) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    let start = Instant::now();
    let mut hasher = Sha256::new();
    let (mut offset, mut parts) = (0u64, 0usize);
    while offset < size {
        let len = (size - offset).min(buf.len() as u64);
        buf[..8].copy_from_slice(&(parts as u64).to_le_bytes());
        let blob = Blob::new(&buf[..len as usize]);
        // Hash this part on a blocking thread while it is being sent (Blob clones share the bytes).
        let to_hash = blob.clone();
        let hashing = tokio::task::spawn_blocking(move || {
            hasher.update(to_hash.as_ref());
            hasher
        });
        let sent = ecr
            .upload_layer_part()
            .repository_name(REPO)
            .upload_id(&upload_id)
            .part_first_byte(offset as i64)
            .part_last_byte((offset + len - 1) as i64)
            .layer_part_blob(blob)
            .send();
        let (sent, hashed) = tokio::join!(sent, hashing);
        sent.with_context(|| format!("UploadLayerPart {parts} at byte {offset}"))?;
        hasher = hashed?;
        offset += len;
        parts += 1;
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let done = ecr
        .complete_layer_upload()
        .repository_name(REPO)
        .upload_id(&upload_id)
        .layer_digests(&digest)
        .send()
        .await
        .context("CompleteLayerUpload")?;
    let secs = start.elapsed().as_secs_f64();
    let (srv1, cli1) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    ensure!(
        done.layer_digest() == Some(digest.as_str()),
        "berth answered {:?}, expected {digest}",
        done.layer_digest()
    );
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
    fn new(size: u64, runs: Vec<Sample>) -> Self {
        let (bytes, gib) = (size as f64, size as f64 / GIB);
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
    ensure!(part_size >= 8, "--part-size must be at least 8 bytes");
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    let tck = clk_tck();
    let mut buf = random_bytes(usize::try_from(part_size)?);

    let mut summaries = Vec::new();
    for &size in &sizes {
        let mut runs = Vec::new();
        for i in 1..=args.repeat {
            let s = run_once(berth, size, &mut buf, tck, args.verify_signatures)
                .await
                .with_context(|| format!("{} run {i}", human(size)))?;
            eprintln!(
                "{} run {i}/{}: {:.2} s, server CPU {:.2} s, client CPU {:.2} s, server peak RSS {} KiB",
                human(size),
                args.repeat,
                s.secs,
                s.server_cpu_s,
                s.client_cpu_s,
                s.server_hwm_kib
            );
            runs.push(s);
        }
        summaries.push(Summary::new(size, runs));
    }

    let (part, n) = (human(part_size), args.repeat);
    println!("\nECR layer upload, part size {part}, {n} run(s) per size: median [min-max]\n");
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
        "clk_tck": tck,
        "results": summaries.iter().map(Summary::to_json).collect::<Vec<_>>(),
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
