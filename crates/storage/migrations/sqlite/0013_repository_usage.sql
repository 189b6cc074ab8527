-- Storage use per repository (issue 17 §1), maintained rather than walked: the bytes of the
-- blobs a repository links (layers and configs, each once however many images share it) plus
-- those of its manifests, and its image count.
--
-- Triggers on the two tables write one delta row per change, in the transaction of the
-- change, whatever statement made it (a link, an upload's completion, PutImage, an image's
-- delete, GC's unlink, a repository's cascading delete). Deltas are only ever inserted, so
-- concurrent pushes share no row to lock; a leased job folds them into `repository_usage`
-- (see `fold_usage`), and a reading is the folded figures plus the pending deltas.
--
-- No foreign keys: a repository's delete cascades to its links and images, whose triggers
-- then write deltas for a repository that is gone; readings join `repositories`, and the
-- fold drops what belongs to no repository.
CREATE TABLE repository_usage (
    repository_id INTEGER PRIMARY KEY,
    images        INTEGER NOT NULL,
    bytes         INTEGER NOT NULL
);

CREATE TABLE repository_usage_deltas (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id INTEGER NOT NULL,
    images        INTEGER NOT NULL,
    bytes         INTEGER NOT NULL
);
CREATE INDEX repository_usage_deltas_by_repository ON repository_usage_deltas (repository_id);

-- An INSERT ... ON CONFLICT DO NOTHING that inserts nothing (a layer pushed again) fires no
-- INSERT trigger. The blob's row exists while a link to it does, and its size never changes.
CREATE TRIGGER repository_blobs_usage_linked AFTER INSERT ON repository_blobs BEGIN
    INSERT INTO repository_usage_deltas (repository_id, images, bytes)
        SELECT NEW.repository_id, 0, size FROM blobs WHERE digest = NEW.digest;
END;
CREATE TRIGGER repository_blobs_usage_unlinked AFTER DELETE ON repository_blobs BEGIN
    INSERT INTO repository_usage_deltas (repository_id, images, bytes)
        SELECT OLD.repository_id, 0, -size FROM blobs WHERE digest = OLD.digest;
END;
CREATE TRIGGER images_usage_put AFTER INSERT ON images BEGIN
    INSERT INTO repository_usage_deltas (repository_id, images, bytes)
        VALUES (NEW.repository_id, 1, LENGTH(NEW.manifest));
END;
CREATE TRIGGER images_usage_deleted AFTER DELETE ON images BEGIN
    INSERT INTO repository_usage_deltas (repository_id, images, bytes)
        VALUES (OLD.repository_id, -1, -LENGTH(OLD.manifest));
END;

-- The starting figures of the repositories that exist, by a walk this once.
INSERT INTO repository_usage (repository_id, images, bytes)
SELECT r.id,
       (SELECT COUNT(*) FROM images i WHERE i.repository_id = r.id),
       (SELECT COALESCE(SUM(LENGTH(i.manifest)), 0) FROM images i WHERE i.repository_id = r.id)
     + (SELECT COALESCE(SUM(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
         WHERE rb.repository_id = r.id)
  FROM repositories r;
