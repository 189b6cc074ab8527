-- Which repositories hold a blob (a /v2 mount without `from`), and whether any still does
-- (GC), in one index seek instead of a scan of every link. PostgreSQL has had it from its
-- first migration.
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);
