//! Metadata every request reads, kept in memory for a few seconds: each read from the
//! metadata store costs a hand-off to its worker thread and back (two context switches),
//! which was most of a small `/v2` request's CPU. A change made through this process forgets
//! its entry at once; entries also expire after the cache's TTL, so a change made by another
//! process sharing the metadata store (a second berth on the same data directory) is seen
//! within that time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub(crate) struct TtlCache<V> {
    ttl: Duration,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    /// Bumped by every change: a read that began before one must not cache what it read.
    generation: u64,
    entries: HashMap<String, (Instant, V)>,
}

impl<V: Clone> TtlCache<V> {
    /// Keys come from requests; a flood of made-up ones must not grow memory.
    const MAX_ENTRIES: usize = 10_000;

    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // Every change below is a single map operation: a panic cannot leave it half done.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value, or (on a miss) the generation to hand back to [`TtlCache::put`].
    pub(crate) fn get(&self, key: &str) -> Result<V, u64> {
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((at, v)) if at.elapsed() < self.ttl => Ok(v.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Caches what was read, unless something changed since the read began.
    pub(crate) fn put(&self, key: String, generation: u64, value: V) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= Self::MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value));
    }

    pub(crate) fn forget(&self, key: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_change_during_a_read_is_not_cached() {
        let c = TtlCache::new(Duration::from_millis(50));
        let g = c.get("a").unwrap_err();
        c.put("a".into(), g, 1);
        assert_eq!(c.get("a"), Ok(1));
        // A read that began before a change must not cache its (now stale) result.
        let g = c.get("b").unwrap_err();
        c.forget("b");
        c.put("b".into(), g, 2);
        assert!(c.get("b").is_err());
        c.forget("a");
        assert!(c.get("a").is_err());
        let g = c.get("a").unwrap_err();
        c.put("a".into(), g, 3);
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("a").is_err(), "expired");
    }
}
