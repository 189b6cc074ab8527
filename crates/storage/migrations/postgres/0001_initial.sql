-- The PostgreSQL schema: the SQLite schema after its migrations 0001-0004, in one step, with
-- BIGINT for every integer (the binds are the i64 SQLite's are) and BYTEA for blobs.

CREATE TABLE repositories (
    id                    BIGSERIAL PRIMARY KEY,
    registry_id           TEXT   NOT NULL,
    name                  TEXT   NOT NULL COLLATE "C",
    created_at            BIGINT NOT NULL,
    image_tag_mutability  TEXT   NOT NULL,
    mutability_exclusions TEXT   NOT NULL, -- "type\tfilter\n"...
    scan_on_push          BIGINT NOT NULL,
    encryption_type       TEXT   NOT NULL,
    kms_key               TEXT,
    policy                TEXT,
    UNIQUE (registry_id, name)
);

CREATE TABLE repository_tags (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    key           TEXT   NOT NULL,
    value         TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    PRIMARY KEY (repository_id, key)
);

CREATE TABLE registry_policies (
    registry_id TEXT PRIMARY KEY,
    policy      TEXT NOT NULL
);

-- Blobs present in the blob store, shared by all repositories.
CREATE TABLE blobs (
    digest     TEXT   PRIMARY KEY COLLATE "C",
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT   NOT NULL COLLATE "C" REFERENCES blobs(digest),
    media_type    TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Text compares bytewise ("C") as in SQLite, so that pages continue after the same key on
-- both engines.
CREATE TABLE images (
    repository_id       BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest              TEXT   NOT NULL COLLATE "C",
    manifest            BYTEA  NOT NULL,
    media_type          TEXT   NOT NULL,
    artifact_media_type TEXT,
    subject             TEXT COLLATE "C",
    size                BIGINT NOT NULL,
    pushed_at           BIGINT NOT NULL,
    -- Whether the image has a tag; kept by the triggers below (as on SQLite).
    tagged              BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX images_by_subject ON images (repository_id, subject) WHERE subject IS NOT NULL;
CREATE INDEX images_by_tag_status ON images (repository_id, tagged, digest)
    INCLUDE (media_type, artifact_media_type, subject, size, pushed_at);

CREATE TABLE image_tags (
    repository_id BIGINT NOT NULL,
    tag           TEXT   NOT NULL COLLATE "C",
    digest        TEXT   NOT NULL COLLATE "C",
    PRIMARY KEY (repository_id, tag),
    FOREIGN KEY (repository_id, digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX image_tags_by_digest ON image_tags (repository_id, digest, tag);

CREATE TABLE image_blobs (
    repository_id BIGINT NOT NULL,
    image_digest  TEXT   NOT NULL COLLATE "C",
    blob_digest   TEXT   NOT NULL COLLATE "C",
    PRIMARY KEY (repository_id, image_digest, blob_digest),
    FOREIGN KEY (repository_id, image_digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX image_blobs_by_blob ON image_blobs (repository_id, blob_digest);

CREATE TABLE image_children (
    repository_id BIGINT NOT NULL,
    index_digest  TEXT   NOT NULL COLLATE "C",
    child_digest  TEXT   NOT NULL COLLATE "C",
    PRIMARY KEY (repository_id, index_digest, child_digest),
    FOREIGN KEY (repository_id, index_digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX image_children_by_child ON image_children (repository_id, child_digest);

CREATE TABLE uploads (
    id              TEXT   PRIMARY KEY,
    repository_id   BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    received        BIGINT NOT NULL,
    part_count      BIGINT NOT NULL,
    last_part_size  BIGINT NOT NULL,
    short_part_seen BIGINT NOT NULL,
    hash_state      BYTEA  NOT NULL,
    staging         BYTEA  NOT NULL DEFAULT '',
    -- The node writing a part holds the upload until `claimed_until` (see claim_upload).
    claim_token     TEXT,
    claimed_until   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX uploads_by_repository ON uploads (repository_id);

-- Background jobs: one node at a time holds a job's lease, until `until`.
CREATE TABLE leases (
    name   TEXT   PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);

-- `images.tagged`. Each trigger first locks the image's row, then (in a statement with a
-- fresh snapshot under READ COMMITTED) recomputes the flag: two transactions removing the
-- last two tags of one image thus see each other's delete instead of each seeing the other's
-- tag still there.
CREATE FUNCTION berth_retag(repo BIGINT, image TEXT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM images WHERE repository_id = repo AND digest = image FOR UPDATE;
    UPDATE images SET tagged = CASE WHEN EXISTS
            (SELECT 1 FROM image_tags t WHERE t.repository_id = repo AND t.digest = image)
            THEN 1 ELSE 0 END
     WHERE repository_id = repo AND digest = image;
END $$;

CREATE FUNCTION berth_image_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM berth_retag(NEW.repository_id, NEW.digest);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM berth_retag(OLD.repository_id, OLD.digest);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER image_tags_changed AFTER INSERT OR DELETE OR UPDATE OF repository_id, digest
    ON image_tags FOR EACH ROW EXECUTE FUNCTION berth_image_tags_changed();
