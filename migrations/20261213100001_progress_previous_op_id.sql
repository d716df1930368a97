-- The write path advances a client's progress with one upsert at the start
-- of the batch's transaction and reads the value it replaced from here:
-- the locked row's own `last_op_id` before the update, which a RETURNING
-- subquery would not see (it reads the statement's snapshot).
ALTER TABLE client_progress ADD COLUMN previous_op_id bigint NOT NULL DEFAULT 0;
