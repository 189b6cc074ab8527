-- Small named values of a repository or a registry, so that settings (ECR Public's catalog
-- data now; lifecycle policies, scanning configuration, account settings, replication and
-- pull-through rules later) need no table of their own each. A repository's go with it.
CREATE TABLE repository_settings (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    value         BLOB    NOT NULL,
    PRIMARY KEY (repository_id, name)
) STRICT;

-- `registry_id` is the registry's key (`public:<account>` for a public registry).
CREATE TABLE registry_settings (
    registry_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       BLOB NOT NULL,
    PRIMARY KEY (registry_id, name)
) STRICT;
