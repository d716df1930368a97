#!/usr/bin/env bash
# Initialises the compose stack's MySQL (`docker compose --profile mysql up`)
# once, when its data volume is first created: the official image runs the
# scripts in /docker-entrypoint-initdb.d/ against its temporary server.
#
#   - the app database TODO_DATABASE, with the todo example's tables
#     (examples/todo/schema.mysql.sql, mounted at TODO_SCHEMA_FILE);
#   - uplink's user UPLINK_DB_USER: reads and writes the app's tables, and
#     creates its own with its migrations in the database TODO_DATABASE_uplink
#     (CREATE, ALTER, INDEX, REFERENCES, DROP there): client progress, dead
#     letters, write conflicts, attachment records;
#   - the PowerSync Service's user POWERSYNC_DB_USER: SELECT on both databases
#     (the sync config sends write conflicts back) and REPLICATION SLAVE,
#     REPLICATION CLIENT to read the binary log.
#
# The file is executable on purpose: the image sources a non-executable .sh
# into its own shell, where `set -u` would break its later steps.
set -euo pipefail

: "${TODO_DATABASE:?}" "${UPLINK_DB_USER:?}" "${UPLINK_DB_PASSWORD:?}"
: "${POWERSYNC_DB_USER:?}" "${POWERSYNC_DB_PASSWORD:?}"
schema=${TODO_SCHEMA_FILE:-/schema/schema.mysql.sql}

# As root over the server's socket; the password goes through a file
# descriptor, not the command line.
sql() {
  mysql --defaults-extra-file=<(printf '[client]\nuser=root\npassword="%s"\n' "${MYSQL_ROOT_PASSWORD:-}") \
    --protocol=socket "$@"
}

# A quoted SQL string literal.
q() { printf "'%s'" "${1//\'/\'\'}"; }

case $TODO_DATABASE in
  '' | *[!A-Za-z0-9_]*) echo "deploy/mysql/init.sh: TODO_DATABASE must be letters, digits and _" >&2; exit 1 ;;
esac
db='`'$TODO_DATABASE'`'
own='`'${TODO_DATABASE}_uplink'`'
echo "deploy/mysql/init.sh: creating database $TODO_DATABASE and its users"
sql <<SQL
CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS $(q "$UPLINK_DB_USER")@'%' IDENTIFIED BY $(q "$UPLINK_DB_PASSWORD");
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, REFERENCES ON $db.* TO $(q "$UPLINK_DB_USER")@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, REFERENCES, DROP ON $own.* TO $(q "$UPLINK_DB_USER")@'%';
CREATE USER IF NOT EXISTS $(q "$POWERSYNC_DB_USER")@'%' IDENTIFIED BY $(q "$POWERSYNC_DB_PASSWORD");
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO $(q "$POWERSYNC_DB_USER")@'%';
GRANT SELECT ON $db.* TO $(q "$POWERSYNC_DB_USER")@'%';
GRANT SELECT ON $own.* TO $(q "$POWERSYNC_DB_USER")@'%';
SQL

# As root: creating triggers with the binary log on takes SUPER.
echo "deploy/mysql/init.sh: loading $schema into $TODO_DATABASE"
sql --database="$TODO_DATABASE" <"$schema"
