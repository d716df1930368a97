-- User and client ids in uplink's bookkeeping compare byte for byte with no
-- padding, as in Postgres. The first migration's utf8mb4_bin is a PAD SPACE
-- collation: `x ` equalled `x`, so two users (or clients) shared a progress
-- row and a dead-letter cap. VARBINARY compares bytes without padding on
-- MySQL and MariaDB alike, and compared with the app's text columns it
-- compares bytes too (a NO PAD text collation would make such comparisons
-- an "illegal mix of collations"). Existing rows keep their bytes; no two of
-- them can clash, as PAD SPACE made them unique already. 2048 and 1024 bytes
-- hold the 512 and 256 characters the text columns held.
--
-- `checkpoints` and `write_conflicts` stay text: the PowerSync Service reads
-- them by user id, and binary values cannot be bucket parameters.

ALTER TABLE uplink_client_progress
    MODIFY user_id VARBINARY(2048) NOT NULL,
    MODIFY client_id VARBINARY(1024) NOT NULL;

ALTER TABLE uplink_dead_letters
    MODIFY user_id VARBINARY(2048) NOT NULL,
    MODIFY client_id VARBINARY(1024) NULL;

ALTER TABLE uplink_dead_letter_users
    MODIFY user_id VARBINARY(2048) NOT NULL;
