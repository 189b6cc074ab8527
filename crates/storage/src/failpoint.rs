//! Crash points for the crash tests. A process arms named points once at start-up (berth's
//! hidden `--failpoint` flag); reaching an armed point aborts the process as `kill -9` would:
//! no flush, no destructor, no rollback beyond what the storage itself guarantees.
//!
//! Process-wide because a crash is: the points sit in the registry and inside the storage
//! backends' transactions alike.
//!
//! Points: `upload_part.after_write` (bytes durable, metadata not updated),
//! `complete_upload.after_commit` (blob in place, upload not recorded as complete),
//! `put_image.before_record` / `put_image.after_record` (around the metadata write),
//! `put_image.before_commit` (inside the transaction, image row and tag move written but not
//! committed), `delete_image.before_commit` / `delete_image.after_commit` (around
//! BatchDeleteImage's metadata change), `gc.after_forget` (a blob's row deleted, its file not
//! yet), `replication.after_copy` (an image copied to its destination, its replication row
//! not yet marked COMPLETE).

use std::sync::OnceLock;

static ARMED: OnceLock<Vec<String>> = OnceLock::new();

/// Arms `names` for the life of the process. Only the first call counts.
pub fn arm(names: Vec<String>) {
    if !names.is_empty() {
        let _ = ARMED.set(names);
    }
}

/// Aborts the process here if the crash point `name` is armed.
pub fn hit(name: &str) {
    if ARMED.get().is_some_and(|a| a.iter().any(|f| f == name)) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
