//! Records the git commit being built, for `berth --version` and `berth_build_info`: CI and
//! people build from a clone, where `git rev-parse` answers; a source tarball without `.git`
//! (or a machine without git) gets `unknown`, unless `BERTH_COMMIT` names it.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A build without `.git` (a container build) may name its commit itself.
    println!("cargo:rerun-if-env-changed=BERTH_COMMIT");
    let given = std::env::var("BERTH_COMMIT")
        .ok()
        .filter(|c| !c.is_empty() && c != "unknown");
    let commit = given.or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Rebuild when HEAD moves: a commit, a checkout, or a branch updated by a fetch.
    if commit.is_some() {
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            watch(&Path::new(&dir).join("HEAD"));
        }
        if let (Some(common), Some(head)) = (
            git(&["rev-parse", "--git-common-dir"]),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ) {
            watch(&Path::new(&common).join(head));
            watch(&Path::new(&common).join("packed-refs"));
        }
    }
    println!(
        "cargo:rustc-env=BERTH_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

fn watch(p: &Path) {
    if p.exists() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
