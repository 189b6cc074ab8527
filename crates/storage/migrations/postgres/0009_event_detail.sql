-- The detail fields of the events other than "ECR Image Action" (replication and
-- pull-through cache: `result`, `sync-status`, `source-account`, `failure-code`, ...), as one
-- JSON object merged into the event's `detail` on delivery. NULL for image actions, whose
-- fields have columns of their own. An event with no image digest (a failed pull-through sync
-- of a tag) stores '' in `image_digest`.
ALTER TABLE events ADD COLUMN detail TEXT;
