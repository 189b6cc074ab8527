-- Background jobs: one process at a time (a server, or `berth gc` beside it) holds a job's
-- lease, until `until`. (Upload claims need no table on SQLite: one process writes parts.)
CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT;
