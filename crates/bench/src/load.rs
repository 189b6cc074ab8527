//! `berth-bench load`: a closed-loop HTTP/1.1 load generator in the manner of wrk: `concurrency`
//! keep-alive connections, each sending its next request as soon as the previous answer has
//! been read, for a bounded time and number of requests. Unlike wrk it handles `HEAD` (wrk waits
//! for a body after a `HEAD` answer that carries a `Content-Length`), and every status other than
//! 2xx counts as an error. Prints one JSON object on stdout and a summary line on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::server::{clk_tck, cpu_ticks};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// The URL to request (http only).
    pub url: String,
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A request header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Connections, each with one request in flight.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(short = 'd', long, default_value_t = 5.0)]
    pub duration: f64,
    /// Stop after this many requests in all, if that comes first.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Process ID of the server, to report its CPU time per request.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(Default)]
struct Worker {
    latencies_us: Vec<u32>,
    errors: u64,
    bytes: u64,
    reconnects: u64,
    first_error: Option<String>,
}

pub async fn run(args: LoadArgs) -> Result<Value> {
    let uri: hyper::Uri = args.url.parse().context("bad URL")?;
    ensure!(
        uri.scheme_str() == Some("http"),
        "only http:// URLs are supported"
    );
    let authority = uri.authority().context("URL without host")?.to_string();
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let method: hyper::Method = args.method.to_ascii_uppercase().parse()?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header {h:?} is not `Name: value`"))?;
        headers.push((
            HeaderName::from_bytes(name.trim().as_bytes())?,
            HeaderValue::from_str(value.trim())?,
        ));
    }
    ensure!(args.concurrency >= 1, "concurrency must be at least 1");
    ensure!(
        args.duration > 0.0 && args.duration <= 600.0,
        "duration must be in (0, 600] seconds"
    );
    let tck = clk_tck();
    let server_pid = args.server_pid.map(|p| p.to_string());
    let issued = Arc::new(AtomicU64::new(0));
    let target = Arc::new(Target {
        authority,
        path,
        method,
        headers,
    });

    let srv0 = server_pid.as_deref().map(cpu_ticks).transpose()?;
    let cli0 = cpu_ticks("self")?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (target, issued) = (target.clone(), issued.clone());
        let max = args.max_requests;
        tasks.spawn(async move { worker(&target, deadline, &issued, max).await });
    }
    let mut all = Worker::default();
    while let Some(w) = tasks.join_next().await {
        let w = w?;
        all.latencies_us.extend(w.latencies_us);
        all.errors += w.errors;
        all.bytes += w.bytes;
        all.reconnects += w.reconnects;
        all.first_error = all.first_error.or(w.first_error);
    }
    let secs = start.elapsed().as_secs_f64();
    let cli1 = cpu_ticks("self")?;
    let srv1 = server_pid.as_deref().map(cpu_ticks).transpose()?;

    let n = all.latencies_us.len() as u64;
    let done = n + all.errors;
    if n == 0 {
        bail!(
            "no successful request to {} ({} errors; first: {})",
            args.url,
            all.errors,
            all.first_error.as_deref().unwrap_or("-")
        );
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| all.latencies_us[((n as f64 - 1.0) * p).round() as usize];
    let per_req_us = |ticks: u64| ticks as f64 / tck * 1e6 / done.max(1) as f64;
    let out = json!({
        "url": args.url,
        "method": args.method.to_ascii_uppercase(),
        "concurrency": args.concurrency,
        "seconds": secs,
        "requests": n,
        "errors": all.errors,
        "first_error": all.first_error,
        "reconnects": all.reconnects,
        "requests_per_s": n as f64 / secs,
        "body_bytes": all.bytes,
        "latency_us": { "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0) },
        "client_cpu_us_per_request": per_req_us(cli1 - cli0),
        "server_cpu_us_per_request": srv0.zip(srv1).map(|(a, b)| per_req_us(b - a)),
    });
    eprintln!(
        "{} {} c={}: {:.0} req/s, {} errors, p50 {} us, p99 {} us",
        out["method"].as_str().unwrap_or("?"),
        args.url,
        args.concurrency,
        n as f64 / secs,
        all.errors,
        pct(0.5),
        pct(0.99)
    );
    Ok(out)
}

fn fail(w: &mut Worker, e: String) {
    w.errors += 1;
    w.first_error.get_or_insert(e);
}

struct Target {
    authority: String,
    path: String,
    method: hyper::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(t: &Target) -> Result<Sender> {
    let stream = TcpStream::connect(&t.authority)
        .await
        .with_context(|| format!("connect {}", t.authority))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn worker(t: &Target, deadline: Instant, issued: &AtomicU64, max: u64) -> Worker {
    let mut w = Worker::default();
    let mut sender: Option<Sender> = None;
    let mut connected_before = false;
    while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
        if let Some(s) = sender.as_mut()
            && s.ready().await.is_err()
        {
            sender = None;
        }
        if sender.is_none() {
            match connect(t).await {
                Ok(s) => {
                    w.reconnects += u64::from(connected_before);
                    connected_before = true;
                    sender = Some(s);
                }
                Err(e) => {
                    fail(&mut w, format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let mut req = Request::builder()
            .method(t.method.clone())
            .uri(&t.path)
            .header("host", &t.authority);
        for (k, v) in &t.headers {
            req = req.header(k, v);
        }
        let req = req.body(Empty::new()).expect("a valid request");
        let sent = Instant::now();
        match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let mut body = resp.into_body();
                let mut ok = true;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => w.bytes += f.data_ref().map_or(0, |d| d.len() as u64),
                        Err(e) => {
                            fail(&mut w, format!("body: {e}"));
                            ok = false;
                            sender = None;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                if status.is_success() {
                    let us = sent.elapsed().as_micros();
                    w.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                } else {
                    fail(&mut w, format!("status {status}"));
                }
            }
            Err(e) => {
                fail(&mut w, format!("{e}"));
                sender = None;
            }
        }
    }
    w
}
