//! The fence between garbage collection and writers that make a blob referenced.
//!
//! GC decides a blob is unreferenced in the metadata store and then deletes its file; a
//! completion or a mount stores (or finds) the file and then records the reference. If the two
//! interleave, the reference lands on a file GC is about to delete. Writers hold the fence
//! shared for the length of "file, then metadata"; GC holds it exclusive while it deletes
//! files. On the embedded backends the fence is an advisory `flock` on `<data-dir>/gc.lock`, so
//! it holds between processes too: `berth gc` run beside a serving `berth` waits for in-flight
//! completions, and they wait for it.
//!
//! With the metadata in PostgreSQL, nodes share no filesystem, and the fence is a PostgreSQL
//! advisory lock instead (shared for writers, exclusive for GC), taken inside a transaction on
//! a connection the guard keeps: dropping the guard rolls the transaction back, which releases
//! the lock, and so does the connection closing when a node dies. The lock's key is derived
//! from the deployment's schema, so deployments in several schemas of one database do not
//! fence each other.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::StorageError;

/// Held while the fence is taken; dropping it releases the lock (closing the descriptor, or
/// ending the transaction that holds the advisory lock).
#[must_use = "the fence is released when the guard is dropped"]
pub struct FenceGuard(#[allow(dead_code)] Held);

// Held only to be dropped.
#[allow(dead_code)]
enum Held {
    File(File),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

#[derive(Debug, Clone)]
pub struct GcFence(Kind);

#[derive(Debug, Clone)]
enum Kind {
    File(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// The advisory lock's key in the `public` schema: "berth gc" in ASCII.
#[cfg(feature = "postgres")]
const ADVISORY_KEY: i64 = 0x6265_7274_6820_6763;

/// The fence's key for the deployment whose tables the connection sees: advisory locks belong
/// to the database, not to a schema, so deployments in different schemas of one database
/// (`search_path`) must not take the same key, or each one's GC would wait for the other's
/// writers. The key is derived from the schema's name (`current_schema()`, where the
/// migrations created the tables); `public` keeps the constant that berth used before, so
/// nodes of an older version and a newer one fence each other during a rolling upgrade.
#[cfg(feature = "postgres")]
const FENCE_KEY: &str = "CASE coalesce(current_schema(), 'public') \
     WHEN 'public' THEN $1 \
     ELSE hashtextextended('berth gc fence ' || current_schema(), $1) END";

impl GcFence {
    /// Creates the lock file if needed. A data directory that cannot take it (mounted
    /// read-only) still opens: it can serve reads, and the writers that need the fence fail
    /// there anyway.
    pub fn open(data_dir: &Path) -> Self {
        let path = data_dir.join("gc.lock");
        if let Err(e) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot create the GC lock file");
        }
        Self(Kind::File(path))
    }

    /// The fence of the nodes sharing a PostgreSQL database, on its own small pool (`pool`
    /// connects to that database) so that held guards never starve metadata statements.
    #[cfg(feature = "postgres")]
    pub fn postgres(pool: sqlx::PgPool) -> Self {
        Self(Kind::Postgres(pool))
    }

    /// Taken by writers that make a blob referenced.
    pub async fn shared(&self) -> Result<FenceGuard, StorageError> {
        self.take(false).await
    }

    /// Taken by GC while it deletes blob files.
    pub async fn exclusive(&self) -> Result<FenceGuard, StorageError> {
        self.take(true).await
    }

    async fn take(&self, exclusive: bool) -> Result<FenceGuard, StorageError> {
        let path = match &self.0 {
            Kind::File(path) => path.clone(),
            #[cfg(feature = "postgres")]
            Kind::Postgres(pool) => {
                use crate::meta::postgres::db_err;
                let mut tx = pool.begin().await.map_err(db_err)?;
                let lock = if exclusive {
                    "pg_advisory_xact_lock"
                } else {
                    "pg_advisory_xact_lock_shared"
                };
                sqlx::query(&format!("SELECT {lock}({FENCE_KEY})"))
                    .bind(ADVISORY_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                return Ok(FenceGuard(Held::Postgres(tx)));
            }
        };
        // Each guard opens its own descriptor: flock belongs to the open file description,
        // so guards in one process exclude (or share with) each other exactly as guards in
        // two processes do.
        tokio::task::spawn_blocking(move || -> std::io::Result<FenceGuard> {
            let file = OpenOptions::new().read(true).open(&path)?;
            if exclusive {
                file.lock()?;
            } else {
                file.lock_shared()?;
            }
            Ok(FenceGuard(Held::File(file)))
        })
        .await
        .map_err(|e| StorageError::Other(Box::new(e)))?
        .map_err(StorageError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusive_waits_for_shared_and_shared_guards_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let fence = GcFence::open(dir.path());
        let a = fence.shared().await.unwrap();
        let _b = fence.shared().await.unwrap();
        // A second descriptor stands in for another process.
        let other = File::open(dir.path().join("gc.lock")).unwrap();
        assert!(other.try_lock().is_err(), "exclusive must wait for readers");
        drop(a);
        drop(_b);
        other.try_lock().unwrap();
        let waiting = tokio::spawn({
            let fence = fence.clone();
            async move { fence.shared().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "a writer must wait for GC");
        other.unlock().unwrap();
        waiting.await.unwrap().unwrap();
    }
}

#[cfg(all(test, feature = "postgres"))]
mod postgres_tests {
    use super::*;
    use crate::conformance::postgres::schema;

    /// The advisory-lock fence excludes as the flock does, between two pools (two nodes), and
    /// a dropped guard releases it.
    #[tokio::test]
    async fn exclusive_waits_for_shared_across_nodes() {
        let Some(schema) = schema().await else {
            return;
        };
        let node = |_| async {
            GcFence::postgres(
                crate::meta::postgres::pool(schema.options.clone(), 4)
                    .await
                    .unwrap(),
            )
        };
        let (a, b) = (node(1).await, node(2).await);
        let shared_a = a.shared().await.unwrap();
        let _shared_b = b.shared().await.unwrap();
        let gc = tokio::spawn({
            let b = b.clone();
            async move { b.exclusive().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!gc.is_finished(), "GC must wait for writers on every node");
        drop(shared_a);
        drop(_shared_b);
        tokio::time::timeout(std::time::Duration::from_secs(10), gc)
            .await
            .expect("released with the guards")
            .unwrap()
            .unwrap();
        let held = a.exclusive().await.unwrap();
        let writer = tokio::spawn({
            let b = b.clone();
            async move { b.shared().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "a writer must wait for GC");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("released with the guard")
            .unwrap()
            .unwrap();
        schema.drop().await;
    }

    /// Deployments in two schemas of one database have fences of their own: GC in one does
    /// not wait for the other's writers (advisory locks belong to the whole database).
    #[tokio::test]
    async fn schemas_of_one_database_have_fences_of_their_own() {
        let (Some(a), Some(b)) = (schema().await, schema().await) else {
            return;
        };
        let fence = |options: sqlx::postgres::PgConnectOptions| async move {
            GcFence::postgres(crate::meta::postgres::pool(options, 2).await.unwrap())
        };
        let (in_a, in_b) = (
            fence(a.options.clone()).await,
            fence(b.options.clone()).await,
        );
        let writer_in_a = in_a.shared().await.unwrap();
        let gc_in_b = tokio::time::timeout(std::time::Duration::from_secs(5), in_b.exclusive())
            .await
            .expect("GC in one schema must not wait for writers in another")
            .unwrap();
        // Within a schema it is still a fence.
        let gc_in_a = tokio::spawn({
            let in_a = in_a.clone();
            async move { in_a.exclusive().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !gc_in_a.is_finished(),
            "GC must wait for writers of its schema"
        );
        drop(writer_in_a);
        tokio::time::timeout(std::time::Duration::from_secs(10), gc_in_a)
            .await
            .expect("released with the guard")
            .unwrap()
            .unwrap();
        drop(gc_in_b);
        a.drop().await;
        b.drop().await;
    }

    /// `PostgresPools::fence` bounds the guards a node holds at once: the next one waits for
    /// a connection of the pool.
    #[tokio::test]
    async fn the_fence_pool_has_its_configured_size() {
        let Some(schema) = schema().await else {
            return;
        };
        let base = std::env::var("BERTH_TEST_POSTGRES_URL").unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={}", schema.name);
        let dir = tempfile::tempdir().unwrap();
        let pools = crate::PostgresPools {
            metadata: 1,
            fence: 2,
        };
        let storage = crate::Storage::open_with_pools(
            dir.path(),
            Some(&crate::Metadata::Postgres(url)),
            pools,
        )
        .await
        .unwrap();
        let first = storage.gc_fence.shared().await.unwrap();
        let _second = storage.gc_fence.shared().await.unwrap();
        let third = tokio::spawn({
            let fence = storage.gc_fence.clone();
            async move { fence.shared().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !third.is_finished(),
            "a third guard must wait for one of the pool's two connections"
        );
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(9), third)
            .await
            .expect("a connection comes back with the first guard")
            .unwrap()
            .unwrap();
        drop(_second);
        drop(storage);
        schema.drop().await;
    }
}
