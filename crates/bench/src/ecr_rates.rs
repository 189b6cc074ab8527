//! `berth-bench ecr-rates`: the ECR API figures distribution has no counterpart for, with the Rust
//! AWS SDK against `berth serve` with an access key (every SigV4 signature verified):
//!
//! - BatchCheckLayerAvailability (two digests) and BatchGetImage (one tag) calls per second at
//!   each concurrency, with server and client CPU per call;
//! - several UploadLayerPart uploads at once (aggregate MB/s, server CPU-seconds per GiB, peak RSS),
//!   their parts sent as pre-signed raw requests (`raw_part.rs`), not through the SDK;
//! - the same loops against `null-server` (answers `{}` at once): the SDK client's own ceiling, so
//!   a figure that is the client's limit is never taken for berth's.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::ImageIdentifier;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::{Server, clk_tck, cpu_ticks, vm_kib};
use crate::{MIB, ecr_client, human, parse_size, random_bytes, upload};

const REPO: &str = "bench/rates";

#[derive(clap::Args)]
pub struct RatesArgs {
    /// Seconds each call-rate loop runs.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Comma-separated concurrencies for the call-rate loops.
    #[arg(long, default_value = "1,16")]
    pub concurrency: String,
    /// How many UploadLayerPart uploads run at once.
    #[arg(long, default_value_t = 4)]
    pub parallel_uploads: usize,
    /// Size of each of those uploads (binary suffixes K, M, G).
    #[arg(long, default_value = "256M")]
    pub upload_size: String,
    /// UploadLayerPart part size.
    #[arg(long, default_value = "20M")]
    pub part_size: String,
    /// Skip the client-ceiling runs against null-server.
    #[arg(long)]
    pub no_ceiling: bool,
}

/// One layer through InitiateLayerUpload, UploadLayerPart ×n and CompleteLayerUpload; `seed` makes
/// its bytes distinct from other uploads'. Returns the digest and the number of parts.
async fn upload_layer(
    ecr: &aws_sdk_ecr::Client,
    size: u64,
    part: &[u8],
    seed: u64,
    verify: bool,
) -> Result<(String, usize)> {
    let init = ecr
        .initiate_layer_upload()
        .repository_name(REPO)
        .send()
        .await
        .context("InitiateLayerUpload")?;
    let upload_id = init.upload_id().unwrap_or("null-upload").to_owned();
    let mut buf = part.to_vec();
    let mut hasher = Sha256::new();
    let (mut offset, mut parts) = (0u64, 0usize);
    while offset < size {
        let len = (size - offset).min(buf.len() as u64) as usize;
        buf[..8].copy_from_slice(&(parts as u64).to_le_bytes());
        buf[8..16].copy_from_slice(&seed.to_le_bytes());
        hasher.update(&buf[..len]);
        ecr.upload_layer_part()
            .repository_name(REPO)
            .upload_id(&upload_id)
            .part_first_byte(offset as i64)
            .part_last_byte((offset + len as u64 - 1) as i64)
            .layer_part_blob(Blob::new(&buf[..len]))
            .send()
            .await
            .with_context(|| format!("UploadLayerPart {parts}"))?;
        offset += len as u64;
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
    if verify {
        ensure!(
            done.layer_digest() == Some(digest.as_str()),
            "berth answered {:?}, expected {digest}",
            done.layer_digest()
        );
    }
    Ok((digest, parts))
}

/// Runs `call` from `concurrency` tasks until `secs` have passed; returns (calls, seconds).
async fn call_rate<F, Fut>(concurrency: usize, secs: f64, call: F) -> Result<(u64, f64)>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let call = call.clone();
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                call().await?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        });
    }
    let mut calls = 0;
    let limit = Duration::from_secs_f64(secs + 60.0);
    while let Some(r) = tokio::time::timeout(limit, tasks.join_next())
        .await
        .context("a call loop did not finish in time")?
    {
        calls += r??;
    }
    Ok((calls, start.elapsed().as_secs_f64()))
}

/// The figures of one target (berth or null-server).
async fn measure(
    args: &RatesArgs,
    server: &Server,
    concurrencies: &[usize],
    real: bool,
) -> Result<Value> {
    let pid = server.pid();
    let tck = clk_tck();
    let ecr = ecr_client(&server.endpoint);
    let part = random_bytes(usize::try_from(parse_size(&args.part_size)?)?);
    let upload_size = parse_size(&args.upload_size)?;

    // A small image to ask about: a 1 MiB layer and a config, tagged v1.
    ecr.create_repository()
        .repository_name(REPO)
        .send()
        .await
        .context("CreateRepository")?;
    let (layer, _) = upload_layer(&ecr, MIB, &part, u64::MAX, real).await?;
    let (config, _) = upload_layer(&ecr, 64, &part, u64::MAX - 1, real).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 64},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": MIB}],
    })
    .to_string();
    ecr.put_image()
        .repository_name(REPO)
        .image_tag("v1")
        .image_manifest(manifest)
        .send()
        .await
        .context("PutImage")?;
    if real {
        let check = ecr
            .batch_check_layer_availability()
            .repository_name(REPO)
            .layer_digests(&layer)
            .layer_digests(&config)
            .send()
            .await?;
        ensure!(
            check.failures().is_empty(),
            "layers not available: {check:?}"
        );
        let got = ecr
            .batch_get_image()
            .repository_name(REPO)
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await?;
        ensure!(got.images().len() == 1, "BatchGetImage: {got:?}");
    }

    let mut rates = serde_json::Map::new();
    for &c in concurrencies {
        for op in ["batch_check_layer_availability", "batch_get_image"] {
            let (s0, c0) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
            let (ecr, layer, config) = (ecr.clone(), layer.clone(), config.clone());
            let (calls, secs) = if op == "batch_get_image" {
                call_rate(c, args.duration, move || {
                    let ecr = ecr.clone();
                    async move {
                        ecr.batch_get_image()
                            .repository_name(REPO)
                            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
                            .send()
                            .await?;
                        Ok(())
                    }
                })
                .await?
            } else {
                call_rate(c, args.duration, move || {
                    let (ecr, layer, config) = (ecr.clone(), layer.clone(), config.clone());
                    async move {
                        ecr.batch_check_layer_availability()
                            .repository_name(REPO)
                            .layer_digests(layer)
                            .layer_digests(config)
                            .send()
                            .await?;
                        Ok(())
                    }
                })
                .await?
            };
            let (s1, c1) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
            let per_call = |t: u64| t as f64 / tck * 1e6 / calls.max(1) as f64;
            let rate = calls as f64 / secs;
            eprintln!(
                "  {op} c={c}: {rate:.0} calls/s, server CPU {:.0} us/call, client CPU {:.0} us/call",
                per_call(s1 - s0),
                per_call(c1 - c0)
            );
            rates.insert(
                format!("{op}_per_s_c{c}"),
                json!({
                    "calls_per_s": rate,
                    "calls": calls,
                    "seconds": secs,
                    "server_cpu_us_per_call": per_call(s1 - s0),
                    "client_cpu_us_per_call": per_call(c1 - c0),
                }),
            );
        }
    }

    // Parallel uploads, their parts as pre-signed raw requests (`raw_part.rs`): the SDK would
    // spend as much CPU per byte as berth does, on the same two cores. The part bytes, request
    // prefixes and each upload's digest are made before the clock starts.
    let n = args.parallel_uploads.max(1);
    let part_size = part.len() as u64;
    let layer = upload::Layer::prepare(Arc::new(part.clone()), upload_size, part_size, n).await?;
    let ids = upload::initiate(&ecr, REPO, n).await?;
    server.reset_peak_rss();
    let (s0, c0) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    let start = Instant::now();
    upload::upload_all(
        &ecr,
        &server.endpoint,
        REPO,
        &layer,
        ids,
        upload::Client::Raw,
        real,
    )
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let (s1, c1) = (cpu_ticks(&pid)?, cpu_ticks("self")?);
    let gib = (upload_size * n as u64) as f64 / (1024.0 * MIB as f64);
    let mb_s = (upload_size * n as u64) as f64 / secs / 1e6;
    let peak = vm_kib(&pid, "VmHWM")? as f64 / 1024.0;
    eprintln!(
        "  {n} x {} UploadLayerPart uploads at once: {mb_s:.1} MB/s in all, server CPU {:.2} s/GiB, client CPU {:.2} s/GiB, server peak RSS {peak:.1} MiB",
        human(upload_size),
        (s1 - s0) as f64 / tck / gib,
        (c1 - c0) as f64 / tck / gib,
    );
    rates.insert(
        "parallel_upload_layer_part".into(),
        json!({
            "uploads": n,
            "upload_size_bytes": upload_size,
            "seconds": secs,
            "mb_per_s": mb_s,
            "server_cpu_s_per_gib": (s1 - s0) as f64 / tck / gib,
            "client_cpu_s_per_gib": (c1 - c0) as f64 / tck / gib,
            "server_peak_rss_mib": peak,
        }),
    );
    Ok(Value::Object(rates))
}

pub async fn run(berth: &std::path::Path, args: &RatesArgs) -> Result<Value> {
    let concurrencies: Vec<usize> = args
        .concurrency
        .split(',')
        .map(|c| c.trim().parse().context("bad --concurrency"))
        .collect::<Result<_>>()?;
    ensure!(
        args.duration > 0.0 && args.duration <= 300.0,
        "--duration must be in (0, 300]"
    );
    eprintln!("berth (access key set, signatures verified):");
    let server = Server::start_with_keys(berth).await?;
    let berth_figures = measure(args, &server, &concurrencies, true).await?;
    drop(server);
    let ceiling = if args.no_ceiling {
        Value::Null
    } else {
        eprintln!("null-server (the clients' ceilings):");
        let server = Server::start_null().await?;
        measure(args, &server, &concurrencies, false).await?
    };
    let mut rows = Vec::new();
    if let Value::Object(b) = &berth_figures {
        for (k, v) in b {
            let key = if v.get("calls_per_s").is_some() {
                "calls_per_s"
            } else {
                "mb_per_s"
            };
            let (bv, cv) = (v[key].as_f64(), ceiling[k][key].as_f64());
            rows.push((k.clone(), bv, cv));
        }
    }
    println!(
        "\n{:<40} {:>12} {:>14} {:>10}",
        "ECR API (Rust SDK, SigV4)", "berth", "client ceiling", "fraction"
    );
    for (k, b, c) in &rows {
        let f = |v: &Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let frac = b
            .zip(*c)
            .map_or("-".to_owned(), |(b, c)| format!("{:.2}", b / c));
        println!("{k:<40} {:>12} {:>14} {frac:>10}", f(b), f(c));
    }
    Ok(json!({
        "benchmark": "ecr-rates",
        "duration_s": args.duration,
        "berth": berth_figures,
        "client_ceiling_null_server": ceiling,
    }))
}
