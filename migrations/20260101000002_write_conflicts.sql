-- Conflicts recorded by `on_conflict: record` policies, in the shape of the
-- PowerSync docs' conflict table, so the app can sync them back to the user
-- (the `id` column makes the table syncable) and resolve them.
CREATE TABLE write_conflicts (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name     text        NOT NULL,
    row_id         text        NOT NULL,
    conflict_type  text        NOT NULL,
    client_data    jsonb       NOT NULL,
    server_data    jsonb,
    resolved       boolean     NOT NULL DEFAULT false,
    user_id        text        NOT NULL,
    client_id      text,
    op_id          bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz
);
CREATE INDEX write_conflicts_user_unresolved ON write_conflicts (user_id) WHERE NOT resolved;
