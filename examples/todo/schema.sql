-- The PowerSync demo app's tables (lists and todos), as the app owns them.
-- uplink never creates or alters these; `scripts/run` loads this file once.

CREATE TABLE IF NOT EXISTS lists (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    name        text NOT NULL,
    owner_id    text NOT NULL
);

CREATE TABLE IF NOT EXISTS todos (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    description   text NOT NULL,
    completed     boolean NOT NULL DEFAULT false,
    created_by    text,
    completed_by  text,
    list_id       uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    -- The id of an attachment (uplink's attachment routes), as in the
    -- PowerSync demos' todos table.
    photo_id      text
);

CREATE INDEX IF NOT EXISTS todos_list_id ON todos (list_id);

-- A todo lives in a list of its own owner: nobody adds a todo to another
-- user's list or moves one there (uplink's owner columns, in uplink.yaml,
-- stop changes to other users' rows; this stops writes into their lists).
-- uplink reports the refusal per entry (`check_violation`) and dead-letters
-- it.
CREATE OR REPLACE FUNCTION todos_in_owners_list() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lists WHERE id = NEW.list_id AND owner_id = NEW.created_by) THEN
        RAISE EXCEPTION 'a todo must be in a list its owner owns'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'todos_in_owners_list';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS todos_in_owners_list ON todos;
CREATE TRIGGER todos_in_owners_list BEFORE INSERT OR UPDATE OF list_id, created_by ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_in_owners_list();

-- The PowerSync Service replicates through logical replication from the
-- publication named `powersync`. FOR ALL TABLES also covers tables created
-- later and in other schemas, such as uplink's `uplink.write_conflicts` (its
-- migrations run after this file), which the sync config sends back to each
-- user. The sync config, not
-- the publication, decides what reaches devices. With a role that may not
-- create an all-tables publication, list the tables instead:
--   CREATE PUBLICATION powersync FOR TABLE lists, todos, uplink.write_conflicts;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'powersync') THEN
        CREATE PUBLICATION powersync FOR ALL TABLES;
    END IF;
END
$$;
