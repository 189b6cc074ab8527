//! The memory budget for request bodies in flight: an UploadLayerPart is held whole (up to
//! ~28 MB of base64) until its signature checks, so without a bound a few hundred slow or
//! hostile clients get the process OOM-killed. Each request reserves what it will hold before
//! its body is read; past the budget it waits a little, then is refused as throttled, so
//! memory stays near the budget however many connections send at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::RegistryError;

/// Permits are KiB, so that `acquire_many`'s `u32` covers budgets up to 4 TiB.
const UNIT: u64 = 1024;

/// What a throttled client is told to wait before retrying (`Retry-After`, seconds): a part
/// in flight usually finishes within it.
pub const RETRY_AFTER_SECS: u64 = 1;

/// How long a request waits for room by default before it is refused: long enough to ride
/// out a burst of parts finishing, short enough that a client's own timeout never fires first.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// A budget of bytes held in memory by request bodies, shared by every front end.
#[derive(Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
}

/// Room reserved in a [`MemoryBudget`]; handed back when dropped, so keep it alive as long as
/// the bytes it stands for (the request body and what is made from it).
#[must_use = "the reservation is released when dropped"]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 1 KiB) within which a request waits up to `wait` for room.
    pub fn new(bytes: u64, wait: Duration) -> Self {
        let total_kib = u32::try_from((bytes / UNIT).max(1)).unwrap_or(u32::MAX);
        MemoryBudget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait,
        }
    }

    /// The budget, in bytes.
    pub fn total(&self) -> u64 {
        u64::from(self.total_kib) * UNIT
    }

    /// Reserves `bytes`, waiting up to the budget's wait for room; `Throttled` past it. A
    /// request larger than the whole budget reserves all of it (it runs alone rather than
    /// never). Waiters are served in order, so a large request is not starved by small ones.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, RegistryError> {
        let kib = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        let acquire = self.permits.clone().acquire_many_owned(kib);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation { _permit: permit }),
            // The semaphore is never closed; treat it like a full budget all the same.
            Ok(Err(_)) | Err(_) => Err(RegistryError::Throttled {
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }

    /// Bytes not reserved at the moment.
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

/// A default budget from the machine: a sixteenth of its memory (or of the cgroup's limit,
/// when lower), between 256 MiB and 4 GiB. That leaves the page cache, the metadata store and
/// other processes the rest, yet admits some fifty 20 MiB parts at once on a 24 GiB machine,
/// more than two cores can hash and write.
pub fn default_budget_bytes() -> u64 {
    const MIB: u64 = 1024 * 1024;
    let memory = match (physical_memory(), cgroup_limit()) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    };
    memory.map_or(1024 * MIB, |m| (m / 16).clamp(256 * MIB, 4096 * MIB))
}

/// `MemTotal` from `/proc/meminfo` (Linux), in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of the cgroup (v2) berth runs in, when it has one.
fn cgroup_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    text.trim().parse().ok() // "max" (no limit) does not parse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserves_waits_and_throttles() {
        let budget = MemoryBudget::new(10 * 1024, Duration::from_millis(50));
        let a = budget.reserve(6 * 1024).await.unwrap();
        assert_eq!(budget.available(), 4 * 1024);
        assert!(
            matches!(
                budget.reserve(6 * 1024).await,
                Err(RegistryError::Throttled { .. })
            ),
            "past the budget after the wait"
        );
        // Room freed while waiting is taken.
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(6 * 1024).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(a);
        assert!(waiter.await.unwrap(), "released on drop");
        assert_eq!(budget.available(), 10 * 1024, "and the waiter's too");
        // Larger than everything: takes everything rather than waiting forever.
        let all = budget.reserve(1 << 40).await.unwrap();
        assert_eq!(budget.available(), 0);
        drop(all);
    }

    #[test]
    fn default_is_bounded() {
        let b = default_budget_bytes();
        assert!((256 << 20..=4096 << 20).contains(&b), "{b}");
    }
}
