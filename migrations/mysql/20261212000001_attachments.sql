-- Attachment records on MySQL 8 / MariaDB 10.6+: the Postgres migrations'
-- `attachments` (keyed per owner) and `multipart_uploads`, in MySQL's
-- types. Owner ids, attachment ids, object keys and upload ids are
-- VARBINARY: compared byte for byte with no padding, as in Postgres (see
-- 20261210000001_ids_no_pad.sql). Owner ids hold the 512 characters uplink
-- accepts as user ids; attachment ids are at most 128 characters of
-- `[A-Za-z0-9_-]`; an object key is `{prefix}/{owner}/{id}.{ext}` with the
-- owner reduced to at most 128 characters.
CREATE TABLE attachments (
    id            VARBINARY(128)  NOT NULL,
    owner_id      VARBINARY(2048) NOT NULL,
    object_key    VARBINARY(1024) NOT NULL,
    filename      TEXT            NOT NULL,
    content_type  TEXT            NOT NULL,
    -- Declared by the client until the upload completes, then the stored size.
    size          BIGINT          CHECK (size >= 0),
    -- Hex SHA-256 the client declared (and storage verified), if any.
    sha256        TEXT,
    state         VARCHAR(16)     NOT NULL DEFAULT 'pending'
                                  CHECK (state IN ('pending', 'uploaded', 'deleted')),
    created_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    uploaded_at   DATETIME(6),
    deleted_at    DATETIME(6),
    PRIMARY KEY (owner_id, id),
    UNIQUE KEY attachments_object_key (object_key),
    -- Downloads look up by id.
    KEY attachments_id (id),
    -- The cleanup looks for old pending uploads (no partial indexes here).
    KEY attachments_state_updated_at (state, updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Multipart uploads in progress: at most one per attachment (see the
-- Postgres migration 20261212000001_multipart_uploads.sql).
CREATE TABLE multipart_uploads (
    owner_id    VARBINARY(2048) NOT NULL,
    id          VARBINARY(128)  NOT NULL,
    upload_id   VARBINARY(1024) NOT NULL,
    object_key  VARBINARY(1024) NOT NULL,
    size        BIGINT          NOT NULL CHECK (size > 0),
    part_size   BIGINT          NOT NULL CHECK (part_size > 0),
    part_count  INT             NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
    created_at  DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    -- Moves on every request for the upload: the cleanup aborts uploads
    -- nobody touched for `attachments.cleanup.pending_max_age`.
    updated_at  DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (owner_id, id),
    UNIQUE KEY multipart_uploads_upload_id (upload_id),
    KEY multipart_uploads_updated_at (updated_at),
    CONSTRAINT multipart_uploads_attachment FOREIGN KEY (owner_id, id)
        REFERENCES attachments (owner_id, id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
