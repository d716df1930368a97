-- Multipart uploads in progress: at most one per attachment. `upload_id` is
-- the storage's (S3's UploadId, or the local backend's directory name); the
-- part size and count are uplink's choice for the declared size. The row
-- goes when the upload completes or is aborted, and with its attachment.
CREATE TABLE multipart_uploads (
    owner_id    text        NOT NULL,
    id          text        NOT NULL,
    upload_id   text        NOT NULL UNIQUE,
    object_key  text        NOT NULL,
    size        bigint      NOT NULL CHECK (size > 0),
    part_size   bigint      NOT NULL CHECK (part_size > 0),
    part_count  integer     NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Moves on every request for the upload: the cleanup aborts uploads
    -- nobody touched for `attachments.cleanup.pending_max_age`.
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, id),
    FOREIGN KEY (owner_id, id) REFERENCES attachments (owner_id, id) ON DELETE CASCADE
);
CREATE INDEX multipart_uploads_updated_at ON multipart_uploads (updated_at);
