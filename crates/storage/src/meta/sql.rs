//! The statements both engines run, written once. SQLite reads `$1`, `$2`… as parameters
//! numbered by first appearance, so a statement whose placeholders appear in order serves
//! both; `ON CONFLICT`, `RETURNING`, upserts with `excluded` and `WHERE` are common to both.
//! Every integer column is BIGINT/INTEGER, so the binds are the same `i64`s.
//!
//! The differences are few and kept here, side by side: row locks (PostgreSQL runs many
//! writers under READ COMMITTED and locks the rows a rule reads; SQLite has one writer, whose
//! transaction already excludes every other, and no `FOR UPDATE`), and the listings, which
//! SQLite packs into one JSON row per page (see `sqlite.rs`).

/// What one engine says differently.
pub(super) struct Dialect {
    /// Appended to a SELECT whose rows a rule must keep unchanged until commit.
    pub for_update: &'static str,
}

#[cfg(feature = "sqlite")]
pub(super) const SQLITE: Dialect = Dialect { for_update: "" };

#[cfg(feature = "postgres")]
pub(super) const POSTGRES: Dialect = Dialect {
    for_update: " FOR UPDATE",
};

// Repositories.

pub(super) const INSERT_REPOSITORY: &str = "INSERT INTO repositories (registry_id, name, created_at, image_tag_mutability, mutability_exclusions, scan_on_push, encryption_type, kms_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
/// A key given twice keeps its last value.
pub(super) const INSERT_REPOSITORY_TAG: &str = "INSERT INTO repository_tags (repository_id, key, value, position) VALUES ($1, $2, $3, $4)
     ON CONFLICT (repository_id, key) DO UPDATE SET value = excluded.value, position = excluded.position";
pub(super) const REPOSITORY_TAGS: &str =
    "SELECT key, value FROM repository_tags WHERE repository_id = $1 ORDER BY position";
/// Locks the repository (with the dialect's suffix) against a concurrent push before
/// `COUNT_IMAGES` decides it is empty: an image insert holds a key lock on it.
pub(super) const REPOSITORY_ROW: &str = "SELECT id FROM repositories WHERE id = $1";
pub(super) const COUNT_IMAGES: &str = "SELECT COUNT(*) FROM images WHERE repository_id = $1";
pub(super) const DELETE_REPOSITORY: &str = "DELETE FROM repositories WHERE id = $1";
pub(super) const SET_REPOSITORY_POLICY: &str = "UPDATE repositories SET policy = $1 WHERE id = $2";
pub(super) const SET_IMAGE_TAG_MUTABILITY: &str =
    "UPDATE repositories SET image_tag_mutability = $1, mutability_exclusions = $2 WHERE id = $3";
pub(super) const SET_SCAN_ON_PUSH: &str = "UPDATE repositories SET scan_on_push = $1 WHERE id = $2";
pub(super) const REGISTRY_POLICY: &str =
    "SELECT policy FROM registry_policies WHERE registry_id = $1";
pub(super) const SET_REGISTRY_POLICY: &str =
    "INSERT INTO registry_policies (registry_id, policy) VALUES ($1, $2)
     ON CONFLICT (registry_id) DO UPDATE SET policy = excluded.policy";
pub(super) const DELETE_REGISTRY_POLICY: &str =
    "DELETE FROM registry_policies WHERE registry_id = $1";

// Resource tags and settings.

/// Adds a tag after the others, or replaces the value of a key the repository has (which
/// keeps its place).
pub(super) const UPSERT_REPOSITORY_TAG: &str = "INSERT INTO repository_tags (repository_id, key, value, position)
     VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), -1) + 1 FROM repository_tags WHERE repository_id = $1))
     ON CONFLICT (repository_id, key) DO UPDATE SET value = excluded.value";
pub(super) const DELETE_REPOSITORY_TAG: &str =
    "DELETE FROM repository_tags WHERE repository_id = $1 AND key = $2";
pub(super) const REPOSITORY_SETTING: &str =
    "SELECT value FROM repository_settings WHERE repository_id = $1 AND name = $2";
pub(super) const PUT_REPOSITORY_SETTING: &str =
    "INSERT INTO repository_settings (repository_id, name, value) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, name) DO UPDATE SET value = excluded.value";
pub(super) const DELETE_REPOSITORY_SETTING: &str =
    "DELETE FROM repository_settings WHERE repository_id = $1 AND name = $2";
/// Repositories holding a setting, by registry key and name (the lifecycle job's worklist).
pub(super) const REPOSITORIES_WITH_SETTING: &str =
    "SELECT r.registry_id, r.name FROM repositories r
     JOIN repository_settings s ON s.repository_id = r.id WHERE s.name = $1
     ORDER BY r.registry_id, r.name";
pub(super) const REGISTRY_SETTING: &str =
    "SELECT value FROM registry_settings WHERE registry_id = $1 AND name = $2";
pub(super) const PUT_REGISTRY_SETTING: &str =
    "INSERT INTO registry_settings (registry_id, name, value) VALUES ($1, $2, $3)
     ON CONFLICT (registry_id, name) DO UPDATE SET value = excluded.value";
pub(super) const DELETE_REGISTRY_SETTING: &str =
    "DELETE FROM registry_settings WHERE registry_id = $1 AND name = $2";
// Compare-and-swap of one registry setting (`swap_registry_setting`): each statement changes
// the row only if it still holds what the caller read, so a concurrent writer on another node
// makes it touch no row instead of being overwritten.
pub(super) const INSERT_REGISTRY_SETTING_IF_ABSENT: &str =
    "INSERT INTO registry_settings (registry_id, name, value) VALUES ($1, $2, $3)
     ON CONFLICT (registry_id, name) DO NOTHING";
pub(super) const UPDATE_REGISTRY_SETTING_IF: &str = "UPDATE registry_settings SET value = $3
     WHERE registry_id = $1 AND name = $2 AND value = $4";
pub(super) const DELETE_REGISTRY_SETTING_IF: &str =
    "DELETE FROM registry_settings WHERE registry_id = $1 AND name = $2 AND value = $3";

// Blobs and links.

/// A linked blob and how images use it: 2 if an image not archived references it, 1 if only
/// archived images do, 0 if none. One CASE, evaluated in order, so the usual answer (an active
/// image uses the layer) costs one EXISTS that stops at its first row.
pub(super) const REPOSITORY_BLOB: &str = "SELECT b.size, rb.media_type,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM image_blobs ib LEFT JOIN image_states s
                ON s.repository_id = ib.repository_id AND s.digest = ib.image_digest
                WHERE ib.repository_id = rb.repository_id AND ib.blob_digest = rb.digest
                  AND (s.archived IS NULL OR s.archived = 0)) THEN 2
             WHEN EXISTS (SELECT 1 FROM image_blobs ib WHERE ib.repository_id = rb.repository_id AND ib.blob_digest = rb.digest) THEN 1
             ELSE 0 END AS BIGINT) AS used
     FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
     WHERE rb.repository_id = $1 AND rb.digest = $2";
pub(super) const LINK_BLOB: &str =
    "INSERT INTO repository_blobs (repository_id, digest, created_at)
     SELECT $1, digest, $2 FROM blobs WHERE digest = $3 ON CONFLICT DO NOTHING";
pub(super) const INSERT_BLOB: &str =
    "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
pub(super) const INSERT_LINK: &str =
    "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING";
/// A link an image is about to reference (with `for_update`: GC cannot remove it meanwhile).
pub(super) const LINK_ROW: &str =
    "SELECT CAST(1 AS BIGINT) FROM repository_blobs WHERE repository_id = $1 AND digest = $2";
pub(super) const UNREFERENCED_LINKS: &str = "SELECT rb.repository_id, rb.digest FROM repository_blobs rb
     WHERE rb.created_at < $1 AND NOT EXISTS
       (SELECT 1 FROM image_blobs ib WHERE ib.repository_id = rb.repository_id AND ib.blob_digest = rb.digest)
     ORDER BY rb.repository_id, rb.digest";
/// Run after `LINK_ROW` with `for_update`, in a statement of its own: under READ COMMITTED it
/// then sees the image a racing PutImage committed while holding the link.
pub(super) const UNLINK_IF_UNREFERENCED: &str =
    "DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2 AND NOT EXISTS
       (SELECT 1 FROM image_blobs WHERE repository_id = $1 AND blob_digest = $2)";
pub(super) const UNLINKED_BLOBS: &str =
    "SELECT b.digest, b.size FROM blobs b WHERE b.created_at < $1 AND NOT EXISTS
       (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) ORDER BY b.digest";
/// The blob row, locked (`for_update`) before `DELETE_BLOB_IF_UNLINKED` as above.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) const BLOB_ROW: &str = "SELECT CAST(1 AS BIGINT) FROM blobs WHERE digest = $1";
pub(super) const DELETE_BLOB_IF_UNLINKED: &str = "DELETE FROM blobs WHERE digest = $1 AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $1)";
/// Seeks `repository_blobs_by_digest`, then reads the few repositories that link the blob.
pub(super) const REPOSITORIES_HOLDING: &str = "SELECT r.name FROM repository_blobs rb
     JOIN repositories r ON r.id = rb.repository_id
     WHERE rb.digest = $1 AND r.registry_id = $2 ORDER BY r.name LIMIT $3";
pub(super) const ALL_BLOBS: &str = "SELECT digest, size FROM blobs ORDER BY digest";

// Uploads.

pub(super) const INSERT_UPLOAD: &str = "INSERT INTO uploads (id, repository_id, created_at, updated_at, received, part_count, last_part_size, short_part_seen, hash_state, staging)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(super) const GET_UPLOAD: &str = "SELECT * FROM uploads WHERE id = $1";
pub(super) const RECORD_PART: &str = "UPDATE uploads SET updated_at = $1, received = $2, part_count = $3, last_part_size = $4, short_part_seen = $5, hash_state = $6, staging = $7
     WHERE id = $8 AND received = $9";
/// `RECORD_PART` that also ends the claim of the part's writer (PostgreSQL; SQLite keeps its
/// claims in memory): the part is done, and the next one, which the client may send the
/// moment this one is acknowledged, must find the upload free.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) const RECORD_PART_RELEASING: &str = "UPDATE uploads SET updated_at = $1, received = $2, part_count = $3, last_part_size = $4, short_part_seen = $5, hash_state = $6, staging = $7,
            claim_token = NULL, claimed_until = 0
     WHERE id = $8 AND received = $9";
pub(super) const DELETE_UPLOAD: &str = "DELETE FROM uploads WHERE id = $1";
pub(super) const COUNT_UPLOADS: &str = "SELECT COUNT(*) FROM uploads WHERE repository_id = $1";
/// Images, and bytes of the distinct blobs they reference; both through the repository's
/// indexes (`images` by key, `image_blobs_by_blob`), never a scan of another repository.
pub(super) const REPOSITORY_USAGE: &str = "SELECT
     (SELECT COUNT(*) FROM images WHERE repository_id = $1),
     CAST((SELECT COALESCE(SUM(b.size), 0) FROM blobs b
            WHERE b.digest IN (SELECT blob_digest FROM image_blobs WHERE repository_id = $1)) AS BIGINT)";
pub(super) const IDLE_UPLOADS: &str = "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY id";
/// Takes (or renews, with the same token) the claim of an upload: `$1` id, `$2` token, `$3`
/// now, `$4` until. One conditional UPDATE, so of two nodes only one sees its row change.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) const CLAIM_UPLOAD: &str = "UPDATE uploads SET claim_token = $2, claimed_until = $4
     WHERE id = $1 AND (claimed_until <= $3 OR claim_token = $2)";
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) const RELEASE_UPLOAD: &str =
    "UPDATE uploads SET claim_token = NULL, claimed_until = 0 WHERE id = $1 AND claim_token = $2";

// Leases.

/// Takes a free or expired lease, or renews one's own: `$1` name, `$2` holder, `$3` until,
/// `$4` now. A row changes only for the winner.
pub(super) const TAKE_LEASE: &str = "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
     WHERE leases.until <= $4 OR leases.holder = excluded.holder";
pub(super) const RELEASE_LEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

// Images and tags.

/// An image with its state (`state_*` columns, NULL without a state row): a pull learns
/// whether the image is archived in the query that finds it.
pub(super) const GET_IMAGE: &str = "SELECT i.*, s.archived AS state_archived,
        s.last_archived_at AS state_last_archived_at, s.last_activated_at AS state_last_activated_at,
        s.last_pulled_at AS state_last_pulled_at
     FROM images i LEFT JOIN image_states s ON s.repository_id = i.repository_id AND s.digest = i.digest
     WHERE i.repository_id = $1 AND i.digest = $2";
pub(super) const IMAGE_BY_TAG: &str = "SELECT i.*, s.archived AS state_archived,
        s.last_archived_at AS state_last_archived_at, s.last_activated_at AS state_last_activated_at,
        s.last_pulled_at AS state_last_pulled_at
     FROM image_tags t JOIN images i ON i.repository_id = t.repository_id AND i.digest = t.digest
     LEFT JOIN image_states s ON s.repository_id = i.repository_id AND s.digest = i.digest
     WHERE t.repository_id = $1 AND t.tag = $2";
pub(super) const RESOLVE_TAG: &str =
    "SELECT digest FROM image_tags WHERE repository_id = $1 AND tag = $2";
pub(super) const IMAGE_TAGS: &str =
    "SELECT tag FROM image_tags WHERE repository_id = $1 AND digest = $2 ORDER BY tag";
pub(super) const INSERT_IMAGE: &str = "INSERT INTO images (repository_id, digest, manifest, media_type, artifact_media_type, subject, size, pushed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
/// Two images of a repository (or one twice), locked (`for_update`) in digest order.
pub(super) const IMAGES_IN_ORDER: &str =
    "SELECT digest FROM images WHERE repository_id = $1 AND digest IN ($2, $3) ORDER BY digest";
pub(super) const COUNT_IMAGE_TAGS: &str =
    "SELECT COUNT(*) FROM image_tags WHERE repository_id = $1 AND digest = $2";
pub(super) const INSERT_IMAGE_BLOB: &str =
    "INSERT INTO image_blobs (repository_id, image_digest, blob_digest) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING";
pub(super) const SET_LINK_MEDIA_TYPE: &str =
    "UPDATE repository_blobs SET media_type = $1 WHERE repository_id = $2 AND digest = $3";
pub(super) const INSERT_IMAGE_CHILD: &str =
    "INSERT INTO image_children (repository_id, index_digest, child_digest) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING";
/// A mutable tag: points it at `$3` whatever it points at; changes a row only if it moved.
pub(super) const MOVE_TAG: &str =
    "INSERT INTO image_tags (repository_id, tag, digest) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, tag) DO UPDATE SET digest = excluded.digest
     WHERE image_tags.digest <> excluded.digest";
/// An immutable tag the caller saw nowhere: created only if still nowhere.
pub(super) const CREATE_TAG: &str = "INSERT INTO image_tags (repository_id, tag, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// A tag the caller saw at `$4`: moved only if still there.
pub(super) const MOVE_TAG_FROM: &str =
    "UPDATE image_tags SET digest = $3 WHERE repository_id = $1 AND tag = $2 AND digest = $4";
pub(super) const PARENT_INDEXES: &str = "SELECT index_digest FROM image_children WHERE repository_id = $1 AND child_digest = $2 ORDER BY index_digest";
pub(super) const DELETE_IMAGE: &str = "DELETE FROM images WHERE repository_id = $1 AND digest = $2";
/// With the referrers' states, as [`GET_IMAGE`] (ListImageReferrers reports and filters by
/// status).
pub(super) const LIST_REFERRERS: &str = "SELECT i.*, s.archived AS state_archived,
        s.last_archived_at AS state_last_archived_at, s.last_activated_at AS state_last_activated_at,
        s.last_pulled_at AS state_last_pulled_at
     FROM images i LEFT JOIN image_states s ON s.repository_id = i.repository_id AND s.digest = i.digest
     WHERE i.repository_id = $1 AND i.subject = $2 ORDER BY i.digest";

// Image states.

pub(super) const IMAGE_STATES_BETWEEN: &str =
    "SELECT digest, archived, last_archived_at, last_activated_at, last_pulled_at
     FROM image_states WHERE repository_id = $1 AND digest >= $2 AND digest <= $3 ORDER BY digest";
/// Into the archive (`$3` = 1, stamped `$4`) or out of it (`$3` = 0, ACTIVE from `$4`), only
/// if the image exists and is not in that class already; changes no row otherwise.
pub(super) const SET_STORAGE_CLASS: &str = "INSERT INTO image_states (repository_id, digest, archived, last_archived_at, last_activated_at)
     SELECT repository_id, digest, $3,
            CASE WHEN $3 = 1 THEN $4 ELSE NULL END, CASE WHEN $3 = 1 THEN NULL ELSE $4 END
     FROM images WHERE repository_id = $1 AND digest = $2
     ON CONFLICT (repository_id, digest) DO UPDATE SET archived = excluded.archived,
        last_archived_at = CASE WHEN excluded.archived = 1 THEN excluded.last_archived_at ELSE image_states.last_archived_at END,
        last_activated_at = CASE WHEN excluded.archived = 1 THEN image_states.last_activated_at ELSE excluded.last_activated_at END
     WHERE image_states.archived <> excluded.archived";
/// A pull at `$3`, if the image still exists; an earlier time never replaces a later one.
pub(super) const RECORD_PULL_TIME: &str = "INSERT INTO image_states (repository_id, digest, last_pulled_at)
     SELECT repository_id, digest, $3 FROM images WHERE repository_id = $1 AND digest = $2
     ON CONFLICT (repository_id, digest) DO UPDATE SET last_pulled_at = excluded.last_pulled_at
     WHERE image_states.last_pulled_at IS NULL OR image_states.last_pulled_at < excluded.last_pulled_at";
/// PutImage's transaction, the same on both engines (a macro: the statements are the same
/// text, the executors and error maps are each engine's; `db_err` is the caller's). Evaluates
/// to `Result<PutImageOutcome, StorageError>`; the caller begins and commits `$tx`.
macro_rules! put_image_tx {
    ($tx:expr, $dialect:expr, $repo:expr, $image:expr, $refs:expr, $tag:expr, $max_tags:expr) => {
        async {
            let (tx, dialect, repo, image, refs, tag, max_tags): (
                _,
                &$crate::meta::sql::Dialect,
                RepositoryId,
                &ImageRecord,
                &ImageReferences,
                Option<TagWrite<'_>>,
                usize,
            ) = ($tx, $dialect, $repo, $image, $refs, $tag, $max_tags);
            let inserted = sqlx::query(sql::INSERT_IMAGE)
                .bind(repo.0)
                .bind(image.digest.as_str())
                .bind(&image.manifest)
                .bind(&image.media_type)
                .bind(&image.artifact_media_type)
                .bind(image.subject.as_ref().map(Digest::as_str))
                .bind(image.size as i64)
                .bind(image.pushed_at)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            let image_created = inserted.rows_affected() == 1;
            if image_created {
                // In digest order: pushes sharing layers lock their links in one order.
                let mut blobs: Vec<&(Digest, String)> = refs.blobs.iter().collect();
                blobs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                for (blob, media_type) in blobs {
                    // Checked again inside the transaction, and locked to its end: garbage
                    // collection may have unlinked an unreferenced blob since the caller
                    // looked, and must not unlink it now until this image is seen. Locked for
                    // update at once, as the media type is written next (a shared lock taken
                    // by two pushes and then raised would deadlock).
                    let linked: Option<i64> =
                        sqlx::query_scalar(&format!("{}{}", sql::LINK_ROW, dialect.for_update))
                            .bind(repo.0)
                            .bind(blob.as_str())
                            .fetch_optional(&mut **tx)
                            .await
                            .map_err(db_err)?;
                    if linked.is_none() && !refs.blobs_may_follow {
                        return Err(StorageError::Conflict("a referenced blob was unlinked"));
                    }
                    sqlx::query(sql::INSERT_IMAGE_BLOB)
                        .bind(repo.0)
                        .bind(image.digest.as_str())
                        .bind(blob.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    sqlx::query(sql::SET_LINK_MEDIA_TYPE)
                        .bind(media_type)
                        .bind(repo.0)
                        .bind(blob.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                for child in &refs.children {
                    sqlx::query(sql::INSERT_IMAGE_CHILD)
                        .bind(repo.0)
                        .bind(image.digest.as_str())
                        .bind(child.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
            }
            let mut tag_changed = false;
            if let Some(write) = tag {
                let tag = match write {
                    TagWrite::Move(t) | TagWrite::IfUnchanged(t, _) => t,
                };
                let current: Option<String> = sqlx::query_scalar(sql::RESOLVE_TAG)
                    .bind(repo.0)
                    .bind(tag.as_str())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?;
                if !dialect.for_update.is_empty() {
                    // Both images whose tags change (the tag's old and new target), locked in
                    // digest order before the tag's row: the `tagged` triggers lock them too,
                    // and two pushes swapping tags between two images would otherwise each
                    // hold one and wait for the other. The lock also orders racing tag writes
                    // to one image, so that each counts the tags the previous one committed.
                    let old = current.as_deref().unwrap_or(image.digest.as_str());
                    sqlx::query(&format!("{}{}", sql::IMAGES_IN_ORDER, dialect.for_update))
                        .bind(repo.0)
                        .bind(image.digest.as_str())
                        .bind(old)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                if max_tags < usize::MAX && current.as_deref() != Some(image.digest.as_str()) {
                    let tags: i64 = sqlx::query_scalar(sql::COUNT_IMAGE_TAGS)
                        .bind(repo.0)
                        .bind(image.digest.as_str())
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    if tags as u64 >= max_tags as u64 {
                        return Err(StorageError::Conflict("the image has too many tags"));
                    }
                }
                // Each write is one conditional statement, so that under READ COMMITTED it
                // applies to the row as the last committed writer left it.
                let changed = match write {
                    TagWrite::Move(_) => sqlx::query(sql::MOVE_TAG)
                        .bind(repo.0)
                        .bind(tag.as_str())
                        .bind(image.digest.as_str()),
                    TagWrite::IfUnchanged(_, None) => sqlx::query(sql::CREATE_TAG)
                        .bind(repo.0)
                        .bind(tag.as_str())
                        .bind(image.digest.as_str()),
                    TagWrite::IfUnchanged(_, Some(was)) if *was == image.digest => {
                        // Already there: nothing to write, but it must still be there.
                        let now: Option<String> = sqlx::query_scalar(sql::RESOLVE_TAG)
                            .bind(repo.0)
                            .bind(tag.as_str())
                            .fetch_optional(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        if now.as_deref() != Some(was.as_str()) {
                            return Err(StorageError::Conflict("tag moved concurrently"));
                        }
                        return Ok(PutImageOutcome {
                            image_created,
                            tag_changed: false,
                        });
                    }
                    TagWrite::IfUnchanged(_, Some(was)) => sqlx::query(sql::MOVE_TAG_FROM)
                        .bind(repo.0)
                        .bind(tag.as_str())
                        .bind(image.digest.as_str())
                        .bind(was.as_str()),
                }
                .execute(&mut **tx)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1;
                if !changed && matches!(write, TagWrite::IfUnchanged(..)) {
                    return Err(StorageError::Conflict("tag moved concurrently"));
                }
                tag_changed = changed;
            }
            Ok(PutImageOutcome {
                image_created,
                tag_changed,
            })
        }
    };
}
pub(super) use put_image_tx;

/// The body of a transaction that writes repository settings (the same on both engines; the
/// caller begins and commits `$tx`, `db_err` is the caller's). Evaluates to
/// `Result<(), StorageError>`.
macro_rules! put_repository_settings_tx {
    ($tx:expr, $repo:expr, $changes:expr) => {
        async {
            let (tx, repo, changes): (_, RepositoryId, &[(&str, Option<&[u8]>)]) =
                ($tx, $repo, $changes);
            for (name, value) in changes {
                let q = match value {
                    Some(v) => sqlx::query(sql::PUT_REPOSITORY_SETTING)
                        .bind(repo.0)
                        .bind(*name)
                        .bind(*v),
                    None => sqlx::query(sql::DELETE_REPOSITORY_SETTING)
                        .bind(repo.0)
                        .bind(*name),
                };
                match q.execute(&mut **tx).await {
                    Ok(_) => {}
                    Err(e) if is_foreign_key_violation(&e) => return Err(StorageError::NotFound),
                    Err(e) => return Err(db_err(e)),
                }
            }
            Ok::<(), StorageError>(())
        }
    };
}
pub(super) use put_repository_settings_tx;

/// TagResource's transaction, the same on both engines: the repository's row first (locked
/// with the dialect's suffix, so that racing calls count one after the other; `NotFound` if
/// it is gone), then the writes, then the count. Evaluates to
/// `Result<Vec<ResourceTag>, StorageError>`; the caller begins `$tx` and commits it on `Ok`.
macro_rules! tag_repository_tx {
    ($tx:expr, $dialect:expr, $repo:expr, $tags:expr, $max:expr) => {
        async {
            let (tx, dialect, repo, tags, max): (
                _,
                &$crate::meta::sql::Dialect,
                RepositoryId,
                &[ResourceTag],
                usize,
            ) = ($tx, $dialect, $repo, $tags, $max);
            let found: Option<i64> =
                sqlx::query_scalar(&format!("{}{}", sql::REPOSITORY_ROW, dialect.for_update))
                    .bind(repo.0)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?;
            if found.is_none() {
                return Err(StorageError::NotFound);
            }
            for t in tags {
                sqlx::query(sql::UPSERT_REPOSITORY_TAG)
                    .bind(repo.0)
                    .bind(&t.key)
                    .bind(&t.value)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            let rows = sqlx::query(sql::REPOSITORY_TAGS)
                .bind(repo.0)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?;
            if rows.len() > max {
                return Err(StorageError::Conflict("too many tags"));
            }
            Ok(rows
                .iter()
                .map(|r| ResourceTag {
                    key: r.get(0),
                    value: r.get(1),
                })
                .collect::<Vec<_>>())
        }
    };
}
pub(super) use tag_repository_tx;

// The event outbox.

use super::{EventRecord, ImageEvent};
use crate::StorageError;
use model::{Digest, RepositoryName};

pub(super) const INSERT_EVENT: &str = "INSERT INTO events (created_at, detail_type, action_type, registry_id, repository_name, image_digest, image_tag, manifest_media_type, artifact_media_type, next_attempt_at, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// An image's tags, removed ahead of the image so that its events name the tags it had as the
/// delete saw them (the image's own delete would remove them by cascade).
pub(super) const DELETE_IMAGE_TAGS: &str =
    "DELETE FROM image_tags WHERE repository_id = $1 AND digest = $2 RETURNING tag";
pub(super) const DELETE_TAG_RETURNING: &str =
    "DELETE FROM image_tags WHERE repository_id = $1 AND tag = $2 RETURNING digest";
pub(super) const DUE_EVENTS: &str = "SELECT id, created_at, detail_type, action_type, registry_id, repository_name, image_digest, image_tag, manifest_media_type, artifact_media_type, attempts, delivered_to, detail
     FROM events WHERE given_up = 0 AND next_attempt_at <= $1 ORDER BY id LIMIT $2";
pub(super) const DELETE_EVENT: &str = "DELETE FROM events WHERE id = $1";
pub(super) const RETRY_EVENT: &str = "UPDATE events SET attempts = attempts + 1, delivered_to = $1, next_attempt_at = $2, given_up = $3 WHERE id = $4";
pub(super) const EVENT_BACKLOG: &str = "SELECT CAST(COALESCE(SUM(1 - given_up), 0) AS BIGINT), CAST(COALESCE(SUM(given_up), 0) AS BIGINT) FROM events";

/// Writes an image event's outbox rows, one per tag in `$tags` (`Option<&str>`s), inside the
/// caller's transaction (`db_err` is the caller's). Evaluates to `Result<(), StorageError>`.
macro_rules! insert_events_tx {
    ($tx:expr, $event:expr, $digest:expr, $tags:expr) => {
        async {
            let (tx, event, digest): (_, &ImageEvent, &str) = ($tx, $event, $digest);
            let registry = event.service.registry_key(&event.registry_id);
            for tag in $tags {
                let tag: Option<&str> = tag;
                sqlx::query(sql::INSERT_EVENT)
                    .bind(event.at)
                    .bind(&event.detail_type)
                    .bind(&event.action_type)
                    .bind(registry.as_ref())
                    .bind(event.repository.as_str())
                    .bind(digest)
                    .bind(tag)
                    .bind(&event.manifest_media_type)
                    .bind(&event.artifact_media_type)
                    .bind(event.at)
                    .bind(&event.detail)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            Ok::<(), StorageError>(())
        }
    };
}
pub(super) use insert_events_tx;

/// DeleteImage's transaction with its events (the same on both engines; the caller begins and
/// commits `$tx`). Evaluates to `Result<bool, StorageError>`: whether the image existed.
macro_rules! delete_image_tx {
    ($tx:expr, $repo:expr, $digest:expr, $event:expr) => {
        async {
            let (tx, repo, digest, event): (_, RepositoryId, &Digest, &ImageEvent) =
                ($tx, $repo, $digest, $event);
            let tags: Vec<String> = sqlx::query_scalar(sql::DELETE_IMAGE_TAGS)
                .bind(repo.0)
                .bind(digest.as_str())
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?;
            let deleted = sqlx::query(sql::DELETE_IMAGE)
                .bind(repo.0)
                .bind(digest.as_str())
                .execute(&mut **tx)
                .await
                .map_err(db_err)?
                .rows_affected()
                == 1;
            if deleted {
                let mut tags: Vec<Option<&str>> = tags.iter().map(|t| Some(t.as_str())).collect();
                tags.sort();
                if tags.is_empty() {
                    tags.push(None);
                }
                sql::insert_events_tx!(&mut *tx, event, digest.as_str(), tags).await?;
            }
            Ok::<bool, StorageError>(deleted)
        }
    };
}
pub(super) use delete_image_tx;

/// A [`DUE_EVENTS`] row, as both engines decode it.
pub(super) type EventRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
);

/// Decodes a [`DUE_EVENTS`] row.
pub(super) fn event_record(row: EventRow) -> Result<EventRecord, StorageError> {
    let (
        id,
        at,
        detail_type,
        action_type,
        key,
        name,
        digest,
        tag,
        manifest,
        artifact,
        attempts,
        delivered,
        detail,
    ) = row;
    let corrupt = |what: &str| StorageError::Other(format!("corrupt event row: {what}").into());
    let (service, account) = model::Service::from_registry_key(&key);
    Ok(EventRecord {
        id,
        event: ImageEvent {
            detail_type,
            action_type,
            service,
            registry_id: account.to_owned(),
            repository: RepositoryName::parse(&name).map_err(|_| corrupt("repository name"))?,
            digest: match digest.as_str() {
                "" => None,
                d => Some(Digest::parse(d).map_err(|_| corrupt("digest"))?),
            },
            manifest_media_type: manifest,
            artifact_media_type: artifact,
            detail,
            region: None,
            at,
        },
        tag,
        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
        delivered_to: delivered
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

// Storage use per repository (migrations sqlite 0013, postgres 0008): folded figures plus
// the deltas the triggers wrote since.

/// One batch of pending deltas, taken out: each is folded by the one transaction that deletes
/// it (a second fold racing on PostgreSQL finds the rows gone and skips them).
pub(super) const TAKE_USAGE_DELTAS: &str = "DELETE FROM repository_usage_deltas WHERE id IN
       (SELECT id FROM repository_usage_deltas ORDER BY id LIMIT $1)
     RETURNING repository_id, images, bytes";
/// Adds a repository's deltas to its folded figures, if the repository still exists.
pub(super) const FOLD_USAGE: &str =
    "INSERT INTO repository_usage (repository_id, images, bytes)
     SELECT r.id, v.images, v.bytes FROM (SELECT $1 AS id, $2 AS images, $3 AS bytes) v, repositories r
      WHERE r.id = v.id
     ON CONFLICT (repository_id) DO UPDATE
       SET images = repository_usage.images + excluded.images,
           bytes = repository_usage.bytes + excluded.bytes";
/// Figures of deleted repositories (a fold may have added to one as it was deleted).
pub(super) const DROP_ORPHAN_USAGE: &str = "DELETE FROM repository_usage WHERE NOT EXISTS
       (SELECT 1 FROM repositories r WHERE r.id = repository_usage.repository_id)";
/// Every repository's figures (folded plus pending), as a subquery of the readings below.
const USAGE_NOW: &str = "SELECT r.registry_id AS registry_id, r.name AS name,
            CAST(COALESCE(u.images, 0) + COALESCE(d.images, 0) AS BIGINT) AS images,
            CAST(COALESCE(u.bytes, 0) + COALESCE(d.bytes, 0) AS BIGINT) AS bytes
       FROM repositories r
       LEFT JOIN repository_usage u ON u.repository_id = r.id
       LEFT JOIN (SELECT repository_id, SUM(images) AS images, SUM(bytes) AS bytes
                    FROM repository_usage_deltas GROUP BY repository_id) d
         ON d.repository_id = r.id";
/// The `$1` repositories that use the most bytes, largest first (ties by name).
pub(super) fn largest_repositories() -> String {
    format!(
        "SELECT registry_id, name, images, bytes FROM ({USAGE_NOW}) n ORDER BY bytes DESC, registry_id, name LIMIT $1"
    )
}
/// Per registry: repositories, images and bytes.
pub(super) fn registry_usage() -> String {
    format!(
        "SELECT registry_id, CAST(COUNT(*) AS BIGINT), CAST(SUM(images) AS BIGINT), CAST(SUM(bytes) AS BIGINT) FROM ({USAGE_NOW}) n GROUP BY registry_id ORDER BY registry_id"
    )
}
/// One repository's figures (folded plus pending).
pub(super) const ONE_REPOSITORY_USAGE: &str = "SELECT
       CAST(COALESCE((SELECT images FROM repository_usage WHERE repository_id = $1), 0)
          + COALESCE((SELECT SUM(images) FROM repository_usage_deltas WHERE repository_id = $1), 0) AS BIGINT),
       CAST(COALESCE((SELECT bytes FROM repository_usage WHERE repository_id = $1), 0)
          + COALESCE((SELECT SUM(bytes) FROM repository_usage_deltas WHERE repository_id = $1), 0) AS BIGINT)";
/// The figures of `n` repositories (ids `$1`..`$n`), each as [`ONE_REPOSITORY_USAGE`] reads
/// one: an index seek per repository in `repository_usage` and in the deltas.
pub(super) fn some_repositories_usage(n: usize) -> String {
    let ids: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT r.id,
       CAST(COALESCE(u.images, 0)
          + COALESCE((SELECT SUM(d.images) FROM repository_usage_deltas d WHERE d.repository_id = r.id), 0) AS BIGINT),
       CAST(COALESCE(u.bytes, 0)
          + COALESCE((SELECT SUM(d.bytes) FROM repository_usage_deltas d WHERE d.repository_id = r.id), 0) AS BIGINT)
     FROM repositories r LEFT JOIN repository_usage u ON u.repository_id = r.id
    WHERE r.id IN ({})",
        ids.join(", ")
    )
}

/// Decodes the rows of [`some_repositories_usage`].
pub(super) fn repositories_usage(
    rows: Vec<(i64, i64, i64)>,
) -> Vec<(super::RepositoryId, super::RepositoryUsage)> {
    rows.into_iter()
        .map(|(id, images, bytes)| {
            (
                super::RepositoryId(id),
                super::RepositoryUsage {
                    images: images.max(0) as u64,
                    bytes: bytes.max(0) as u64,
                },
            )
        })
        .collect()
}

/// The fold's transaction, the same on both engines (the caller begins and commits `$tx`,
/// `db_err` is the caller's): takes up to `$batch` deltas, adds them up per repository, and
/// adds each sum to the folded figures. Evaluates to `Result<u64, StorageError>`: the deltas
/// folded.
macro_rules! fold_usage_tx {
    ($tx:expr, $batch:expr) => {
        async {
            let (tx, batch): (_, u32) = ($tx, $batch);
            let rows: Vec<(i64, i64, i64)> = sqlx::query_as(sql::TAKE_USAGE_DELTAS)
                .bind(i64::from(batch))
                .fetch_all(&mut **tx)
                .await
                .map_err(db_err)?;
            let mut sums: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
            for (repo, images, bytes) in &rows {
                let s = sums.entry(*repo).or_default();
                s.0 += images;
                s.1 += bytes;
            }
            // In repository order, so that two folds (a lease lost mid-run) lock alike.
            for (repo, (images, bytes)) in sums {
                sqlx::query(sql::FOLD_USAGE)
                    .bind(repo)
                    .bind(images)
                    .bind(bytes)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            if !rows.is_empty() {
                sqlx::query(sql::DROP_ORPHAN_USAGE)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            Ok::<u64, StorageError>(rows.len() as u64)
        }
    };
}
pub(super) use fold_usage_tx;

/// Decodes the readings of [`largest_repositories`] and [`registry_usage`].
pub(super) fn storage_usage(
    largest: Vec<(String, String, i64, i64)>,
    registries: Vec<(String, i64, i64, i64)>,
) -> Result<super::StorageUsage, StorageError> {
    let n = |v: i64| v.max(0) as u64;
    Ok(super::StorageUsage {
        largest: largest
            .into_iter()
            .map(|(key, name, images, bytes)| {
                let (service, account) = model::Service::from_registry_key(&key);
                Ok(super::RepositoryStorage {
                    service,
                    registry_id: account.to_owned(),
                    name: RepositoryName::parse(&name).map_err(|_| {
                        StorageError::Other(format!("corrupt repository name {name:?}").into())
                    })?,
                    images: n(images),
                    bytes: n(bytes),
                })
            })
            .collect::<Result<_, StorageError>>()?,
        registries: registries
            .into_iter()
            .map(|(key, repositories, images, bytes)| {
                let (service, account) = model::Service::from_registry_key(&key);
                super::RegistryStorage {
                    service,
                    registry_id: account.to_owned(),
                    repositories: n(repositories),
                    images: n(images),
                    bytes: n(bytes),
                }
            })
            .collect(),
    })
}

// Replication work (the same SQL on both engines).

use super::{ReplicationDestination, ReplicationStatusRecord, ReplicationTask, RepositoryId};

pub(super) const INSERT_REPLICATION: &str = "INSERT INTO replications (created_at, registry_id, repository_id, repository_name, image_digest, image_tag, destination_region, destination_registry_id, next_attempt_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $1, $1)";
pub(super) const DUE_REPLICATIONS: &str = "SELECT id, created_at, registry_id, repository_id, repository_name, image_digest, image_tag, destination_region, destination_registry_id, attempts
     FROM replications WHERE status = 'IN_PROGRESS' AND next_attempt_at <= $1 ORDER BY id LIMIT $2";
/// Ends a row; only an IN_PROGRESS one, so that a node that lost its lease half-way cannot
/// overwrite what the next holder decided.
pub(super) const FINISH_REPLICATION: &str = "UPDATE replications SET status = $1, failure_code = $2, updated_at = $3 WHERE id = $4 AND status = 'IN_PROGRESS'";
/// The ended rows an ended row `$1` supersedes: same image, same destination, older.
pub(super) const PRUNE_REPLICATIONS: &str = "DELETE FROM replications WHERE status <> 'IN_PROGRESS' AND id < $1
     AND (repository_id, image_digest, destination_region, destination_registry_id) IN
         (SELECT repository_id, image_digest, destination_region, destination_registry_id FROM replications WHERE id = $1)";
pub(super) const RETRY_REPLICATION: &str = "UPDATE replications SET attempts = attempts + 1, next_attempt_at = $1, failure_code = $2, updated_at = $3 WHERE id = $4 AND status = 'IN_PROGRESS'";
pub(super) const REPLICATION_STATUSES: &str =
    "SELECT destination_region, destination_registry_id, status, failure_code FROM replications
     WHERE repository_id = $1 AND image_digest = $2 ORDER BY id";

/// Writes a push's replication rows, one per destination, inside the caller's transaction
/// (`db_err` is the caller's). Evaluates to `Result<(), StorageError>`.
macro_rules! insert_replications_tx {
    ($tx:expr, $work:expr, $repo:expr, $digest:expr, $tag:expr, $at:expr) => {
        async {
            let (tx, work, repo, digest, tag, at): (
                _,
                &ReplicationWork,
                RepositoryId,
                &str,
                Option<&str>,
                Millis,
            ) = ($tx, $work, $repo, $digest, $tag, $at);
            for d in &work.destinations {
                sqlx::query(sql::INSERT_REPLICATION)
                    .bind(at)
                    .bind(&work.registry_id)
                    .bind(repo.0)
                    .bind(work.repository.as_str())
                    .bind(digest)
                    .bind(tag)
                    .bind(&d.region)
                    .bind(&d.registry_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            Ok::<(), StorageError>(())
        }
    };
}
pub(super) use insert_replications_tx;

/// A [`DUE_REPLICATIONS`] row.
pub(super) type ReplicationRow = (
    i64,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
);

/// Decodes a [`DUE_REPLICATIONS`] row.
pub(super) fn replication_task(row: ReplicationRow) -> Result<ReplicationTask, StorageError> {
    let (id, created_at, registry_id, repo, name, digest, tag, region, dest, attempts) = row;
    let corrupt =
        |what: &str| StorageError::Other(format!("corrupt replication row: {what}").into());
    Ok(ReplicationTask {
        id,
        registry_id,
        repository_id: RepositoryId(repo),
        repository: RepositoryName::parse(&name).map_err(|_| corrupt("repository name"))?,
        digest: Digest::parse(&digest).map_err(|_| corrupt("digest"))?,
        tag: tag
            .map(|t| model::ImageTag::parse(&t).map_err(|_| corrupt("tag")))
            .transpose()?,
        destination: ReplicationDestination {
            region,
            registry_id: dest,
        },
        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
        created_at,
    })
}

/// The latest status per destination, from [`REPLICATION_STATUSES`] rows in id order.
pub(super) fn replication_statuses(
    rows: Vec<(String, String, String, Option<String>)>,
) -> Vec<ReplicationStatusRecord> {
    let mut latest = std::collections::BTreeMap::new();
    for (region, registry_id, status, failure_code) in rows {
        latest.insert(
            ReplicationDestination {
                region,
                registry_id,
            },
            (status, failure_code),
        );
    }
    latest
        .into_iter()
        .map(
            |(destination, (status, failure_code))| ReplicationStatusRecord {
                destination,
                status,
                failure_code,
            },
        )
        .collect()
}
