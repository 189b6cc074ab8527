-- Storage use per repository (issue 17 §1), maintained rather than walked: the bytes of the
-- blobs a repository links (layers and configs, each once however many images share it) plus
-- those of its manifests, and its image count. As SQLite's 0013.
--
-- Triggers on the two tables write one delta row per change, in the transaction of the
-- change, whatever statement made it (a link, an upload's completion, PutImage, an image's
-- delete, GC's unlink, a repository's cascading delete). Deltas are only ever inserted, so
-- concurrent pushes on several nodes share no row to lock (a counter row per repository
-- would be one more lock for every PutImage to wait for, and to deadlock on beside the rows
-- it already locks); a leased job folds them into `repository_usage` (see `fold_usage`), and
-- a reading is the folded figures plus the pending deltas, in one statement's snapshot.
--
-- No foreign keys: a repository's delete cascades to its links and images, whose triggers
-- then write deltas for a repository that is gone; readings join `repositories`, and the
-- fold drops what belongs to no repository.
CREATE TABLE repository_usage (
    repository_id BIGINT PRIMARY KEY,
    images        BIGINT NOT NULL,
    bytes         BIGINT NOT NULL
);

CREATE TABLE repository_usage_deltas (
    id            BIGSERIAL PRIMARY KEY,
    repository_id BIGINT NOT NULL,
    images        BIGINT NOT NULL,
    bytes         BIGINT NOT NULL
);
CREATE INDEX repository_usage_deltas_by_repository ON repository_usage_deltas (repository_id);

-- An INSERT ... ON CONFLICT DO NOTHING that inserts nothing (a layer pushed again) fires no
-- row trigger. The blob's row exists while a link to it does, and its size never changes.
CREATE FUNCTION berth_usage_link_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO repository_usage_deltas (repository_id, images, bytes)
            SELECT NEW.repository_id, 0, size FROM blobs WHERE digest = NEW.digest;
    ELSE
        INSERT INTO repository_usage_deltas (repository_id, images, bytes)
            SELECT OLD.repository_id, 0, -size FROM blobs WHERE digest = OLD.digest;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION berth_usage_image_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO repository_usage_deltas (repository_id, images, bytes)
            VALUES (NEW.repository_id, 1, octet_length(NEW.manifest));
    ELSE
        INSERT INTO repository_usage_deltas (repository_id, images, bytes)
            VALUES (OLD.repository_id, -1, -octet_length(OLD.manifest));
    END IF;
    RETURN NULL;
END $$;

-- Created before the walk below: each locks its table against writers until this migration
-- commits, so that every change is either in the walk or in a delta, never in both or neither.
CREATE TRIGGER repository_blobs_usage AFTER INSERT OR DELETE ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION berth_usage_link_changed();
CREATE TRIGGER images_usage AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION berth_usage_image_changed();

-- The starting figures of the repositories that exist, by a walk this once.
INSERT INTO repository_usage (repository_id, images, bytes)
SELECT r.id,
       (SELECT COUNT(*) FROM images i WHERE i.repository_id = r.id),
       CAST((SELECT COALESCE(SUM(octet_length(i.manifest)), 0) FROM images i WHERE i.repository_id = r.id)
          + (SELECT COALESCE(SUM(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
              WHERE rb.repository_id = r.id) AS BIGINT)
  FROM repositories r;
