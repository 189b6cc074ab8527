-- What an image's row does not say about it: its storage class (UpdateImageStorageClass,
-- lifecycle `transition`) and when it was last pulled. A row exists only for images that were
-- archived or pulled; an image without one is ACTIVE and never pulled. It goes with its image.
-- `last_activated_at` is when the last restore completes: the image is ACTIVATING until then.
CREATE TABLE image_states (
    repository_id     BIGINT NOT NULL,
    digest            TEXT   NOT NULL COLLATE "C",
    archived          BIGINT NOT NULL DEFAULT 0,
    last_archived_at  BIGINT,
    last_activated_at BIGINT,
    last_pulled_at    BIGINT,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES images(repository_id, digest) ON DELETE CASCADE
);
