-- The per-user byte cap on pending dead letters
-- (write.dead_letters.max_bytes_per_user) sums this column. A letter's size
-- is its entries as stored plus its message.
ALTER TABLE uplink_dead_letters ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE uplink_dead_letters SET size_bytes = LENGTH(entries) + LENGTH(message);
