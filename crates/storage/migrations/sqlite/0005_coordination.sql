-- What several nodes coordinate through (kept here too, so that both engines answer the same
-- MetaStore methods): a claim on an upload while a part is written, and job leases.
ALTER TABLE uploads ADD COLUMN claim_token TEXT;
ALTER TABLE uploads ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;

CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT;
