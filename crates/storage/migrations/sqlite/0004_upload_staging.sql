-- What the blob store staged for an upload (an object store's multipart upload and its parts),
-- saved with each part so that the next part may arrive at any node.
ALTER TABLE uploads ADD COLUMN staging BLOB NOT NULL DEFAULT x'';
