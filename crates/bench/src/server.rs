//! Server child processes (`berth serve`, or this binary's `null-server`) and what `/proc` says
//! about processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// The access key pair [`Server::start_with_keys`] gives berth, and [`crate::ecr_client`] signs with.
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "secret";

/// A server child on 127.0.0.1:0 (with a temporary data directory); killed (by PID) when dropped.
pub struct Server {
    child: Child,
    pub endpoint: String,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// `berth serve` that accepts any well-formed signature (no access keys).
    pub async fn start(berth: &Path) -> Result<Self> {
        Self::start_berth(berth, false, &[]).await
    }

    /// `berth serve` that verifies every SigV4 signature against one access key.
    pub async fn start_with_keys(berth: &Path) -> Result<Self> {
        Self::start_berth(berth, true, &[]).await
    }

    /// [`Server::start_with_keys`] with more `berth serve` arguments.
    pub async fn start_with_keys_and(berth: &Path, args: &[&str]) -> Result<Self> {
        Self::start_berth(berth, true, args).await
    }

    async fn start_berth(berth: &Path, keys: bool, args: &[&str]) -> Result<Self> {
        let data_dir = tempfile::tempdir().context("create a temporary data directory")?;
        let mut cmd = Command::new(berth);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--gc-interval-secs",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(args)
        .env("BERTH_LOG", "warn");
        if keys {
            cmd.env("BERTH_ACCESS_KEY_ID", ACCESS_KEY_ID)
                .env("BERTH_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        }
        Self::spawn(cmd, data_dir).await
    }

    /// This executable's `null-server`: answers every request at once (see `null.rs`).
    pub async fn start_null() -> Result<Self> {
        let data_dir = tempfile::tempdir().context("create a temporary directory")?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["null-server", "--listen", "127.0.0.1:0"]);
        Self::spawn(cmd, data_dir).await
    }

    async fn spawn(mut cmd: Command, data_dir: tempfile::TempDir) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {:?}", cmd.get_program()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut server = Server {
            child,
            endpoint: String::new(),
            _stdout: None,
            _data_dir: data_dir,
        };
        let ready = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    bail!("the server exited before printing `listening on ...`");
                }
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    return Ok((reader, url.to_owned()));
                }
            }
        });
        // On timeout or error `server` is dropped, which kills the child and unblocks the reader.
        let (reader, endpoint) = tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .context("the server did not get ready within 60 s")???;
        ensure!(
            endpoint.starts_with("http://127.0.0.1:"),
            "unexpected endpoint {endpoint}"
        );
        server.endpoint = endpoint;
        server._stdout = Some(reader);
        Ok(server)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Resets the peak RSS (`VmHWM`) to the current RSS, so that a later reading belongs to one
    /// workload (`echo 5 > /proc/PID/clear_refs`; silently nothing where that is not allowed).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process (`self` or a PID), in clock ticks.
pub fn cpu_ticks(pid: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name start at field 3 (state); utime is 14, stime 15.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    ensure!(f.len() > 12, "short /proc/{pid}/stat");
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// A `Vm*` line of `/proc/<pid>/status`, in KiB.
pub fn vm_kib(pid: &str, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// `getconf CLK_TCK` (no libc: the workspace forbids `unsafe`); 100 if that fails.
pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<u32>().ok())
        .filter(|&t| t > 0)
        .map_or(100.0, f64::from)
}
