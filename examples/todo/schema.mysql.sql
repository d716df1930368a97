-- The PowerSync demo app's tables (lists and todos) for MySQL 8 and MariaDB
-- 10.11, as the app owns them: schema.sql for a `mysql://` database.
-- uplink never creates or alters these. Load it with the mysql or mariadb
-- client (the triggers need its DELIMITER command); loading it again changes
-- nothing:
--   mariadb -h HOST -u USER -p DATABASE < schema.mysql.sql
-- With the binary log on (as the PowerSync Service needs), creating triggers
-- takes the SUPER privilege or log_bin_trust_function_creators=ON: load it
-- as an administrator, not as uplink's user.
--
-- Ids are CHAR(36) uuids in utf8mb4_bin, so they compare as the client sends
-- them; timestamps are DATETIME(6) in UTC (uplink's sessions run in UTC).
-- MySQL has no CREATE INDEX IF NOT EXISTS, so the index is part of the table.

CREATE TABLE IF NOT EXISTS lists (
    id          CHAR(36) NOT NULL DEFAULT (UUID()) PRIMARY KEY,
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    name        LONGTEXT NOT NULL,
    owner_id    LONGTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS todos (
    id            CHAR(36) NOT NULL DEFAULT (UUID()) PRIMARY KEY,
    created_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    completed_at  DATETIME(6),
    description   LONGTEXT NOT NULL,
    completed     BOOLEAN NOT NULL DEFAULT FALSE,
    created_by    LONGTEXT,
    completed_by  LONGTEXT,
    list_id       CHAR(36) NOT NULL,
    -- The id of an attachment (uplink's attachment routes), as in the
    -- PowerSync demos' todos table.
    photo_id      LONGTEXT,
    KEY todos_list_id (list_id),
    CONSTRAINT todos_list_id_fkey FOREIGN KEY (list_id) REFERENCES lists (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A todo lives in a list of its own owner: nobody adds a todo to another
-- user's list or moves one there (uplink's owner columns, in uplink.yaml,
-- stop changes to other users' rows; these triggers stop writes into their
-- lists). One trigger per event (MySQL has no INSERT OR UPDATE trigger);
-- each SIGNALs error 3819, MySQL's own "check constraint violated", in its
-- message form, so the refusal names the rule as a constraint.
-- uplink reports error 3819 per entry as `check_violation` on MySQL and on
-- MariaDB alike (MariaDB's own CHECK failures are 4025, reported the same),
-- and dead-letters it. A SIGNAL without MYSQL_ERRNO (error 1644) would be
-- reported as `rejected_by_database` instead.
DROP TRIGGER IF EXISTS todos_in_owners_list_insert;
DROP TRIGGER IF EXISTS todos_in_owners_list_update;

DELIMITER //
CREATE TRIGGER todos_in_owners_list_insert BEFORE INSERT ON todos FOR EACH ROW
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lists WHERE id = NEW.list_id AND owner_id = NEW.created_by) THEN
        SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 3819,
            MESSAGE_TEXT = 'Check constraint ''todos_in_owners_list'' is violated: a todo must be in a list its owner owns';
    END IF;
END//

-- Only when the todo moves or changes hands, as Postgres' UPDATE OF list_id, created_by.
CREATE TRIGGER todos_in_owners_list_update BEFORE UPDATE ON todos FOR EACH ROW
BEGIN
    IF NOT (NEW.list_id <=> OLD.list_id AND NEW.created_by <=> OLD.created_by)
       AND NOT EXISTS (SELECT 1 FROM lists WHERE id = NEW.list_id AND owner_id = NEW.created_by) THEN
        SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 3819,
            MESSAGE_TEXT = 'Check constraint ''todos_in_owners_list'' is violated: a todo must be in a list its owner owns';
    END IF;
END//
DELIMITER ;

-- The PowerSync Service replicates MySQL from its binary log (GTID mode,
-- row format), not from a publication: there is nothing to create here. Its
-- user needs SELECT on these tables and REPLICATION SLAVE, REPLICATION
-- CLIENT (see docs/deployment.md, "MySQL / MariaDB").
