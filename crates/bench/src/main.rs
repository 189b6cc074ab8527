//! `berth-bench`: benchmarks for berth, each against real server child processes on 127.0.0.1.
//!
//! ```text
//! cargo build --release -p berth -p bench
//! target/release/berth-bench --verify-signatures [--sizes 256M,1G] [--parallel 1] [--ceiling]   UploadLayerPart MB/s
//! target/release/berth-bench ecr-rates      BatchCheckLayerAvailability, BatchGetImage calls/s; parallel uploads
//! target/release/berth-bench part-flood     200 concurrent 20 MiB parts against the memory budget
//! target/release/berth-bench scale          tags/list, ListImages, DescribeImages against 10..100,000 tags
//! target/release/berth-bench limits         single-core SHA-256, base64 decode, loopback bandwidth
//! target/release/berth-bench load URL       wrk-like HTTP load (GET or HEAD) at a concurrency
//! target/release/berth-bench null-server    a server that does nothing: the clients' ceilings
//! ```
//!
//! The default (no subcommand) is the UploadLayerPart benchmark, see `upload.rs`.

mod ecr_rates;
mod limits;
mod load;
mod null;
mod part_flood;
mod raw_part;
mod scale;
mod server;
mod upload;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use aws_sdk_ecr::config::retry::RetryConfig;
use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
use clap::{Parser, Subcommand};
use serde_json::Value;

const MIB: u64 = 1024 * 1024;
const GIB: f64 = (1024 * 1024 * 1024) as f64;

#[derive(Parser)]
#[command(
    name = "berth-bench",
    about = "Benchmarks for berth (default: the ECR layer upload path)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// The berth binary [default: `berth` next to this executable].
    #[arg(long, global = true)]
    berth: Option<PathBuf>,
    #[command(flatten)]
    upload: upload::UploadArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// UploadLayerPart throughput in parts (the default).
    Upload(upload::UploadArgs),
    /// BatchCheckLayerAvailability and BatchGetImage calls/s, parallel UploadLayerPart uploads,
    /// and the SDK client's ceiling against null-server.
    EcrRates {
        #[command(flatten)]
        args: ecr_rates::RatesArgs,
        /// Where to write the figures as JSON.
        #[arg(long, default_value = "target/bench/ecr-rates.json")]
        json: PathBuf,
    },
    /// Many concurrent UploadLayerPart requests (SigV4 verified) against berth's memory budget:
    /// throughput, throttled requests (retried until stored), the server's peak RSS.
    PartFlood(part_flood::FloodArgs),
    /// Listing times against the number of tags in a repository and of repositories.
    Scale {
        #[command(flatten)]
        args: scale::ScaleArgs,
        /// Where to write the figures as JSON.
        #[arg(long, default_value = "target/bench/scale.json")]
        json: PathBuf,
    },
    /// Single-core SHA-256 and base64 decode throughput, loopback TCP bandwidth (JSON on stdout).
    Limits(limits::LimitsArgs),
    /// Closed-loop HTTP/1.1 load, GET or HEAD (JSON on stdout).
    Load(load::LoadArgs),
    /// Answer every request at once without work (`GET /bytes/N`: N bytes).
    NullServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

fn ecr_client(endpoint: &str) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            server::ACCESS_KEY_ID,
            server::SECRET_ACCESS_KEY,
            None,
            None,
            "bench",
        ))
        // A benchmark fails loudly rather than retrying behind the figures' back.
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let upper = s.to_ascii_uppercase();
    let t = upper.trim_end_matches('B').trim_end_matches('I');
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1024),
        Some('M') => (&t[..t.len() - 1], MIB),
        Some('G') => (&t[..t.len() - 1], 1024 * MIB),
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    ensure!(n > 0, "size {s:?} must be positive");
    Ok(n * mult)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * MIB && b % (1024 * MIB) == 0 => format!("{} GiB", b / (1024 * MIB)),
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b => format!("{b} B"),
    }
}

/// Deterministic xorshift bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(v)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    println!("figures written to {}", path.display());
    Ok(())
}

fn berth_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    let berth = match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    ensure!(
        berth.is_file(),
        "{} not found (build it: cargo build --release -p berth)",
        berth.display()
    );
    Ok(berth)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        None => upload::run(&berth_binary(cli.berth)?, &cli.upload).await,
        Some(Cmd::Upload(args)) => upload::run(&berth_binary(cli.berth)?, &args).await,
        Some(Cmd::EcrRates { args, json }) => {
            let v = ecr_rates::run(&berth_binary(cli.berth)?, &args).await?;
            write_json(&json, &v)
        }
        Some(Cmd::PartFlood(args)) => {
            let v = part_flood::run(&berth_binary(cli.berth)?, &args).await?;
            write_json(&args.json, &v)
        }
        Some(Cmd::Scale { args, json }) => {
            let v = scale::run(&berth_binary(cli.berth)?, &args).await?;
            write_json(&json, &v)
        }
        Some(Cmd::Limits(args)) => {
            let v = tokio::task::spawn_blocking(move || limits::run(&args)).await??;
            println!("{v}");
            Ok(())
        }
        Some(Cmd::Load(args)) => {
            println!("{}", load::run(args).await?);
            Ok(())
        }
        Some(Cmd::NullServer { listen }) => null::serve(&listen).await,
    }
}
