//! The embedded metadata store: SQLite in WAL mode with one writer connection and a pool of
//! readers, `synchronous=FULL` so that an acknowledged write survives power loss as well as
//! `kill -9`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use model::{Digest, ImageTag, RepositoryName, Service, UploadId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, SqlitePool};

use super::codec::*;
use super::sql;
use super::*;

const READERS: usize = 4;

fn migrator() -> Migrator {
    let migrations = vec![
        Migration::new(
            1,
            Cow::Borrowed("initial"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0001_initial.sql")),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("policies"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0002_policies.sql")),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("listing indexes"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0003_listing_indexes.sql"
            )),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("upload staging"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0004_upload_staging.sql"
            )),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("coordination"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0005_coordination.sql"
            )),
            false,
        ),
        Migration::new(
            6,
            Cow::Borrowed("blob links by digest"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0006_blob_links_by_digest.sql"
            )),
            false,
        ),
        Migration::new(
            7,
            Cow::Borrowed("settings"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0007_settings.sql")),
            false,
        ),
        Migration::new(
            10,
            Cow::Borrowed("events"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0010_events.sql")),
            false,
        ),
        Migration::new(
            11,
            Cow::Borrowed("image states"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0011_image_states.sql"
            )),
            false,
        ),
        Migration::new(
            13,
            Cow::Borrowed("repository usage"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0013_repository_usage.sql"
            )),
            false,
        ),
        Migration::new(
            12,
            Cow::Borrowed("replication"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0012_replication.sql")),
            false,
        ),
        Migration::new(
            14,
            Cow::Borrowed("event detail"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(
                "../../migrations/sqlite/0014_event_detail.sql"
            )),
            false,
        ),
    ];
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

pub struct SqliteMetaStore {
    writer: SqlitePool,
    readers: Readers,
    /// Upload claims (token, until), in memory: one process serves a SQLite database (`berth
    /// gc` beside it writes no parts), and a claim must not outlive a process killed in the
    /// middle of a part, or the retry after its restart would wait for the claim to expire.
    claims: Mutex<HashMap<UploadId, (String, Millis)>>,
}

/// The read-only connections, lent out one statement at a time. sqlx's pool costs two round
/// trips to a connection's worker thread besides the statement's own: a ping before lending it
/// (`test_before_acquire`) and a ping from a task it spawns when the connection comes back,
/// which no option turns off. Those hand-offs between threads were most of a small request's
/// CPU. Readers run single statements outside transactions, so a connection comes back ready
/// for the next one; a statement whose future is dropped half-way is stopped by the
/// connection's worker at its next row.
struct Readers {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: tokio::sync::Semaphore,
}

impl Readers {
    async fn open(options: SqliteConnectOptions) -> Result<Self, StorageError> {
        // One now, so that a database that cannot be read fails at start-up.
        let first = options.connect().await.map_err(db_err)?;
        Ok(Readers {
            options,
            idle: Mutex::new(vec![first]),
            permits: tokio::sync::Semaphore::new(READERS),
        })
    }

    async fn lend(&self) -> Result<Lent<'_>, StorageError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await.map_err(db_err)?,
        };
        Ok(Lent {
            conn: Some(conn),
            idle: &self.idle,
            _permit: permit,
        })
    }
}

/// A reader on loan; it goes back to the idle list (before its permit is released) on drop.
struct Lent<'a> {
    conn: Option<SqliteConnection>,
    idle: &'a Mutex<Vec<SqliteConnection>>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Deref for Lent<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

fn db_err(e: sqlx::Error) -> StorageError {
    match e {
        sqlx::Error::RowNotFound => StorageError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StorageError::Unavailable(Box::new(e))
        }
        other => StorageError::Other(Box::new(other)),
    }
}

impl SqliteMetaStore {
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // The triggers that keep `images.tagged` see the rows a REPLACE deletes too.
            .pragma("recursive_triggers", "ON")
            .busy_timeout(Duration::from_secs(10));
        // sqlx pings an idle connection before lending it out (`test_before_acquire`): one more
        // round trip to the connection's worker thread per statement, and a local file does not
        // go stale the way a network connection does.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await
            .map_err(db_err)?;
        migrator()
            .run(&writer)
            .await
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let readers = Readers::open(opts.read_only(true)).await?;
        Ok(Self {
            writer,
            readers,
            claims: Default::default(),
        })
    }

    async fn repository_tags(&self, id: RepositoryId) -> Result<Vec<ResourceTag>, StorageError> {
        let rows = sqlx::query(sql::REPOSITORY_TAGS)
            .bind(id.0)
            .fetch_all(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| ResourceTag {
                key: r.get(0),
                value: r.get(1),
            })
            .collect())
    }

    async fn repository_from_row(&self, row: &SqliteRow) -> Result<RepositoryRecord, StorageError> {
        let id = RepositoryId(row.get("id"));
        let (service, registry_id) = split_registry_key(row.get("registry_id"));
        Ok(RepositoryRecord {
            id,
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
            tags: match row.try_get::<Option<String>, _>("tags_json") {
                Ok(Some(json)) => decode_tags(&json)?,
                _ => self.repository_tags(id).await?,
            },
        })
    }
}

fn image_from_row(row: &SqliteRow) -> Result<ImageRecord, StorageError> {
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
fn state_row(row: &SqliteRow) -> Result<(Digest, ImageState), StorageError> {
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
fn state_from_row(row: &SqliteRow) -> ImageState {
    let col = |name: &str| row.try_get::<Option<i64>, _>(name).ok().flatten();
    ImageState {
        archived: col("state_archived").is_some_and(|a| a != 0),
        last_archived_at: col("state_last_archived_at"),
        last_activated_at: col("state_last_activated_at"),
        last_pulled_at: col("state_last_pulled_at"),
    }
}

fn upload_from_row(row: &SqliteRow) -> Result<UploadRecord, StorageError> {
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

/// How a ListImages page reads `images i` for `status`: the index to use (unfiltered, the
/// primary key) and the condition that keeps the range of images_by_tag_status (repository,
/// tagged, digest, ...) `status` wants.
fn tag_status_range(status: TagStatus) -> (&'static str, &'static str) {
    match status {
        TagStatus::Any => ("", ""),
        TagStatus::Tagged => ("INDEXED BY images_by_tag_status", "AND i.tagged = 1"),
        TagStatus::Untagged => ("INDEXED BY images_by_tag_status", "AND i.tagged = 0"),
    }
}

// Listings return their whole page as one JSON row built by SQLite: sqlx hands every result
// row from its SQLite thread to the async side one at a time, which for a page of 1,000 rows
// cost more than the query itself.

/// Runs a statement that answers one JSON array, and its text.
async fn fetch_json<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    readers: &Readers,
) -> Result<String, StorageError> {
    let json: Option<String> = query
        .fetch_one(&mut *readers.lend().await?)
        .await
        .map_err(db_err)?
        .get(0);
    Ok(json.unwrap_or_else(|| "[]".to_owned()))
}

/// A page of repositories (`?1` registry, `?2` after this name, `?3` limit), resource tags
/// included: a page of 1,000 repositories is one statement, not 1,001.
fn list_repositories_sql() -> String {
    format!(
        "SELECT json_group_array({REPOSITORY_JSON} ORDER BY name) FROM (
           SELECT r.*, (SELECT json_group_array(json_array(key, value) ORDER BY position)
                          FROM repository_tags WHERE repository_id = r.id) AS tags
           FROM repositories r WHERE registry_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3)"
    )
}

/// A page of tags: `?1` repository, `?2` after this tag, `?3` limit.
const LIST_TAGS_SQL: &str = "SELECT json_group_array(tag ORDER BY tag) FROM
   (SELECT tag FROM image_tags WHERE repository_id = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3)";

/// A page of ListImages entries: `?1` repository, after (`?2` digest, `?3` tag), `?4` limit.
/// Images in digest order (the primary key, or images_by_tag_status with a filter), each joined
/// to its tags in tag order (image_tags_by_digest): already in (digest, tag) order, so the
/// LIMIT ends the scan with the page. An untagged image joins to one NULL tag, which sorts as
/// the empty tag its key carries.
fn list_image_ids_sql(status: TagStatus) -> String {
    let (index, filter) = tag_status_range(status);
    format!(
        "SELECT json_group_array(json_array(digest, tag) ORDER BY digest, tag) FROM (
           SELECT i.digest AS digest, t.tag AS tag FROM images i {index}
             LEFT JOIN image_tags t ON t.repository_id = i.repository_id AND t.digest = i.digest
           WHERE i.repository_id = ?1 {filter} AND i.digest >= ?2
             AND (i.digest > ?2 OR coalesce(t.tag, '') > ?3)
           ORDER BY i.digest, t.tag LIMIT ?4)"
    )
}

/// A page of DescribeImages entries: `?1` repository, `?2` after this digest, `?3` limit. Read
/// from images_by_tag_status alone, which holds every column a summary needs; without a filter,
/// its tagged and untagged ranges (each in digest order) are merged.
fn list_images_sql(status: TagStatus) -> String {
    let range = |tagged: u8| {
        format!(
            "SELECT i.digest, i.media_type, i.artifact_media_type, i.subject, i.size, i.pushed_at,
                    (SELECT json_group_array(tag ORDER BY tag) FROM image_tags t
                      WHERE t.repository_id = i.repository_id AND t.digest = i.digest) AS tags
             FROM images i INDEXED BY images_by_tag_status
             WHERE i.repository_id = ?1 AND i.tagged = {tagged} AND i.digest > ?2"
        )
    };
    let ranges = match status {
        TagStatus::Tagged => range(1),
        TagStatus::Untagged => range(0),
        TagStatus::Any => format!("{} UNION ALL {}", range(0), range(1)),
    };
    format!(
        "SELECT json_group_array(json_array(digest, media_type, artifact_media_type, subject,
                                            size, pushed_at, json(tags)) ORDER BY digest)
         FROM ({ranges} ORDER BY 1 LIMIT ?3)"
    )
}

/// `json_array(...)` of `repositories r` plus `tags`, as [`repository_from_json`] reads it.
const REPOSITORY_JSON: &str = "json_array(id, registry_id, name, created_at, image_tag_mutability, \
     mutability_exclusions, scan_on_push, encryption_type, kms_key, policy, json(tags))";

type RepositoryJson = (
    i64,
    String,
    String,
    Millis,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
);

fn repository_from_json(r: RepositoryJson) -> Result<RepositoryRecord, StorageError> {
    let (id, registry_id, name, created_at, mutability, exclusions, scan, enc, kms, policy, tags) =
        r;
    let (service, registry_id) = split_registry_key(&registry_id);
    Ok(RepositoryRecord {
        id: RepositoryId(id),
        service,
        registry_id,
        name: RepositoryName::parse(&name).map_err(|_| corrupt("repository name"))?,
        created_at,
        image_tag_mutability: mutability,
        mutability_exclusions: decode_exclusions(&exclusions),
        scan_on_push: scan != 0,
        encryption_type: enc,
        kms_key: kms,
        policy,
        tags: tags
            .into_iter()
            .map(|(key, value)| ResourceTag { key, value })
            .collect(),
    })
}

type ImageSummaryJson = (
    String,
    String,
    Option<String>,
    Option<String>,
    u64,
    Millis,
    Vec<String>,
);

fn summary_from_json(i: ImageSummaryJson) -> Result<ImageSummary, StorageError> {
    let (digest, media_type, artifact_media_type, subject, size, pushed_at, tags) = i;
    Ok(ImageSummary {
        digest: parse_digest(&digest)?,
        media_type,
        artifact_media_type,
        subject: subject.as_deref().map(parse_digest).transpose()?,
        size,
        pushed_at,
        tags: tags
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<_, _>>()?,
        state: ImageState::default(),
    })
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
    async fn create_repository_with_settings(
        &self,
        repo: RepositoryRecord,
        settings: &[(&str, &[u8])],
    ) -> Result<RepositoryRecord, StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
        // One statement, tags included: every request looks its repository up.
        let row = sqlx::query(
            "SELECT r.*, (SELECT json_group_array(json_array(key, value)) FROM \
             (SELECT key, value FROM repository_tags WHERE repository_id = r.id ORDER BY position)) \
             AS tags_json FROM repositories r WHERE registry_id = $1 AND name = $2",
        )
        .bind(registry_id)
        .bind(name.as_str())
        .fetch_optional(&mut *self.readers.lend().await?)
        .await
        .map_err(db_err)?;
        match row {
            Some(r) => Ok(Some(self.repository_from_row(&r).await?)),
            None => Ok(None),
        }
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
        let sql = list_repositories_sql();
        let q = sqlx::query(&sql)
            .bind(registry_id)
            .bind(after.unwrap_or(""))
            .bind(limit as i64);
        serde_json::from_str::<Vec<RepositoryJson>>(&fetch_json(q, &self.readers).await?)
            .map_err(|_| corrupt("listing"))?
            .into_iter()
            .map(repository_from_json)
            .collect()
    }

    async fn delete_repository(
        &self,
        id: RepositoryId,
        only_if_empty: bool,
    ) -> Result<(), StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
        // Tags and references cascade from images; images, blob links, uploads and resource
        // tags cascade from the repository.
        let res = sqlx::query(sql::DELETE_REPOSITORY)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        tx.commit().await.map_err(db_err)
    }

    async fn tag_repository(
        &self,
        repo: RepositoryId,
        tags: &[ResourceTag],
        max: usize,
    ) -> Result<Vec<ResourceTag>, StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let out = sql::tag_repository_tx!(&mut tx, &sql::SQLITE, repo, tags, max).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    async fn untag_repository(
        &self,
        repo: RepositoryId,
        keys: &[String],
    ) -> Result<(), StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
            .fetch_optional(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)
    }

    async fn put_repository_settings(
        &self,
        repo: RepositoryId,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
            .fetch_all(&mut *self.readers.lend().await?)
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
            .fetch_optional(&mut *self.readers.lend().await?)
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
        let done = q.execute(&self.writer).await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_registry_settings(
        &self,
        service: Service,
        registry_id: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> Result<(), StorageError> {
        let key = service.registry_key(registry_id);
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
            .fetch_optional(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| RepositoryBlob {
            size: r.get::<i64, _>(0) as u64,
            media_type: r.get(1),
            referenced: r.get::<i64, _>(2) != 0,
            archived_only: r.get::<i64, _>(2) == 1,
        }))
    }

    async fn set_repository_policy(
        &self,
        id: RepositoryId,
        policy: Option<&str>,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::SET_REPOSITORY_POLICY)
            .bind(policy)
            .bind(id.0)
            .execute(&self.writer)
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
            .execute(&self.writer)
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
            .execute(&self.writer)
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
            .fetch_optional(&mut *self.readers.lend().await?)
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
        q.execute(&self.writer).await.map_err(db_err)?;
        Ok(())
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
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 && self.repository_blob(repo, digest).await?.is_none() {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    async fn create_upload(&self, u: UploadRecord) -> Result<(), StorageError> {
        sqlx::query(sql::INSERT_UPLOAD)
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
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_upload(&self, id: UploadId) -> Result<Option<UploadRecord>, StorageError> {
        // Read through the writer so that a part recorded a moment ago is always seen.
        let row = sqlx::query(sql::GET_UPLOAD)
            .bind(id.to_string())
            .fetch_optional(&self.writer)
            .await
            .map_err(db_err)?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn record_part(
        &self,
        u: &UploadRecord,
        expected_received: u64,
    ) -> Result<(), StorageError> {
        let res = sqlx::query(sql::RECORD_PART)
            .bind(u.updated_at)
            .bind(u.received as i64)
            .bind(u.part_count as i64)
            .bind(u.last_part_size as i64)
            .bind(u.short_part_seen as i64)
            .bind(&u.hash_state)
            .bind(&u.staging)
            .bind(u.id.to_string())
            .bind(expected_received as i64)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 1 {
            self.claims
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&u.id);
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(linked.rows_affected() == 0)
    }

    async fn count_uploads(&self, repo: RepositoryId) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_UPLOADS)
            .bind(repo.0)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    async fn repository_usage(&self, repo: RepositoryId) -> Result<RepositoryUsage, StorageError> {
        let (images, bytes): (i64, i64) = sqlx::query_as(sql::REPOSITORY_USAGE)
            .bind(repo.0)
            .fetch_one(&mut *self.readers.lend().await?)
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
        // A reader, not the writer every push waits for: the upload was committed before.
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(StorageError::NotFound);
        }
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        match claims.get(&id) {
            Some((holder, held_until)) if holder != token && *held_until > now => {
                Err(StorageError::Conflict("another part is being written"))
            }
            _ => {
                claims.insert(id, (token.to_owned(), until));
                Ok(())
            }
        }
    }

    async fn release_upload(&self, id: UploadId, token: &str) -> Result<(), StorageError> {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if claims.get(&id).is_some_and(|(holder, _)| holder == token) {
            claims.remove(&id);
        }
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
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        sqlx::query(sql::RELEASE_LEASE)
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn idle_uploads(&self, idle_before: Millis) -> Result<Vec<UploadId>, StorageError> {
        let ids: Vec<String> = sqlx::query_scalar(sql::IDLE_UPLOADS)
            .bind(idle_before)
            .fetch_all(&self.writer)
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
            .fetch_all(&self.writer)
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
        // One statement: the single writer already orders it against every PutImage.
        let res = sqlx::query(sql::UNLINK_IF_UNREFERENCED)
            .bind(repo.0)
            .bind(digest.as_str())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn unlinked_blobs(
        &self,
        created_before: Millis,
    ) -> Result<Vec<(Digest, u64)>, StorageError> {
        let rows = sqlx::query(sql::UNLINKED_BLOBS)
            .bind(created_before)
            .fetch_all(&self.writer)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((parse_digest(r.get(0))?, r.get::<i64, _>(1) as u64)))
            .collect()
    }

    async fn delete_blob_if_unlinked(&self, digest: &Digest) -> Result<bool, StorageError> {
        let res = sqlx::query(sql::DELETE_BLOB_IF_UNLINKED)
            .bind(digest.as_str())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
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
            .fetch_all(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        names
            .iter()
            .map(|n| RepositoryName::parse(n).map_err(|_| corrupt("repository name")))
            .collect()
    }

    async fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, StorageError> {
        let rows = sqlx::query(sql::ALL_BLOBS)
            .fetch_all(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((parse_digest(r.get(0))?, r.get::<i64, _>(1) as u64)))
            .collect()
    }

    async fn delete_upload(&self, id: UploadId) -> Result<(), StorageError> {
        sqlx::query(sql::DELETE_UPLOAD)
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_image(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Option<ImageRecord>, StorageError> {
        let row = sqlx::query(sql::GET_IMAGE)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_optional(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        row.as_ref().map(image_from_row).transpose()
    }

    async fn image_by_tag(
        &self,
        repo: RepositoryId,
        tag: &ImageTag,
    ) -> Result<Option<ImageRecord>, StorageError> {
        let row = sqlx::query(sql::IMAGE_BY_TAG)
            .bind(repo.0)
            .bind(tag.as_str())
            .fetch_optional(&mut *self.readers.lend().await?)
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
            .fetch_optional(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        d.as_deref().map(parse_digest).transpose()
    }

    async fn image_tags(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageTag>, StorageError> {
        let tags: Vec<String> = sqlx::query_scalar(sql::IMAGE_TAGS)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_all(&mut *self.readers.lend().await?)
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let outcome =
            sql::put_image_tx!(&mut tx, &sql::SQLITE, repo, image, refs, tag, max_tags).await;
        let outcome = match outcome {
            // The repository was deleted after the caller looked it up.
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
            .fetch_all(&self.writer)
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
            return Ok(res.rows_affected() == 1);
        };
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let deleted = sql::delete_image_tx!(&mut tx, repo, digest, event).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(deleted)
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
            .fetch_all(&mut *self.readers.lend().await?)
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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

    async fn list_tags(
        &self,
        repo: RepositoryId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageTag>, StorageError> {
        let q = sqlx::query(LIST_TAGS_SQL)
            .bind(repo.0)
            .bind(after.unwrap_or(""))
            .bind(limit as i64);
        serde_json::from_str::<Vec<String>>(&fetch_json(q, &self.readers).await?)
            .map_err(|_| corrupt("listing"))?
            .iter()
            .map(|t| parse_tag(t))
            .collect()
    }

    async fn list_referrers(
        &self,
        repo: RepositoryId,
        digest: &Digest,
    ) -> Result<Vec<ImageRecord>, StorageError> {
        let rows = sqlx::query(sql::LIST_REFERRERS)
            .bind(repo.0)
            .bind(digest.as_str())
            .fetch_all(&mut *self.readers.lend().await?)
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
        let sql = list_image_ids_sql(status);
        let q = sqlx::query(&sql)
            .bind(repo.0)
            .bind(after_digest)
            .bind(after_tag)
            .bind(limit as i64);
        serde_json::from_str::<Vec<(String, Option<String>)>>(&fetch_json(q, &self.readers).await?)
            .map_err(|_| corrupt("listing"))?
            .into_iter()
            .map(|(d, t)| Ok((parse_digest(&d)?, t.as_deref().map(parse_tag).transpose()?)))
            .collect()
    }

    async fn list_images(
        &self,
        repo: RepositoryId,
        status: TagStatus,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImageSummary>, StorageError> {
        let sql = list_images_sql(status);
        let q = sqlx::query(&sql)
            .bind(repo.0)
            .bind(after.unwrap_or(""))
            .bind(limit as i64);
        serde_json::from_str::<Vec<ImageSummaryJson>>(&fetch_json(q, &self.readers).await?)
            .map_err(|_| corrupt("listing"))?
            .into_iter()
            .map(summary_from_json)
            .collect()
    }

    async fn record_event(
        &self,
        event: &ImageEvent,
        tag: Option<&str>,
    ) -> Result<(), StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let digest = event.digest.as_ref().map_or("", |d| d.as_str());
        sql::insert_events_tx!(&mut tx, event, digest, [tag]).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn due_events(&self, now: Millis, limit: u32) -> Result<Vec<EventRecord>, StorageError> {
        let rows: Vec<sql::EventRow> = sqlx::query_as(sql::DUE_EVENTS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(sql::event_record).collect()
    }

    async fn delete_event(&self, id: i64) -> Result<(), StorageError> {
        sqlx::query(sql::DELETE_EVENT)
            .bind(id)
            .execute(&self.writer)
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
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StorageError> {
        let (pending, given_up): (i64, i64) = sqlx::query_as(sql::EVENT_BACKLOG)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(EventBacklog {
            pending: pending.max(0) as u64,
            given_up: given_up.max(0) as u64,
        })
    }

    async fn fold_usage(&self, batch: u32) -> Result<u64, StorageError> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let folded = sql::fold_usage_tx!(&mut tx, batch).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(folded)
    }

    async fn storage_usage(&self, largest: u32) -> Result<StorageUsage, StorageError> {
        let top = sqlx::query_as(&sql::largest_repositories())
            .bind(i64::from(largest))
            .fetch_all(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
        let registries = sqlx::query_as(&sql::registry_usage())
            .fetch_all(&mut *self.readers.lend().await?)
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
            .fetch_one(&mut *self.readers.lend().await?)
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
        let rows = q
            .fetch_all(&mut *self.readers.lend().await?)
            .await
            .map_err(db_err)?;
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
            .fetch_all(&mut *self.readers.lend().await?)
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
        let mut tx = self.writer.begin().await.map_err(db_err)?;
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
            .execute(&self.writer)
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
                .fetch_all(&mut *self.readers.lend().await?)
                .await
                .map_err(db_err)?;
        Ok(sql::replication_statuses(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before storage use was maintained gets its starting figures from the
    /// migration's walk; changes after it add deltas, and a fold changes no reading.
    #[tokio::test]
    async fn usage_starts_from_a_walk_of_the_data_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true)
            .connect()
            .await
            .unwrap();
        let mut before = migrator();
        before.migrations = Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version < 13)
                .cloned()
                .collect(),
        );
        before.run(&mut conn).await.unwrap();
        let (a, b) = (
            "sha256:".to_owned() + &"a".repeat(64),
            "sha256:".to_owned() + &"b".repeat(64),
        );
        for statement in [
            "INSERT INTO repositories (id, registry_id, name, created_at, image_tag_mutability, mutability_exclusions, scan_on_push, encryption_type)
             VALUES (1, '000000000000', 'old/one', 0, 'MUTABLE', '', 0, 'AES256'),
                    (2, '000000000000', 'old/two', 0, 'MUTABLE', '', 0, 'AES256')",
            &format!("INSERT INTO blobs (digest, size, created_at) VALUES ('{a}', 1000, 0), ('{b}', 30, 0)"),
            &format!("INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (1, '{a}', 0), (1, '{b}', 0), (2, '{a}', 0)"),
            &format!("INSERT INTO images (repository_id, digest, manifest, media_type, size, pushed_at)
                      VALUES (1, 'sha256:{}', CAST('0123456789' AS BLOB), 'x', 1030, 0)", "c".repeat(64)),
        ] {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        drop(conn);
        let store = SqliteMetaStore::open(&path).await.unwrap();
        let usage = |images, bytes| RepositoryUsage { images, bytes };
        let one = store.repository_storage(RepositoryId(1)).await.unwrap();
        assert_eq!(one, usage(1, 1000 + 30 + 10));
        let two = store.repository_storage(RepositoryId(2)).await.unwrap();
        assert_eq!(two, usage(0, 1000));

        // A link after the migration is a delta on top of the starting figures.
        let digest = Digest::parse(&b).unwrap();
        store.link_blob(RepositoryId(2), &digest, 1).await.unwrap();
        assert_eq!(
            store.repository_storage(RepositoryId(2)).await.unwrap(),
            usage(0, 1030)
        );
        assert_eq!(store.fold_usage(100).await.unwrap(), 1);
        assert_eq!(store.fold_usage(100).await.unwrap(), 0);
        assert_eq!(
            store.repository_storage(RepositoryId(2)).await.unwrap(),
            usage(0, 1030)
        );
        let all = store.storage_usage(1).await.unwrap();
        assert_eq!(all.largest.len(), 1);
        assert_eq!(all.largest[0].name.as_str(), "old/one");
        assert_eq!(all.registries.len(), 1);
        assert_eq!(
            (
                all.registries[0].repositories,
                all.registries[0].images,
                all.registries[0].bytes
            ),
            (2, 1, 1040 + 1030)
        );
    }

    /// A reader whose statement is abandoned half-way (a client that hangs up) goes back to
    /// the idle list and answers the next statement lent it, not the old one's rows.
    #[tokio::test]
    async fn a_reader_comes_back_usable_from_an_abandoned_statement() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetaStore::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let endless =
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
        {
            let mut conn = store.readers.lend().await.unwrap();
            let abandoned = sqlx::query_scalar::<_, i64>(endless).fetch_all(&mut *conn);
            let outcome = tokio::time::timeout(Duration::from_millis(50), abandoned).await;
            assert!(outcome.is_err(), "an endless statement cannot finish");
        }
        for _ in 0..READERS + 1 {
            let mut conn = store.readers.lend().await.unwrap();
            let next = sqlx::query_scalar::<_, i64>("SELECT 41 + 1").fetch_one(&mut *conn);
            let one = tokio::time::timeout(Duration::from_secs(10), next)
                .await
                .expect("the abandoned statement was stopped")
                .unwrap();
            assert_eq!(one, 42);
        }
        assert_eq!(
            store.readers.idle.lock().unwrap().len(),
            1,
            "reused, not reopened"
        );
    }

    /// Each listing seeks its start in an index and reads its rows in the order it returns
    /// them: no scan of a whole table or index, no sort but of the page itself, so a page costs
    /// the same in a repository of 10 or 100,000 images (and a registry of as many
    /// repositories). Plans as SQLite makes them without statistics, which berth never gathers.
    #[tokio::test]
    async fn listing_pages_seek_and_never_sort_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetaStore::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let mut statements = vec![(list_repositories_sql(), 3), (LIST_TAGS_SQL.to_owned(), 3)];
        for status in [TagStatus::Any, TagStatus::Tagged, TagStatus::Untagged] {
            statements.push((list_image_ids_sql(status), 4));
            statements.push((list_images_sql(status), 3));
        }
        for (sql, params) in statements {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain).persistent(false);
            for _ in 0..params {
                q = q.bind("x");
            }
            let plan: Vec<String> = q
                .fetch_all(&mut *store.readers.lend().await.unwrap())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            for step in &plan {
                let scans_table = step.starts_with("SCAN") && !step.starts_with("SCAN (subquery");
                // Allowed: the aggregate's own ORDER BY sorts one page (or one image's tags), and
                // a sort of the last ORDER BY term sorts one image's tags at a time.
                let sorts = step.contains("TEMP B-TREE")
                    && !step.ends_with("(ORDER BY)")
                    && !step.ends_with("LAST TERM OF ORDER BY");
                assert!(
                    !scans_table && !sorts && !step.contains("AUTOMATIC"),
                    "{step}\nin the plan {plan:#?}\nof {sql}"
                );
            }
            assert!(plan.iter().any(|s| s.starts_with("SEARCH")), "{plan:#?}");
        }
    }
}
