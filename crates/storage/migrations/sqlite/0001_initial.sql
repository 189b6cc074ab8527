-- Repositories of every registry (account) this berth serves.
CREATE TABLE repositories (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id          TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    created_at           INTEGER NOT NULL,
    image_tag_mutability TEXT    NOT NULL,
    mutability_exclusions TEXT   NOT NULL, -- JSON-free encoding: "type\tfilter\n"...
    scan_on_push         INTEGER NOT NULL,
    encryption_type      TEXT    NOT NULL,
    kms_key              TEXT,
    UNIQUE (registry_id, name)
) STRICT;

CREATE TABLE repository_tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (repository_id, key)
) STRICT;

-- Blobs present in the blob store, shared by all repositories.
CREATE TABLE blobs (
    digest     TEXT    PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- A blob is available to a repository only once uploaded to (or mounted into) it.
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL REFERENCES blobs(digest),
    media_type    TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) STRICT;

CREATE TABLE images (
    repository_id       INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest              TEXT    NOT NULL,
    manifest            BLOB    NOT NULL,
    media_type          TEXT    NOT NULL,
    artifact_media_type TEXT,
    subject             TEXT,
    size                INTEGER NOT NULL,
    pushed_at           INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) STRICT;
CREATE INDEX images_by_subject ON images (repository_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE image_tags (
    repository_id INTEGER NOT NULL,
    tag           TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    PRIMARY KEY (repository_id, tag),
    FOREIGN KEY (repository_id, digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_tags_by_digest ON image_tags (repository_id, digest, tag);

-- Blobs an image references (config and layers).
CREATE TABLE image_blobs (
    repository_id INTEGER NOT NULL,
    image_digest  TEXT    NOT NULL,
    blob_digest   TEXT    NOT NULL,
    PRIMARY KEY (repository_id, image_digest, blob_digest),
    FOREIGN KEY (repository_id, image_digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_blobs_by_blob ON image_blobs (repository_id, blob_digest);

-- Manifests an index lists.
CREATE TABLE image_children (
    repository_id INTEGER NOT NULL,
    index_digest  TEXT    NOT NULL,
    child_digest  TEXT    NOT NULL,
    PRIMARY KEY (repository_id, index_digest, child_digest),
    FOREIGN KEY (repository_id, index_digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_children_by_child ON image_children (repository_id, child_digest);

CREATE TABLE uploads (
    id              TEXT    PRIMARY KEY,
    repository_id   INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    received        INTEGER NOT NULL,
    part_count      INTEGER NOT NULL,
    last_part_size  INTEGER NOT NULL,
    short_part_seen INTEGER NOT NULL,
    hash_state      BLOB    NOT NULL
) STRICT;
