//! `berth-bench part-flood`: many UploadLayerPart requests at once against berth's memory
//! budget (`--max-inflight-part-bytes`). Each of `--clients` connections sends one part to its
//! own upload, all at once, as pre-signed raw requests with SigV4 verified (`raw_part.rs`); a
//! part answered `ThrottlingException` is sent again after the `Retry-After` berth gives (plus
//! a little jitter, so the retries do not arrive as one wave), up to `--max-attempts` times and
//! within `--max-secs` in all. Then every upload is completed and its digest checked, so each
//! acknowledged part is known to be stored intact.
//!
//! It reports the throughput (all parts, from the first request to the last acknowledgement),
//! how many requests were throttled, the server's peak RSS (`VmHWM`, reset before the flood)
//! against the budget, and the server's CPU time per GiB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::raw_part::{self, PartClient, PartReply, Prefixes};
use crate::server::{Server, clk_tck, cpu_ticks, vm_kib};
use crate::upload::initiate;
use crate::{GIB, MIB, ecr_client, human, parse_size, random_bytes};

const REPO: &str = "bench/flood";

#[derive(clap::Args)]
pub struct FloodArgs {
    /// UploadLayerPart requests at once, each on its own connection and to its own upload.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Size of each part (at most 20M, ECR's limit).
    #[arg(long, default_value = "20M")]
    pub part_size: String,
    /// berth's `--max-inflight-part-bytes` (K, M, G suffixes); `default` passes none (berth's
    /// default from the machine's memory; also how to run against a berth without the flag).
    #[arg(long, default_value = "1G")]
    pub budget: String,
    /// Sends of one part before the run fails.
    #[arg(long, default_value_t = 200)]
    pub max_attempts: u32,
    /// Seconds the whole flood may take before the run fails.
    #[arg(long, default_value_t = 600)]
    pub max_secs: u64,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench/part-flood.json")]
    pub json: PathBuf,
}

/// What one client saw.
struct Outcome {
    throttled: u32,
}

pub async fn run(berth: &Path, args: &FloodArgs) -> Result<Value> {
    let part_size = parse_size(&args.part_size)?;
    let budget = match args.budget.as_str() {
        "default" => None,
        b => Some(parse_size(b)?),
    };
    ensure!(
        part_size <= 20 * MIB,
        "--part-size is at most 20M (ECR's limit)"
    );
    ensure!(args.clients > 0, "--clients must be positive");
    let base = Arc::new(random_bytes(part_size as usize));
    let (prefixes, digests) = {
        let base = base.clone();
        let n = args.clients as u64;
        tokio::task::spawn_blocking(move || {
            let prefixes = Prefixes::new(&base, part_size, part_size);
            let digests: Vec<String> = (0..n)
                .map(|seed| raw_part::layer_digest(&base, part_size, part_size, seed))
                .collect();
            (prefixes, digests)
        })
        .await?
    };

    let budget_arg = budget.map(|b| b.to_string());
    let server = match &budget_arg {
        Some(b) => Server::start_with_keys_and(berth, &["--max-inflight-part-bytes", b]).await?,
        None => Server::start_with_keys(berth).await?,
    };
    let pid = server.pid();
    let ecr = ecr_client(&server.endpoint);
    ecr.create_repository()
        .repository_name(REPO)
        .send()
        .await
        .context("CreateRepository")?;
    let ids = initiate(&ecr, REPO, args.clients).await?;

    let tck = clk_tck();
    server.reset_peak_rss();
    let rss_before_kib = vm_kib(&pid, "VmRSS")?;
    let srv0 = cpu_ticks(&pid)?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (seed, id) in ids.iter().cloned().enumerate() {
        let (endpoint, base, prefixes) = (server.endpoint.clone(), base.clone(), prefixes.clone());
        let max_attempts = args.max_attempts;
        tasks.spawn(async move {
            let mut client = PartClient::connect(&endpoint).await?;
            let mut throttled = 0;
            loop {
                let reply = client
                    .try_part(&prefixes.full, &base, REPO, &id, seed as u64, 0, 0)
                    .await
                    .with_context(|| format!("upload {seed}"))?;
                match reply {
                    PartReply::Stored(last) => {
                        ensure!(
                            last == Some(part_size as i64 - 1),
                            "upload {seed}: lastByteReceived {last:?}"
                        );
                        return Ok(Outcome { throttled });
                    }
                    PartReply::Throttled { retry_after_secs } => {
                        throttled += 1;
                        ensure!(
                            throttled < max_attempts,
                            "upload {seed}: throttled {throttled} times"
                        );
                        // Up to half a second of jitter, different for every client.
                        let jitter = Duration::from_millis((seed as u64 * 7919) % 500);
                        tokio::time::sleep(Duration::from_secs(retry_after_secs) + jitter).await;
                    }
                }
            }
        });
    }
    let outcomes = tokio::time::timeout(Duration::from_secs(args.max_secs), async {
        let mut v = Vec::with_capacity(args.clients);
        while let Some(r) = tasks.join_next().await {
            v.push(r??);
        }
        Ok::<_, anyhow::Error>(v)
    })
    .await
    .with_context(|| format!("the flood did not finish within {} s", args.max_secs))??;
    let secs = start.elapsed().as_secs_f64();
    let server_cpu_s = (cpu_ticks(&pid)? - srv0) as f64 / tck;
    let hwm_kib = vm_kib(&pid, "VmHWM")?;

    // Every acknowledged part is stored as sent: each single-part layer completes to its digest.
    for (id, digest) in ids.iter().zip(&digests) {
        let done = ecr
            .complete_layer_upload()
            .repository_name(REPO)
            .upload_id(id)
            .layer_digests(digest)
            .send()
            .await
            .context("CompleteLayerUpload")?;
        ensure!(
            done.layer_digest() == Some(digest.as_str()),
            "berth answered {:?}, expected {digest}",
            done.layer_digest()
        );
    }
    drop(server);

    let bytes = part_size * args.clients as u64;
    let throttles: u64 = outcomes.iter().map(|o| u64::from(o.throttled)).sum();
    let throttled_clients = outcomes.iter().filter(|o| o.throttled > 0).count();
    let max_throttles = outcomes.iter().map(|o| o.throttled).max().unwrap_or(0);
    let hwm_mib = hwm_kib as f64 / 1024.0;
    // Without a known budget there is no target to meet.
    let target_mib = budget.map_or(f64::INFINITY, |b| (b / MIB) as f64 + 64.0);
    let v = json!({
        "clients": args.clients,
        "part_bytes": part_size,
        "budget_bytes": budget,
        "seconds": secs,
        "mb_per_s": bytes as f64 / secs / 1e6,
        "mib_per_s": bytes as f64 / secs / MIB as f64,
        "requests": args.clients as u64 + throttles,
        "throttled_responses": throttles,
        "clients_throttled": throttled_clients,
        "max_throttles_one_client": max_throttles,
        "server_cpu_seconds_per_gib": server_cpu_s / (bytes as f64 / GIB),
        "server_rss_before_mib": rss_before_kib as f64 / 1024.0,
        "server_peak_rss_mib": hwm_mib,
        "target_peak_rss_mib": budget.map(|_| target_mib),
        "within_target": budget.map(|_| hwm_mib < target_mib),
    });
    println!(
        "{} parts of {} at once, budget {}: {:.1} s, {:.1} MB/s ({:.1} MiB/s); {} throttled \
         responses ({} clients throttled, at most {} times each); server peak RSS {:.0} MiB \
         ({}), {:.0} MiB before; server CPU {:.2} s/GiB; every part intact",
        args.clients,
        human(part_size),
        budget.map_or_else(|| "default".to_owned(), human),
        secs,
        bytes as f64 / secs / 1e6,
        bytes as f64 / secs / MIB as f64,
        throttles,
        throttled_clients,
        max_throttles,
        hwm_mib,
        match budget {
            None => "no target: berth's default budget".to_owned(),
            Some(_) if hwm_mib < target_mib => format!("target < {target_mib:.0} MiB: met"),
            Some(_) => format!("target < {target_mib:.0} MiB: MISSED"),
        },
        rss_before_kib as f64 / 1024.0,
        server_cpu_s / (bytes as f64 / GIB),
    );
    Ok(v)
}
