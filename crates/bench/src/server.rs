//! The `berth serve` child process and what `/proc` says about processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// `berth serve` on 127.0.0.1:0 in a temporary data directory; killed (by PID) when dropped.
pub struct Server {
    child: Child,
    pub endpoint: String,
    // Kept open so that the server never writes to a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(berth: &Path) -> Result<Self> {
        let data_dir = tempfile::tempdir().context("create a temporary data directory")?;
        let mut child = Command::new(berth)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .env("BERTH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", berth.display()))?;
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
                    bail!("berth exited before printing `listening on ...`");
                }
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    return Ok((reader, url.to_owned()));
                }
            }
        });
        // On timeout or error `server` is dropped, which kills the child and unblocks the reader.
        let (reader, endpoint) = tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .context("berth did not get ready within 60 s")???;
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
