//! The shared metadata store: PostgreSQL, for several berth nodes over one database.
//!
//! Transactions run under READ COMMITTED. A rule that reads and then writes takes row locks
//! first (see `sql::POSTGRES`): the image row for the tags-per-image limit, the repository row
//! for "delete only if empty", the link and blob rows between PutImage and garbage collection;
//! statements after a lock see what the previous holder committed. Single-statement rules
//! (tag moves, record_part, upload claims, leases) are conditional writes, which PostgreSQL
//! re-checks against the latest row version. A deadlock or serialization failure answers
//! `Conflict`, which the callers already retry.
//!
//! No TLS stack is compiled in (sqlx without its TLS features): connect over a private network
//! or a local socket. Migrations run at start under sqlx's advisory lock (`pg_advisory_lock`
//! keyed by the database's name), so nodes starting together apply them once.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use model::{Digest, ImageTag, RepositoryName, Service, UploadId};
use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::codec::*;
use super::sql;
use super::*;

fn migrator() -> Migrator {
    let migrations = vec![
        Migration::new(
            1,
            Cow::Borrowed("initial"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/postgres/0001_initial.sql")),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("settings"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/postgres/0002_settings.sql")),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("events"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/postgres/0005_events.sql")),
            false,
        ),
        Migration::new(
            6,
            Cow::Borrowed("image states"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/postgres/0006_image_states.sql"
            )),
            false,
        ),
        Migration::new(
            8,
            Cow::Borrowed("repository usage"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/postgres/0008_repository_usage.sql"
            )),
            false,
        ),
        Migration::new(
            9,
            Cow::Borrowed("event detail"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/postgres/0009_event_detail.sql"
            )),
            false,
        ),
        Migration::new(
            7,
            Cow::Borrowed("replication"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/postgres/0007_replication.sql"
            )),
            false,
        ),
    ];
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// sqlx's errors in the kinds the registry acts on: the server gone or refusing connections is
/// `Unavailable` (ECR ServerException, `/v2` 503); losing a race is `Conflict`.
pub(crate) fn db_err(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::RowNotFound => StorageError::NotFound,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StorageError::Unavailable(Box::new(e)),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            // serialization_failure, deadlock_detected
            Some("40001" | "40P01") => StorageError::Conflict("a concurrent transaction won"),
            // connection_exception (08xxx), admin_shutdown, crash_shutdown, cannot_connect_now,
            // too_many_connections, read_only_sql_transaction (a standby after a failover)
            Some(c)
                if c.starts_with("08")
                    || matches!(c, "57P01" | "57P02" | "57P03" | "53300" | "25006") =>
            {
                StorageError::Unavailable(Box::new(e))
            }
            _ => StorageError::Other(Box::new(e)),
        },
        _ => StorageError::Other(Box::new(e)),
    }
}

pub struct PostgresMetaStore {
    pool: PgPool,
}

impl PostgresMetaStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`) and applies the
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StorageError::Other(Box::new(e)))?;
        Self::open_with(options).await
    }

    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StorageError> {
        Self::open_sized(options, crate::PostgresPools::default().metadata).await
    }

    /// [`PostgresMetaStore::open_with`], with at most `connections` connections (see
    /// [`crate::PostgresPools`]).
    pub async fn open_sized(
        options: PgConnectOptions,
        connections: u32,
    ) -> Result<Self, StorageError> {
        let pool = pool(options, connections).await?;
        migrator().run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_err(e),
            e => StorageError::Other(Box::new(e)),
        })?;
        Ok(Self { pool })
    }

    /// The pool, for what coordinates through the same database (the GC fence).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn lock_then_delete(
        &self,
        lock: &str,
        delete: &str,
        binds: (Option<i64>, &str),
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let lock = format!("{lock}{}", sql::POSTGRES.for_update);
        let mut q = sqlx::query(&lock);
        if let Some(id) = binds.0 {
            q = q.bind(id);
        }
        q.bind(binds.1)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut q = sqlx::query(delete);
        if let Some(id) = binds.0 {
            q = q.bind(id);
        }
        let res = match q.bind(binds.1).execute(&mut *tx).await {
            Ok(res) => res,
            // A link made after the lock was taken (its key lock waited for ours): in use.
            Err(e) if is_foreign_key_violation(&e) => return Ok(false),
            Err(e) => return Err(db_err(e)),
        };
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }
}

/// A pool that reconnects by itself: a connection is checked before it is lent out, so one
/// broken by a restart of the server is replaced instead of failing a request.
pub(crate) async fn pool(options: PgConnectOptions, size: u32) -> Result<PgPool, StorageError> {
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(db_err)
}

fn repository_from_row(row: &PgRow) -> Result<RepositoryRecord, StorageError> {
    let (service, registry_id) = split_registry_key(row.get("registry_id"));
    Ok(RepositoryRecord {
        id: RepositoryId(row.get("id")),
        service,
        registry_id,
        name: RepositoryName::parse(row.get::<&str, _>("name"))
            .map_err(|_| corrupt("repository name"))?,
        created_at: row.get("created_at"),
        image_tag_mutability: row.get("image_tag_mutability"),
        mutability_exclusions: decode_exclusions(row.get("mutability_exclusions")),
        scan_on_push: row.get::<i64, _>("scan_on_push") != 0,
        encryption_type: row.get("encryption_type"),
        kms_key: row.get("kms_key"),
        policy: row.get("policy"),
        tags: decode_tags(row.get("tags_json"))?,
    })
}

/// A repository's columns and its resource tags as `[[key, value], ...]` in `tags_json`.
const REPOSITORY_WITH_TAGS: &str = "SELECT r.*, (SELECT coalesce(json_agg(json_build_array(key, value) ORDER BY position), '[]')::text
            FROM repository_tags WHERE repository_id = r.id) AS tags_json
     FROM repositories r";

fn image_from_row(row: &PgRow) -> Result<ImageRecord, StorageError> {
    Ok(ImageRecord {
        digest: parse_digest(row.get("digest"))?,
        manifest: row.get("manifest"),
        media_type: row.get("media_type"),
        artifact_media_type: row.get("artifact_media_type"),
        subject: row
            .get::<Option<&str>, _>("subject")
            .map(parse_digest)
            .transpose()?,
        size: row.get::<i64, _>("size") as u64,
        pushed_at: row.get("pushed_at"),
        state: state_from_row(row),
    })
}

/// A row of [`sql::IMAGE_STATES_BETWEEN`].
fn state_row(row: &PgRow) -> Result<(Digest, ImageState), StorageError> {
    Ok((
        parse_digest(row.get("digest"))?,
        ImageState {
            archived: row.get::<i64, _>("archived") != 0,
            last_archived_at: row.get("last_archived_at"),
            last_activated_at: row.get("last_activated_at"),
            last_pulled_at: row.get("last_pulled_at"),
        },
    ))
}

/// The `state_*` columns of [`sql::GET_IMAGE`] and [`sql::IMAGE_BY_TAG`]; default for queries
/// that do not join the states, and for an image without a state row.
fn state_from_row(row: &PgRow) -> ImageState {
    let col = |name: &str| row.try_get::<Option<i64>, _>(name).ok().flatten();
    ImageState {
        archived: col("state_archived").is_some_and(|a| a != 0),
        last_archived_at: col("state_last_archived_at"),
        last_activated_at: col("state_last_activated_at"),
        last_pulled_at: col("state_last_pulled_at"),
    }
}

fn upload_from_row(row: &PgRow) -> Result<UploadRecord, StorageError> {
    Ok(UploadRecord {
        id: UploadId::parse(row.get("id")).ok_or_else(|| corrupt("upload id"))?,
        repository: RepositoryId(row.get("repository_id")),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        received: row.get::<i64, _>("received") as u64,
        part_count: row.get::<i64, _>("part_count") as u32,
        last_part_size: row.get::<i64, _>("last_part_size") as u64,
        short_part_seen: row.get::<i64, _>("short_part_seen") != 0,
        hash_state: row.get("hash_state"),
        staging: row.get("staging"),
    })
}

/// The `AND i.tagged = ...` that keeps the images `status` wants (images_by_tag_status).
fn tag_status_filter(status: TagStatus) -> &'static str {
    match status {
        TagStatus::Any => "",
        TagStatus::Tagged => "AND i.tagged = 1",
        TagStatus::Untagged => "AND i.tagged = 0",
    }
}

#[async_trait]
impl MetaStore for PostgresMetaStore {
    async fn create_repository_with_settings(
        &self,
        repo: RepositoryRecord,
        settings: &[(&str, &[u8])],
    ) -> Result<RepositoryRecord, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let res = sqlx::query_scalar(sql::INSERT_REPOSITORY)
            .bind(repo.service.registry_key(&repo.registry_id).as_ref())
            .bind(repo.name.as_str())
            .bind(repo.created_at)
            .bind(&repo.image_tag_mutability)
            .bind(encode_exclusions(&repo.mutability_exclusions))
            .bind(repo.scan_on_push as i64)
            .bind(&repo.encryption_type)
            .bind(&repo.kms_key)
            .fetch_one(&mut *tx)
            .await;
        let id = match res {
            Ok(id) => RepositoryId(id),
            Err(e) if is_unique_violation(&e) => {
                return Err(StorageError::Conflict("repository exists"));
            }
            Err(e) => return Err(db_err(e)),
        };
        for (pos, t) in repo.tags.iter().enumerate() {
            sqlx::query(sql::INSERT_REPOSITORY_TAG)
                .bind(id.0)
                .bind(&t.key)
                .bind(&t.value)
                .bind(pos as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let changes: Vec<(&str, Option<&[u8]>)> =
            settings.iter().map(|(n, v)| (*n, Some(*v))).collect();
        sql::put_repository_settings_tx!(&mut tx, id, &changes).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(RepositoryRecord { id, ..repo })
    }

    async fn get_repository(
        &self,
        service: Service,
        registry_id: &str,
        name: &RepositoryName,
    ) -> Result<Option<RepositoryRecord>, StorageError> {
        let registry_id = service.registry_key(registry_id);
        let registry_id = registry_id.as_ref();
        let row = sqlx::query(&format!(
            "{REPOSITORY_WITH_TAGS} WHERE registry_id = $1 AND name = $2"
        ))
        .bind(registry_id)
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(repository_from_row).transpose()
    }

    async fn list_repositories(
        &self,
        service: Service,
        registry_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RepositoryRecord>, StorageError> {
        let registry_id = service.registry_key(registry_id);
        let registry_id = registry_id.as_ref();
        let rows = sqlx::query(&format!(
            "{REPOSITORY_WITH_TAGS} WHERE registry_id = $1 AND name > $2 ORDER BY name LIMIT $3"
        ))
        .bind(registry_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(repository_from_row).collect()
    }

    async fn delete_repository(
        &self,
        id: RepositoryId,
        only_if_empty: bool,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The repository's row lock waits for pushes in flight (an image insert holds a key
        // lock on it) and holds off new ones, so "empty" stays true until the delete.
        let found: Option<i64> = sqlx::query_scalar(&format!(
            "{}{}",
            sql::REPOSITORY_ROW,
            sql::POSTGRES.for_update
        ))
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if found.is_none() {
            return Err(StorageError::NotFound);
        }
        if only_if_empty {
            let images: i64 = sqlx::query_scalar(sql::COUNT_IMAGES)
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if images > 0 {
                return Err(StorageError::Conflict("repository not empty"));
            }
        }
        sqlx::query(sql::DELETE_REPOSITORY)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn set_repository_policy(
        &self,
        id: RepositoryId,
        policy: Option<&str>,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::SET_REPOSITORY_POLICY)
            .bind(policy)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    async fn set_image_tag_mutability(
        &self,
        id: RepositoryId,
        mutability: &str,
        exclusions: &[MutabilityExclusion],
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::SET_IMAGE_TAG_MUTABILITY)
            .bind(mutability)
            .bind(encode_exclusions(exclusions))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    async fn set_scan_on_push(
        &self,
        id: RepositoryId,
        scan_on_push: bool,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::SET_SCAN_ON_PUSH)
            .bind(i64::from(scan_on_push))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    async fn registry_policy(&self, registry_id: &str) -> Result<Option<String>, StorageError> {
        sqlx::query_scalar(sql::REGISTRY_POLICY)
            .bind(registry_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn set_registry_policy(
        &self,
        registry_id: &str,
        policy: Option<&str>,
    ) -> Result<(), StorageError> {
        let q = match policy {
            Some(p) => sqlx::query(sql::SET_REGISTRY_POLICY)
                .bind(registry_id)
                .bind(p),
            None => sqlx::query(sql::DELETE_REGISTRY_POLICY).bind(registry_id),
        };
        q.execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn tag_repository(
        &self,
        repo: RepositoryId,
        tags: &[ResourceTag],
        max: usize,
    ) -> Result<Vec<ResourceTag>, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let out = sql::tag_repository_tx!(&mut tx, &sql::POSTGRES, repo, tags, max).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    async fn untag_repository(
        &self,
        repo: RepositoryId,
        keys: &[String],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let found: Option<i64> = sqlx::query_scalar(sql::REPOSITORY_ROW)
            .bind(repo.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if found.is_none() {
            return Err(StorageError::NotFound);
        }
        for key in keys {
            sqlx::query(sql::DELETE_REPOSITORY_TAG)
                .bind(repo.0)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn repository_setting(
        &self,
        repo: RepositoryId,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        sqlx::query_scalar(sql::REPOSITORY_SETTING)
            .bind(repo.0)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_repository_settings(
        &self,
        repo: RepositoryId,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let found: Option<i64> = sqlx::query_scalar(sql::REPOSITORY_ROW)
            .bind(repo.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if found.is_none() {
            return Err(StorageError::NotFound);
        }
        sql::put_repository_settings_tx!(&mut tx, repo, changes).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn repositories_with_setting(
        &self,
        name: &str,
    ) -> Result<Vec<(Service, String, RepositoryName)>, StorageError> {
        let rows: Vec<(String, String)> = sqlx::query_as(sql::REPOSITORIES_WITH_SETTING)
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        repository_keys(rows)
    }

    async fn registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        sqlx::query_scalar(sql::REGISTRY_SETTING)
            .bind(service.registry_key(registry_id).as_ref())
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn swap_registry_setting(
        &self,
        service: Service,
        registry_id: &str,
        name: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        let key = service.registry_key(registry_id);
        let q = match (expected, new) {
            (None, None) => {
                return Ok(self
                    .registry_setting(service, registry_id, name)
                    .await?
                    .is_none());
            }
            (None, Some(v)) => sqlx::query(sql::INSERT_REGISTRY_SETTING_IF_ABSENT)
                .bind(key.as_ref())
                .bind(name)
                .bind(v),
            (Some(old), Some(v)) => sqlx::query(sql::UPDATE_REGISTRY_SETTING_IF)
                .bind(key.as_ref())
                .bind(name)
                .bind(v)
                .bind(old),
            (Some(old), None) => sqlx::query(sql::DELETE_REGISTRY_SETTING_IF)
                .bind(key.as_ref())
                .bind(name)
                .bind(old),
        };
        let done = q.execute(&self.pool).await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_registry_settings(
        &self,
        service: Service,
        registry_id: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        let key = service.registry_key(registry_id);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (name, value) in changes {
            let q = match value {
                Some(v) => sqlx::query(sql::PUT_REGISTRY_SETTING)
                    .bind(key.as_ref())
                    .bind(*name)
                    .bind(*v),
                None => sqlx::query(sql::DELETE_REGISTRY_SETTING)
                    .bind(key.as_ref())
                    .bind(*name),
            };
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn repository_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<RepositoryBlob>, StorageError> {
        let row = sqlx::query(sql::REPOSITORY_BLOB)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| RepositoryBlob {
            size: r.get::<i64, _>(0) as u64,
            media_type: r.get(1),
            referenced: r.get::<i64, _>(2) != 0,
            archived_only: r.get::<i64, _>(2) == 1,
        }))
    }

    async fn link_blob(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        now: Millis,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::LINK_BLOB)
            .bind(repo.0)
            .bind(now)
            .bind(digest.as_str())
            .execute(&self.pool)
            .await;
        let res = match res {
            Ok(res) => res,
            // The blob's row went (GC) between the SELECT and the key check.
            Err(e) if is_foreign_key_violation(&e) => return Err(StorageError::NotFound),
            Err(e) => return Err(db_err(e)),
        };
        if res.rows_affected() == 0 && self.repository_blob(repo, digest).await?.is_none() {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    async fn create_upload(&self, u: UploadRecord) -> Result<(), StorageError> {
        let res = sqlx::query(sql::INSERT_UPLOAD)
            .bind(u.id.to_string())
            .bind(u.repository.0)
            .bind(u.created_at)
            .bind(u.updated_at)
            .bind(u.received as i64)
            .bind(u.part_count as i64)
            .bind(u.last_part_size as i64)
            .bind(u.short_part_seen as i64)
            .bind(&u.hash_state)
            .bind(&u.staging)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            // The repository was deleted meanwhile.
            Err(e) if is_foreign_key_violation(&e) => Err(StorageError::NotFound),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn get_upload(&self, id: UploadId) -> Result<Option<UploadRecord>, StorageError> {
        let row = sqlx::query(sql::GET_UPLOAD)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn record_part(
        &self,
        u: &UploadRecord,
        expected_received: u64,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::RECORD_PART_RELEASING)
            .bind(u.updated_at)
            .bind(u.received as i64)
            .bind(u.part_count as i64)
            .bind(u.last_part_size as i64)
            .bind(u.short_part_seen as i64)
            .bind(&u.hash_state)
            .bind(&u.staging)
            .bind(u.id.to_string())
            .bind(expected_received as i64)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_upload(u.id).await? {
            Some(_) => Err(StorageError::Conflict("upload moved on")),
            None => Err(StorageError::NotFound),
        }
    }

    async fn complete_upload(
        &self,
        id: UploadId,
        repo: RepositoryId,
        digest: &Digest,
        size: u64,
        now: Millis,
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let res = sqlx::query(sql::DELETE_UPLOAD)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        sqlx::query(sql::INSERT_BLOB)
            .bind(digest.as_str())
            .bind(size as i64)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let linked = sqlx::query(sql::INSERT_LINK)
            .bind(repo.0)
            .bind(digest.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await;
        let linked = match linked {
            Ok(l) => l,
            // GC removed the blob's row between the two inserts: nothing was stored.
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StorageError::Conflict("the blob was collected meanwhile"));
            }
            Err(e) => return Err(db_err(e)),
        };
        tx.commit().await.map_err(db_err)?;
        Ok(linked.rows_affected() == 0)
    }

    async fn delete_upload(&self, id: UploadId) -> Result<(), StorageError> {
        sqlx::query(sql::DELETE_UPLOAD)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn count_uploads(&self, repo: RepositoryId) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_UPLOADS)
            .bind(repo.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    async fn repository_usage(&self, repo: RepositoryId) -> Result<RepositoryUsage, StorageError> {
        let (images, bytes): (i64, i64) = sqlx::query_as(sql::REPOSITORY_USAGE)
            .bind(repo.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(RepositoryUsage {
            images: images as u64,
            bytes: bytes as u64,
        })
    }

    async fn claim_upload(
        &self,
        id: UploadId,
        token: &str,
        now: Millis,
        until: Millis,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::CLAIM_UPLOAD)
            .bind(id.to_string())
            .bind(token)
            .bind(now)
            .bind(until)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_upload(id).await? {
            Some(_) => Err(StorageError::Conflict("another part is being written")),
            None => Err(StorageError::NotFound),
        }
    }

    async fn release_upload(&self, id: UploadId, token: &str) -> Result<(), StorageError> {
        sqlx::query(sql::RELEASE_UPLOAD)
            .bind(id.to_string())
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StorageError> {
        let res = sqlx::query(sql::TAKE_LEASE)
            .bind(name)
            .bind(holder)
            .bind(until)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        sqlx::query(sql::RELEASE_LEASE)
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn idle_uploads(&self, idle_before: Millis) -> Result<Vec<UploadId>, StorageError> {
        let ids: Vec<String> = sqlx::query_scalar(sql::IDLE_UPLOADS)
            .bind(idle_before)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        ids.iter()
            .map(|i| UploadId::parse(i).ok_or_else(|| corrupt("upload id")))
            .collect()
    }

    async fn unreferenced_links(
        &self,
        linked_before: Millis,
    ) -> Result<Vec<(RepositoryId, Digest)>, StorageError> {
        let rows = sqlx::query(sql::UNREFERENCED_LINKS)
            .bind(linked_before)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((RepositoryId(r.get(0)), parse_digest(r.get(1))?)))
            .collect()
    }

    async fn unlink_if_unreferenced(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<bool, StorageError> {
        // The link's row lock waits for a PutImage holding it; the DELETE, a
        // statement of its own, then sees the image that PutImage committed.
        self.lock_then_delete(
            sql::LINK_ROW,
            sql::UNLINK_IF_UNREFERENCED,
            (Some(repo.0), digest.as_str()),
        )
        .await
    }

    async fn unlinked_blobs(
        &self,
        created_before: Millis,
    ) -> Result<Vec<(Digest, u64)>, StorageError> {
        let rows = sqlx::query(sql::UNLINKED_BLOBS)
            .bind(created_before)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((parse_digest(r.get(0))?, r.get::<i64, _>(1) as u64)))
            .collect()
    }

    async fn delete_blob_if_unlinked(&self, digest: &Digest) -> Result<bool, StorageError> {
        self.lock_then_delete(
            sql::BLOB_ROW,
            sql::DELETE_BLOB_IF_UNLINKED,
            (None, digest.as_str()),
        )
        .await
    }

    async fn repositories_holding(
        &self,
        service: Service,
        registry_id: &str,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<RepositoryName>, StorageError> {
        let names: Vec<String> = sqlx::query_scalar(sql::REPOSITORIES_HOLDING)
            .bind(digest.as_str())
            .bind(service.registry_key(registry_id).as_ref())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        names
            .iter()
            .map(|n| RepositoryName::parse(n).map_err(|_| corrupt("repository name")))
            .collect()
    }

    async fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, StorageError> {
        let rows = sqlx::query(sql::ALL_BLOBS)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((parse_digest(r.get(0))?, r.get::<i64, _>(1) as u64)))
            .collect()
    }

    async fn get_image(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<ImageRecord>, StorageError> {
        let row = sqlx::query(sql::GET_IMAGE)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(image_from_row).transpose()
    }

    async fn resolve_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<Digest>, StorageError> {
        let d: Option<String> = sqlx::query_scalar(sql::RESOLVE_TAG)
            .bind(repo.0)
            .bind(tag.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        d.as_deref().map(parse_digest).transpose()
    }

    async fn image_by_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<ImageRecord>, StorageError> {
        let row = sqlx::query(sql::IMAGE_BY_TAG)
            .bind(repo.0)
            .bind(tag.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(image_from_row).transpose()
    }

    async fn image_tags(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageTag>, StorageError> {
        let tags: Vec<String> = sqlx::query_scalar(sql::IMAGE_TAGS)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        tags.iter().map(|t| parse_tag(t)).collect()
    }

    async fn put_image_noting(
        &self,
        repo: RepositoryId,
        image: &ImageRecord,
        refs: &ImageReferences,
        tag: Option<TagWrite<'_>>,
        max_tags: usize,
        event: Option<&ImageEvent>,
        replication: Option<&ReplicationWork>,
    ) -> Result<PutImageOutcome, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let outcome =
            sql::put_image_tx!(&mut tx, &sql::POSTGRES, repo, image, refs, tag, max_tags).await;
        let outcome = match outcome {
            // The repository went meanwhile (its delete held the row lock first).
            Err(StorageError::Other(e))
                if e.downcast_ref::<sqlx::Error>()
                    .is_some_and(is_foreign_key_violation) =>
            {
                return Err(StorageError::NotFound);
            }
            other => other?,
        };
        if let Some(event) = event
            && (outcome.image_created || outcome.tag_changed)
        {
            let tag = tag.map(|w| match w {
                TagWrite::Move(t) | TagWrite::IfUnchanged(t, _) => t.as_str(),
            });
            let tag = if outcome.tag_changed { tag } else { None };
            sql::insert_events_tx!(&mut tx, event, image.digest.as_str(), [tag]).await?;
        }
        if let Some(work) = replication
            && (outcome.image_created || outcome.tag_changed)
        {
            let tag = tag.map(|w| match w {
                TagWrite::Move(t) | TagWrite::IfUnchanged(t, _) => t.as_str(),
            });
            let tag = if outcome.tag_changed { tag } else { None };
            let digest = image.digest.as_str();
            sql::insert_replications_tx!(&mut tx, work, repo, digest, tag, image.pushed_at).await?;
        }
        crate::failpoint::hit("put_image.before_commit");
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn parent_indexes(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<Digest>, StorageError> {
        let rows: Vec<String> = sqlx::query_scalar(sql::PARENT_INDEXES)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|d| parse_digest(d)).collect()
    }

    async fn delete_tag_noting(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let was: Option<String> = sqlx::query_scalar(sql::DELETE_TAG_RETURNING)
            .bind(repo.0)
            .bind(tag.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let (Some(event), Some(digest)) = (event, &was) {
            sql::insert_events_tx!(&mut tx, event, digest.as_str(), [Some(tag.as_str())]).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(was.is_some())
    }

    async fn delete_image_noting(
        &self,
        repo: RepositoryId,
        digest: &Digest,
        event: Option<&ImageEvent>,
    ) -> Result<bool, StorageError> {
        let Some(event) = event else {
            let res = sqlx::query(sql::DELETE_IMAGE)
                .bind(repo.0)
                .bind(digest.as_str())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            return Ok(res.rows_affected() == 1);
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let deleted = sql::delete_image_tx!(&mut tx, repo, digest, event).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(deleted)
    }

    async fn list_tags(
        &self,
        repo: RepositoryId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageTag>, StorageError> {
        let tags: Vec<String> = sqlx::query_scalar(
            "SELECT tag FROM image_tags WHERE repository_id = $1 AND tag > $2 ORDER BY tag LIMIT $3",
        )
        .bind(repo.0)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        tags.iter().map(|t| parse_tag(t)).collect()
    }

    async fn list_referrers(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageRecord>, StorageError> {
        let rows = sqlx::query(sql::LIST_REFERRERS)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(image_from_row).collect()
    }

    async fn list_image_ids(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<(Digest, Option<ImageTag>)>, StorageError> {
        let (after_digest, after_tag) = after.unwrap_or(("", ""));
        // As on SQLite: images in digest order joined to their tags in tag order; an untagged
        // image's one NULL tag sorts as the empty tag its key carries.
        let filter = tag_status_filter(status);
        let rows = sqlx::query(&format!(
            "SELECT i.digest, t.tag FROM images i
               LEFT JOIN image_tags t ON t.repository_id = i.repository_id AND t.digest = i.digest
             WHERE i.repository_id = $1 {filter} AND i.digest >= $2
               AND (i.digest > $2 OR coalesce(t.tag, '') > $3)
             ORDER BY i.digest, t.tag NULLS FIRST LIMIT $4"
        ))
        .bind(repo.0)
        .bind(after_digest)
        .bind(after_tag)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_digest(r.get(0))?,
                    r.get::<Option<&str>, _>(1).map(parse_tag).transpose()?,
                ))
            })
            .collect()
    }

    async fn list_images(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageSummary>, StorageError> {
        let filter = tag_status_filter(status);
        let rows = sqlx::query(&format!(
            "SELECT i.digest, i.media_type, i.artifact_media_type, i.subject, i.size, i.pushed_at,
                    ARRAY(SELECT t.tag FROM image_tags t
                           WHERE t.repository_id = i.repository_id AND t.digest = i.digest
                           ORDER BY t.tag) AS tags
             FROM images i
             WHERE i.repository_id = $1 {filter} AND i.digest > $2
             ORDER BY i.digest LIMIT $3"
        ))
        .bind(repo.0)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(ImageSummary {
                    digest: parse_digest(r.get(0))?,
                    media_type: r.get(1),
                    artifact_media_type: r.get(2),
                    subject: r.get::<Option<&str>, _>(3).map(parse_digest).transpose()?,
                    size: r.get::<i64, _>(4) as u64,
                    pushed_at: r.get(5),
                    tags: r
                        .get::<Vec<String>, _>(6)
                        .iter()
                        .map(|t| parse_tag(t))
                        .collect::<Result<_, _>>()?,
                    state: ImageState::default(),
                })
            })
            .collect()
    }

    async fn image_states_between(
        &self,
        repo: RepositoryId,
        first: &str,
        last: &str,
    ) -> Result<Vec<(Digest, ImageState)>, StorageError> {
        let rows = sqlx::query(sql::IMAGE_STATES_BETWEEN)
            .bind(repo.0)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(state_row).collect()
    }

    async fn set_storage_class(
        &self,
        repo: RepositoryId,
        digests: &[Digest],
        archive: bool,
        at: Millis,
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (i, digest) in digests.iter().enumerate() {
            let res = sqlx::query(sql::SET_STORAGE_CLASS)
                .bind(repo.0)
                .bind(digest.as_str())
                .bind(i64::from(archive))
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if i == 0 && res.rows_affected() == 0 {
                return Ok(false);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn record_pull_times(
        &self,
        pulls: &[(RepositoryId, Digest, Millis)],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (repo, digest, at) in pulls {
            sqlx::query(sql::RECORD_PULL_TIME)
                .bind(repo.0)
                .bind(digest.as_str())
                .bind(*at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn record_event(
        &self,
        event: &ImageEvent,
        tag: Option<&str>,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let digest = event.digest.as_ref().map_or("", |d| d.as_str());
        sql::insert_events_tx!(&mut tx, event, digest, [tag]).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn due_events(&self, now: Millis, limit: u32) -> Result<Vec<EventRecord>, StorageError> {
        let rows: Vec<sql::EventRow> = sqlx::query_as(sql::DUE_EVENTS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(sql::event_record).collect()
    }

    async fn delete_event(&self, id: i64) -> Result<(), StorageError> {
        sqlx::query(sql::DELETE_EVENT)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn retry_event(
        &self,
        id: i64,
        delivered_to: &[String],
        next_attempt_at: Millis,
        give_up: bool,
    ) -> Result<(), StorageError> {
        sqlx::query(sql::RETRY_EVENT)
            .bind(delivered_to.join("\n"))
            .bind(next_attempt_at)
            .bind(i64::from(give_up))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StorageError> {
        let (pending, given_up): (i64, i64) = sqlx::query_as(sql::EVENT_BACKLOG)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(EventBacklog {
            pending: pending.max(0) as u64,
            given_up: given_up.max(0) as u64,
        })
    }

    async fn fold_usage(&self, batch: u32) -> Result<u64, StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let folded = sql::fold_usage_tx!(&mut tx, batch).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(folded)
    }

    async fn storage_usage(&self, largest: u32) -> Result<StorageUsage, StorageError> {
        let top = sqlx::query_as(&sql::largest_repositories())
            .bind(i64::from(largest))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let registries = sqlx::query_as(&sql::registry_usage())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        sql::storage_usage(top, registries)
    }

    async fn repository_storage(
        &self,
        repo: RepositoryId,
    ) -> Result<RepositoryUsage, StorageError> {
        let (images, bytes): (i64, i64) = sqlx::query_as(sql::ONE_REPOSITORY_USAGE)
            .bind(repo.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(RepositoryUsage {
            images: images.max(0) as u64,
            bytes: bytes.max(0) as u64,
        })
    }

    async fn repositories_storage(
        &self,
        repos: &[RepositoryId],
    ) -> Result<Vec<(RepositoryId, RepositoryUsage)>, StorageError> {
        if repos.is_empty() {
            return Ok(Vec::new());
        }
        if repos.len() > MAX_STORAGE_READS {
            return Err(StorageError::Other(
                format!("{} repositories asked for at once", repos.len()).into(),
            ));
        }
        let text = sql::some_repositories_usage(repos.len());
        let mut q = sqlx::query_as(&text);
        for r in repos {
            q = q.bind(r.0);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        Ok(sql::repositories_usage(rows))
    }

    async fn due_replications(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ReplicationTask>, StorageError> {
        let rows: Vec<sql::ReplicationRow> = sqlx::query_as(sql::DUE_REPLICATIONS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(sql::replication_task).collect()
    }

    async fn finish_replication(
        &self,
        id: i64,
        status: &str,
        failure_code: Option<&str>,
        now: Millis,
        event: Option<(&ImageEvent, Option<&str>)>,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let ended = sqlx::query(sql::FINISH_REPLICATION)
            .bind(status)
            .bind(failure_code)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected()
            == 1;
        sqlx::query(sql::PRUNE_REPLICATIONS)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // A row ended already (by another node's attempt) reported its outcome then.
        if let Some((event, tag)) = event.filter(|_| ended) {
            let digest = event.digest.as_ref().map_or("", |d| d.as_str());
            sql::insert_events_tx!(&mut tx, event, digest, [tag]).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn retry_replication(
        &self,
        id: i64,
        next_attempt_at: Millis,
        failure_code: Option<&str>,
        now: Millis,
    ) -> Result<(), StorageError> {
        sqlx::query(sql::RETRY_REPLICATION)
            .bind(next_attempt_at)
            .bind(failure_code)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn replication_statuses(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ReplicationStatusRecord>, StorageError> {
        let rows: Vec<(String, String, String, Option<String>)> =
            sqlx::query_as(sql::REPLICATION_STATUSES)
                .bind(repo.0)
                .bind(digest.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(sql::replication_statuses(rows))
    }
}
