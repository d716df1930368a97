-- User and client ids compare byte for byte with no padding, as in Postgres.
-- The first migration's utf8mb4_bin is a PAD SPACE collation: `x ` equalled
-- `x`, so two users (or clients) shared a progress row, a dead-letter cap and
-- checkpoints. The columns stay text (the PowerSync Service reads
-- `checkpoints` and `write_conflicts`, and binary values cannot be bucket
-- parameters) in the NO PAD binary collation of the server: MariaDB's
-- utf8mb4_nopad_bin, MySQL's utf8mb4_0900_bin (8.0.17 and later). Existing
-- rows keep their bytes; no two of them can clash, as PAD SPACE made them
-- unique already.

SET @uplink_no_pad = (
    SELECT COLLATION_NAME FROM information_schema.COLLATIONS
    WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')
    ORDER BY COLLATION_NAME = 'utf8mb4_nopad_bin' DESC
    LIMIT 1
);

SET @uplink_alter = CONCAT(
    'ALTER TABLE uplink_client_progress',
    ' MODIFY user_id VARCHAR(512) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL,',
    ' MODIFY client_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL'
);
PREPARE uplink_statement FROM @uplink_alter;
EXECUTE uplink_statement;
DEALLOCATE PREPARE uplink_statement;

SET @uplink_alter = CONCAT(
    'ALTER TABLE uplink_dead_letters',
    ' MODIFY user_id VARCHAR(512) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL,',
    ' MODIFY client_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NULL'
);
PREPARE uplink_statement FROM @uplink_alter;
EXECUTE uplink_statement;
DEALLOCATE PREPARE uplink_statement;

SET @uplink_alter = CONCAT(
    'ALTER TABLE uplink_dead_letter_users',
    ' MODIFY user_id VARCHAR(512) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL'
);
PREPARE uplink_statement FROM @uplink_alter;
EXECUTE uplink_statement;
DEALLOCATE PREPARE uplink_statement;

SET @uplink_alter = CONCAT(
    'ALTER TABLE checkpoints',
    ' MODIFY user_id VARCHAR(512) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL,',
    ' MODIFY client_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL'
);
PREPARE uplink_statement FROM @uplink_alter;
EXECUTE uplink_statement;
DEALLOCATE PREPARE uplink_statement;

SET @uplink_alter = CONCAT(
    'ALTER TABLE write_conflicts',
    ' MODIFY user_id VARCHAR(512) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NOT NULL,',
    ' MODIFY client_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE ', @uplink_no_pad, ' NULL'
);
PREPARE uplink_statement FROM @uplink_alter;
EXECUTE uplink_statement;
DEALLOCATE PREPARE uplink_statement;
