-- Whether an image has a tag, kept by triggers on image_tags, so that ListImages and
-- DescribeImages filtered by tag status seek an index to their page instead of probing
-- image_tags for every image of the repository.
ALTER TABLE images ADD COLUMN tagged INTEGER NOT NULL DEFAULT 0;

UPDATE images SET tagged = EXISTS
    (SELECT 1 FROM image_tags t WHERE t.repository_id = images.repository_id AND t.digest = images.digest);

-- Covers DescribeImages: a page reads consecutive index entries instead of one table row per
-- image, scattered in push order (and next to its manifest). Unfiltered, the page merges the
-- tagged and the untagged ranges.
CREATE INDEX images_by_tag_status ON images
    (repository_id, tagged, digest, media_type, artifact_media_type, subject, size, pushed_at);

CREATE TRIGGER image_tags_tag AFTER INSERT ON image_tags BEGIN
    UPDATE images SET tagged = 1
     WHERE repository_id = NEW.repository_id AND digest = NEW.digest AND tagged = 0;
END;

CREATE TRIGGER image_tags_untag AFTER DELETE ON image_tags BEGIN
    UPDATE images SET tagged = 0
     WHERE repository_id = OLD.repository_id AND digest = OLD.digest AND tagged = 1
       AND NOT EXISTS (SELECT 1 FROM image_tags t
                        WHERE t.repository_id = OLD.repository_id AND t.digest = OLD.digest);
END;

CREATE TRIGGER image_tags_move AFTER UPDATE OF repository_id, digest ON image_tags BEGIN
    UPDATE images SET tagged = 1
     WHERE repository_id = NEW.repository_id AND digest = NEW.digest AND tagged = 0;
    UPDATE images SET tagged = 0
     WHERE repository_id = OLD.repository_id AND digest = OLD.digest AND tagged = 1
       AND NOT EXISTS (SELECT 1 FROM image_tags t
                        WHERE t.repository_id = OLD.repository_id AND t.digest = OLD.digest);
END;
