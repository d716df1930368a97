-- uplink's own state for the write path. The app's tables are never created here.

-- Exactly-once: the highest op_id applied per (user, client), updated in the
-- same transaction as the writes it covers.
CREATE TABLE uplink_client_progress (
    user_id     text        NOT NULL,
    client_id   text        NOT NULL,
    last_op_id  bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id)
);

-- Client transactions that were rejected permanently, for operators to
-- inspect, replay or discard.
CREATE TABLE uplink_dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text        NOT NULL,
    client_id       text,
    tx_id           bigint,
    entries         jsonb       NOT NULL,
    code            text        NOT NULL,
    sqlstate        text,
    constraint_name text,
    column_name     text,
    message         text        NOT NULL,
    failed_op_id    bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replay_outcome  text
);
CREATE INDEX uplink_dead_letters_created_at ON uplink_dead_letters (created_at);

-- Custom write checkpoints (PUT /api/data/checkpoint), keyed by the
-- authenticated user and the client id.
CREATE TABLE checkpoints (
    user_id     text   NOT NULL,
    client_id   text   NOT NULL,
    checkpoint  bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, client_id)
);
