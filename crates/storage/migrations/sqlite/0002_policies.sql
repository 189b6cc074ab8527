-- Repository policies (SetRepositoryPolicy) and registry policies (PutRegistryPolicy).
ALTER TABLE repositories ADD COLUMN policy TEXT;

CREATE TABLE registry_policies (
    registry_id TEXT PRIMARY KEY,
    policy      TEXT NOT NULL
) STRICT;
