-- uplink's own tables on MySQL 8 / MariaDB 10.6+: the Postgres migrations'
-- tables (progress, dead letters, checkpoints, write conflicts) in MySQL's
-- types (user ids up to 512 characters, client ids up to 256, as uplink
-- accepts them). Ids and user ids compare byte for byte (utf8mb4_bin), as in
-- Postgres. Attachment records are Postgres-only.

CREATE TABLE uplink_client_progress (
    user_id     VARCHAR(512) NOT NULL,
    client_id   VARCHAR(256) NOT NULL,
    last_op_id  BIGINT       NOT NULL,
    updated_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (user_id, client_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE uplink_dead_letters (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id          VARCHAR(512) NOT NULL,
    client_id        VARCHAR(256),
    tx_id            BIGINT,
    entries          LONGTEXT     NOT NULL CHECK (JSON_VALID(entries)),
    code             VARCHAR(64)  NOT NULL,
    `sqlstate`       VARCHAR(16),
    constraint_name  TEXT,
    column_name      TEXT,
    message          TEXT         NOT NULL,
    failed_op_id     BIGINT,
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    replayed_at      DATETIME(6),
    replay_outcome   TEXT,
    KEY uplink_dead_letters_created_at (created_at),
    KEY uplink_dead_letters_user_pending (user_id, replayed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per user with dead letters: locked while a batch counts and adds
-- that user's dead letters (Postgres uses an advisory lock).
CREATE TABLE uplink_dead_letter_users (
    user_id  VARCHAR(512) NOT NULL PRIMARY KEY
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE checkpoints (
    user_id     VARCHAR(512) NOT NULL,
    client_id   VARCHAR(256) NOT NULL,
    checkpoint  BIGINT       NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, client_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE write_conflicts (
    id             CHAR(36)     NOT NULL PRIMARY KEY,
    table_name     VARCHAR(255) NOT NULL,
    row_id         TEXT         NOT NULL,
    conflict_type  VARCHAR(64)  NOT NULL,
    client_data    LONGTEXT     NOT NULL CHECK (JSON_VALID(client_data)),
    server_data    LONGTEXT     CHECK (JSON_VALID(server_data)),
    resolved       BOOLEAN      NOT NULL DEFAULT FALSE,
    user_id        VARCHAR(512) NOT NULL,
    client_id      VARCHAR(256),
    op_id          BIGINT,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    resolved_at    DATETIME(6),
    KEY write_conflicts_user_unresolved (user_id, resolved)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
