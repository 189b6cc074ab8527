//! `berth-bench limits`: the machine's own limits that bound berth's figures, measured with the
//! same code berth runs where there is such code: single-core SHA-256 with the `sha2` crate (every
//! byte pushed is hashed once, and an UploadLayerPart body once more for SigV4), base64 decoding
//! of 20 MiB parts with `base64-simd` (UploadLayerPart), and loopback TCP bandwidth with plain
//! read/write copies through the kernel (berth's pull path over TLS and HTTP/2; plain HTTP/1
//! pulls use sendfile). Disk
//! write with fdatasync and sendfile bandwidth are measured by `bench/limits.sh` with dd and
//! python. Prints one JSON object on stdout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{MIB, random_bytes};

#[derive(clap::Args)]
pub struct LimitsArgs {
    /// Bytes to push through each measurement (binary suffixes K, M, G).
    #[arg(long, default_value = "1G")]
    pub bytes: String,
}

fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

pub fn run(args: &LimitsArgs) -> Result<Value> {
    let total = crate::parse_size(&args.bytes)?;
    ensure!(total >= 20 * MIB, "--bytes must be at least 20M");

    // SHA-256, one core, 1 MiB updates.
    let buf = random_bytes(MIB as usize);
    let start = Instant::now();
    let mut h = Sha256::new();
    let mut done = 0;
    while done < total {
        h.update(&buf);
        done += MIB;
    }
    std::hint::black_box(h.finalize());
    let sha256 = mb_s(done, start.elapsed().as_secs_f64());

    // base64 decoding of whole 20 MiB parts, into a fresh Vec each time as berth does; MB/s of
    // decoded bytes, the unit of UploadLayerPart throughput.
    let part = random_bytes(20 * MIB as usize);
    let text = base64_simd::STANDARD.encode_to_string(&part);
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let decoded = base64_simd::STANDARD
            .decode_to_vec(text.as_bytes())
            .context("decode")?;
        done += decoded.len() as u64;
        std::hint::black_box(decoded);
    }
    let base64 = mb_s(done, start.elapsed().as_secs_f64());

    // Loopback TCP: one writer thread, one reader, 1 MiB writes and 64 KiB reads.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> Result<()> {
        let mut s = TcpStream::connect(addr)?;
        let mut done = 0;
        while done < total {
            s.write_all(&buf)?;
            done += MIB;
        }
        Ok(())
    });
    let (mut s, _) = listener.accept()?;
    let mut rbuf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut got = 0u64;
    loop {
        let n = s.read(&mut rbuf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let loopback = mb_s(got, start.elapsed().as_secs_f64());
    writer.join().expect("writer thread")?;

    let out = json!({
        "bytes": total,
        "sha256_MBps": sha256,
        "base64_decode_MBps": base64,
        "loopback_copy_MBps": loopback,
    });
    eprintln!(
        "sha256 {sha256:.0} MB/s, base64 decode {base64:.0} MB/s, loopback copy {loopback:.0} MB/s"
    );
    Ok(out)
}
