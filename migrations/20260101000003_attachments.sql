-- Attachments: which object belongs to whom and whether its upload finished.
-- The object key is chosen by uplink (`{prefix}/{owner}/{id}.{ext}`); the
-- client's filename is kept only as metadata. Deleted attachments stay as
-- tombstones so their id cannot be taken over by another user.
CREATE TABLE attachments (
    id            text        PRIMARY KEY,
    owner_id      text        NOT NULL,
    object_key    text        NOT NULL UNIQUE,
    filename      text        NOT NULL,
    content_type  text        NOT NULL,
    -- Declared by the client until the upload completes, then the stored size.
    size          bigint      CHECK (size >= 0),
    -- Hex SHA-256 the client declared (and storage verified), if any.
    sha256        text,
    state         text        NOT NULL DEFAULT 'pending'
                              CHECK (state IN ('pending', 'uploaded', 'deleted')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    uploaded_at   timestamptz,
    deleted_at    timestamptz
);
CREATE INDEX attachments_owner_id ON attachments (owner_id);
-- The cleanup task looks for old pending uploads.
CREATE INDEX attachments_pending_updated_at ON attachments (updated_at) WHERE state = 'pending';
