-- Replication work and its status: each push that a replication rule matches writes one row
-- per destination in the transaction of the push (an outbox, like `events`), so that the work
-- exists if and only if the push was committed. The replication job takes due IN_PROGRESS rows,
-- copies the image, and marks them COMPLETE or FAILED; the rows then answer
-- DescribeImageReplicationStatus (the latest row per destination). No foreign key: a row
-- outlives its repository, and is keyed by the repository's id so that a new repository of
-- the same name does not inherit its statuses. `registry_id` is the source account.
CREATE TABLE replications (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at              INTEGER NOT NULL,
    registry_id             TEXT    NOT NULL,
    repository_id           INTEGER NOT NULL,
    repository_name         TEXT    NOT NULL,
    image_digest            TEXT    NOT NULL,
    image_tag               TEXT,
    destination_region      TEXT    NOT NULL,
    destination_registry_id TEXT    NOT NULL,
    status                  TEXT    NOT NULL DEFAULT 'IN_PROGRESS',
    failure_code            TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX replications_due ON replications (status, next_attempt_at, id);
CREATE INDEX replications_image ON replications (repository_id, image_digest, id);
