-- Attachment ids are scoped per owner: the key is (owner_id, id), so one
-- user's id never names another user's file. With global ids the first
-- requester owned an id, and a user who saw another's `photo_id` (a list
-- member) could claim it before its owner uploaded, and have others download
-- their file as that row's photo. Downloads look an id up across owners and
-- pick by owner and read policy (`attachments.read_sql` gets the owner as $3).
ALTER TABLE attachments DROP CONSTRAINT attachments_pkey;
ALTER TABLE attachments ADD PRIMARY KEY (owner_id, id);
-- The primary key serves lookups by owner; downloads look up by id.
DROP INDEX attachments_owner_id;
CREATE INDEX attachments_id ON attachments (id);
