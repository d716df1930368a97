-- The per-user cap on pending dead letters (write.dead_letters.max_per_user)
-- counts a user's pending rows on every rejected transaction.
CREATE INDEX uplink_dead_letters_user_pending ON uplink_dead_letters (user_id) WHERE replayed_at IS NULL;
