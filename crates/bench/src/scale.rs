//! `berth-bench scale`: the scale curve. For each tag count, a fresh `berth serve` (access key
//! set) gets one repository with that many tags, each on a distinct tiny manifest, pushed through
//! the ECR API (PutImage, concurrently); for the repository count, that many repositories with one
//! tagged image each. Then one page of each listing is timed (median of `--samples` after one
//! warm-up): `/v2/<repo>/tags/list?n=1000`, the whole `/v2/<repo>/tags/list`, ListImages and
//! DescribeImages with maxResults 1000, and with many repositories also DescribeRepositories and
//! `/v2/_catalog?n=1000`. Where a listing has more than one page, the page halfway through it
//! (`..._middle`: from the nextToken or `last` a client paging from the start holds there) is
//! timed too: it must cost what the first page costs. Populating is bounded by `--time-limit`
//! per size.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ecr::primitives::Blob;
use serde_json::{Value, json};

use crate::ecr_client;
use crate::server::{Server, cpu_ticks, vm_kib};

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
const PAGE: i32 = 1000;

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Comma-separated tag counts for one repository.
    #[arg(long, default_value = "10,1000,100000")]
    pub tags: String,
    /// Comma-separated repository counts (one tagged image each); empty for none.
    #[arg(long, default_value = "10000")]
    pub repos: String,
    /// Concurrent ECR calls while populating.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds allowed for populating each size.
    #[arg(long, default_value_t = 900.0)]
    pub time_limit: f64,
    /// Timed runs of each listing (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
}

fn counts(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.replace('_', "").parse().context("bad count"))
        .collect()
}

fn config_digest() -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(CONFIG)))
}

fn manifest(n: u64) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest(), "size": CONFIG.len()},
        "layers": [],
        "annotations": {"bench.n": n.to_string()},
    })
    .to_string()
}

/// Creates `repo` with the config blob (through the ECR layer upload) in it.
async fn create_repo(ecr: &aws_sdk_ecr::Client, repo: &str) -> Result<()> {
    ecr.create_repository()
        .repository_name(repo)
        .send()
        .await
        .context("CreateRepository")?;
    let id = ecr
        .initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .context("InitiateLayerUpload")?
        .upload_id()
        .context("no uploadId")?
        .to_owned();
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(CONFIG.len() as i64 - 1)
        .layer_part_blob(Blob::new(CONFIG))
        .send()
        .await
        .context("UploadLayerPart")?;
    ecr.complete_layer_upload()
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(config_digest())
        .send()
        .await
        .context("CompleteLayerUpload")?;
    Ok(())
}

async fn put(ecr: &aws_sdk_ecr::Client, repo: &str, n: u64) -> Result<()> {
    ecr.put_image()
        .repository_name(repo)
        .image_tag(format!("t{n:07}"))
        .image_manifest(manifest(n))
        .send()
        .await
        .with_context(|| format!("PutImage {repo}:t{n:07}"))?;
    Ok(())
}

/// Runs `f(0..n)` from `concurrency` tasks; fails if that takes longer than `limit` seconds.
async fn parallel<F, Fut>(n: u64, concurrency: usize, limit: f64, f: F) -> Result<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let (f, next) = (Arc::new(f), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (f, next) = (f.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                f(i).await?;
            }
        });
    }
    let work = async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok::<_, anyhow::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs_f64(limit), work).await {
        Ok(r) => r?,
        Err(_) => bail!(
            "populating took longer than --time-limit {limit} s ({} of {n} done)",
            next.load(Ordering::Relaxed).min(n)
        ),
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Median, min and max milliseconds of `samples` runs of `f` after one warm-up; `f` returns how
/// many items its page held.
async fn time_it<F, Fut>(samples: usize, f: F) -> Result<Value>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    let items = f().await?;
    let mut ms = Vec::new();
    for _ in 0..samples.max(1) {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    Ok(json!({
        "items": items,
        "median_ms": (ms[(n - 1) / 2] + ms[n / 2]) / 2.0,
        "min_ms": ms[0],
        "max_ms": ms[n - 1],
    }))
}

struct V2 {
    http: reqwest::Client,
    endpoint: String,
    auth: String,
}

impl V2 {
    async fn new(ecr: &aws_sdk_ecr::Client, endpoint: &str) -> Result<Self> {
        let token = ecr
            .get_authorization_token()
            .send()
            .await
            .context("GetAuthorizationToken")?;
        let token = token
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token())
            .context("no authorizationToken")?;
        Ok(V2 {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
            auth: format!("Basic {token}"),
        })
    }

    /// GETs a /v2 listing and returns how many entries its `key` array holds.
    async fn count(&self, path: &str, key: &str) -> Result<usize> {
        let resp = self
            .http
            .get(format!("{}{path}", self.endpoint))
            .header("Authorization", &self.auth)
            .send()
            .await?;
        ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        let body: Value = serde_json::from_str(&resp.text().await?)?;
        Ok(body[key].as_array().map_or(0, Vec::len))
    }
}

/// The nextToken a client holds halfway through a listing of `total` entries paged by
/// `page(token)` (which answers a page's length and its nextToken); `None` for a single page.
async fn middle_token<F, Fut>(total: u64, page: F) -> Result<Option<String>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<(usize, Option<String>)>>,
{
    let (mut seen, mut token) = (0u64, None);
    while seen < total / 2 {
        let (n, next) = page(token.take()).await?;
        seen += n as u64;
        match next {
            Some(t) => token = Some(t),
            None => return Ok(None),
        }
    }
    Ok(token)
}

/// Times the page halfway through a listing (see [`middle_token`]); `None` for a single page.
async fn time_middle_page<F, Fut>(samples: usize, total: u64, page: F) -> Result<Option<Value>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<(usize, Option<String>)>>,
{
    let Some(token) = middle_token(total, &page).await? else {
        return Ok(None);
    };
    let timed = time_it(samples, || async { Ok(page(Some(token.clone())).await?.0) }).await?;
    Ok(Some(timed))
}

/// Times the listings of `repo`, which holds `tags` tags (and, with `repos`, of that many
/// repositories).
async fn listings(
    ecr: &aws_sdk_ecr::Client,
    v2: &V2,
    repo: &str,
    samples: usize,
    tags: u64,
    repos: Option<u64>,
) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    let tags_page = format!("/v2/{repo}/tags/list?n={PAGE}");
    let tags_all = format!("/v2/{repo}/tags/list");
    out.insert(
        "v2_tags_list_page1000".into(),
        time_it(samples, || v2.count(&tags_page, "tags")).await?,
    );
    out.insert(
        "v2_tags_list_all".into(),
        time_it(samples, || v2.count(&tags_all, "tags")).await?,
    );
    out.insert(
        "list_images_page1000".into(),
        time_it(samples, || async {
            let r = ecr
                .list_images()
                .repository_name(repo)
                .max_results(PAGE)
                .send()
                .await?;
            Ok(r.image_ids().len())
        })
        .await?,
    );
    out.insert(
        "describe_images_page1000".into(),
        time_it(samples, || async {
            let r = ecr
                .describe_images()
                .repository_name(repo)
                .max_results(PAGE)
                .send()
                .await?;
            Ok(r.image_details().len())
        })
        .await?,
    );
    if tags > PAGE as u64 {
        let middle = format!("/v2/{repo}/tags/list?n={PAGE}&last=t{:07}", tags / 2 - 1);
        out.insert(
            "v2_tags_list_page1000_middle".into(),
            time_it(samples, || v2.count(&middle, "tags")).await?,
        );
    }
    let list_images = |token: Option<String>| async move {
        let r = ecr
            .list_images()
            .repository_name(repo)
            .max_results(PAGE)
            .set_next_token(token)
            .send()
            .await?;
        Ok((r.image_ids().len(), r.next_token().map(str::to_owned)))
    };
    if let Some(timed) = time_middle_page(samples, tags, list_images).await? {
        out.insert("list_images_page1000_middle".into(), timed);
    }
    let describe_images = |token: Option<String>| async move {
        let r = ecr
            .describe_images()
            .repository_name(repo)
            .max_results(PAGE)
            .set_next_token(token)
            .send()
            .await?;
        Ok((r.image_details().len(), r.next_token().map(str::to_owned)))
    };
    if let Some(timed) = time_middle_page(samples, tags, describe_images).await? {
        out.insert("describe_images_page1000_middle".into(), timed);
    }
    if let Some(repos) = repos {
        out.insert(
            "describe_repositories_page1000".into(),
            time_it(samples, || async {
                let r = ecr.describe_repositories().max_results(PAGE).send().await?;
                Ok(r.repositories().len())
            })
            .await?,
        );
        let catalog = format!("/v2/_catalog?n={PAGE}");
        out.insert(
            "v2_catalog_page1000".into(),
            time_it(samples, || v2.count(&catalog, "repositories")).await?,
        );
        let describe_repositories = |token: Option<String>| async move {
            let r = ecr
                .describe_repositories()
                .max_results(PAGE)
                .set_next_token(token)
                .send()
                .await?;
            Ok((r.repositories().len(), r.next_token().map(str::to_owned)))
        };
        if let Some(timed) = time_middle_page(samples, repos, describe_repositories).await? {
            out.insert("describe_repositories_page1000_middle".into(), timed);
            let middle = format!("/v2/_catalog?n={PAGE}&last=scale/r{:06}", repos / 2 - 1);
            out.insert(
                "v2_catalog_page1000_middle".into(),
                time_it(samples, || v2.count(&middle, "repositories")).await?,
            );
        }
    }
    Ok(out)
}

pub async fn run(berth: &std::path::Path, args: &ScaleArgs) -> Result<Value> {
    let mut results = Vec::new();
    let print = |what: String, fig: &serde_json::Map<String, Value>| {
        eprintln!("{what}:");
        for (k, v) in fig {
            if let Some(ms) = v.get("median_ms").and_then(Value::as_f64) {
                eprintln!(
                    "  {k:<38} {ms:>10.2} ms  [{:.2}-{:.2}]  {} items",
                    v["min_ms"].as_f64().unwrap_or(0.0),
                    v["max_ms"].as_f64().unwrap_or(0.0),
                    v["items"]
                );
            } else {
                eprintln!("  {k:<38} {v}");
            }
        }
    };
    for n in counts(&args.tags)? {
        let server = Server::start_with_keys(berth).await?;
        let ecr = ecr_client(&server.endpoint);
        let repo = "scale/tags";
        create_repo(&ecr, repo).await?;
        let c = ecr.clone();
        let secs = parallel(n, args.concurrency, args.time_limit, move |i| {
            let c = c.clone();
            async move { put(&c, repo, i).await }
        })
        .await
        .with_context(|| format!("{n} tags"))?;
        let v2 = V2::new(&ecr, &server.endpoint).await?;
        let mut fig = listings(&ecr, &v2, repo, args.samples, n, None).await?;
        fig.insert("tags".into(), json!(n));
        fig.insert("populate_seconds".into(), json!(secs));
        fig.insert("put_image_per_s".into(), json!(n as f64 / secs));
        fig.insert(
            "server_peak_rss_mib".into(),
            json!(vm_kib(&server.pid(), "VmHWM")? as f64 / 1024.0),
        );
        print(format!("{n} tags in one repository"), &fig);
        results.push(Value::Object(fig));
    }
    for n in counts(&args.repos)? {
        let server = Server::start_with_keys(berth).await?;
        let ecr = ecr_client(&server.endpoint);
        let c = ecr.clone();
        let cpu0 = cpu_ticks(&server.pid())?;
        let secs = parallel(n, args.concurrency, args.time_limit, move |i| {
            let c = c.clone();
            async move {
                let repo = format!("scale/r{i:06}");
                create_repo(&c, &repo).await?;
                put(&c, &repo, i).await
            }
        })
        .await
        .with_context(|| format!("{n} repositories"))?;
        let cpu1 = cpu_ticks(&server.pid())?;
        let v2 = V2::new(&ecr, &server.endpoint).await?;
        let mut fig = listings(&ecr, &v2, "scale/r000000", args.samples, 1, Some(n)).await?;
        fig.insert("repositories".into(), json!(n));
        fig.insert("populate_seconds".into(), json!(secs));
        fig.insert("repositories_per_s".into(), json!(n as f64 / secs));
        fig.insert(
            "populate_server_cpu_s".into(),
            json!((cpu1 - cpu0) as f64 / crate::server::clk_tck()),
        );
        fig.insert(
            "server_peak_rss_mib".into(),
            json!(vm_kib(&server.pid(), "VmHWM")? as f64 / 1024.0),
        );
        print(format!("{n} repositories, one image each"), &fig);
        results.push(Value::Object(fig));
    }
    print_curve(&results);
    Ok(json!({ "benchmark": "scale", "page": PAGE, "results": results }))
}

/// The curve: one row per listing, one column per size, median milliseconds.
fn print_curve(results: &[Value]) {
    let label = |r: &Value| match (r.get("tags"), r.get("repositories")) {
        (Some(t), _) => format!("{t} tags"),
        (_, Some(n)) => format!("{n} repos"),
        _ => "?".into(),
    };
    let mut queries: Vec<&str> = Vec::new();
    for r in results {
        for (k, v) in r.as_object().into_iter().flatten() {
            if v.get("median_ms").is_some() && !queries.contains(&k.as_str()) {
                queries.push(k);
            }
        }
    }
    println!("\nmedian ms of one listing (page size {PAGE}):");
    print!("{:<38}", "");
    for r in results {
        print!(" {:>13}", label(r));
    }
    println!();
    for q in queries {
        print!("{q:<38}");
        for r in results {
            match r[q]["median_ms"].as_f64() {
                Some(ms) => print!(" {ms:>13.2}"),
                None => print!(" {:>13}", "-"),
            }
        }
        println!();
    }
}
