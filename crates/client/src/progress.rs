//! Progress bars on stderr: one per blob and one overall. Hidden with `--quiet` or when
//! stderr is not a terminal (CI logs get the summary line only).

use std::io::IsTerminal as _;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: MultiProgress,
    pub overall: ProgressBar,
    quiet: bool,
    started: Instant,
}

impl Progress {
    pub fn new(quiet: bool, total: u64, what: &str) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        overall.set_message(what.to_owned());
        Self {
            multi,
            overall,
            quiet,
            started: Instant::now(),
        }
    }

    /// A bar for one blob, named by its short digest.
    pub fn blob(&self, digest: &str, size: u64) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.overall, ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message(short(digest));
        bar
    }

    /// A line above the bars (or on stderr when they are hidden), unless quiet.
    pub fn note(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Clears the bars and prints `verb ... N bytes in T (speed)`.
    pub fn finish(&self, summary: &str, moved: u64) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
        if self.quiet {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let speed = (moved as f64 / secs.max(0.001)) as u64;
        eprintln!(
            "{summary}: {} in {secs:.1}s ({}/s)",
            crate::human_bytes(moved),
            crate::human_bytes(speed)
        );
    }
}

/// `sha256:0123456789ab` -> `0123456789ab`.
pub fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}
