-- The event outbox: each row is written in the transaction of the change it reports (a push
-- or a delete), and removed once every webhook it goes to took it. No foreign key: an event
-- outlives its repository. `registry_id` is the registry's key (`public:<account>` for a
-- public registry). `delivered_to` lists (one per line) the webhooks that already took it, so
-- a retry goes only to the others; `given_up` rows stay for the operator to see.
CREATE TABLE events (
    id                  BIGSERIAL PRIMARY KEY,
    created_at          BIGINT NOT NULL,
    detail_type         TEXT   NOT NULL,
    action_type         TEXT   NOT NULL,
    registry_id         TEXT   NOT NULL,
    repository_name     TEXT   NOT NULL,
    image_digest        TEXT   NOT NULL,
    image_tag           TEXT,
    manifest_media_type TEXT,
    artifact_media_type TEXT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    delivered_to        TEXT   NOT NULL DEFAULT '',
    given_up            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX events_due ON events (given_up, next_attempt_at, id);
