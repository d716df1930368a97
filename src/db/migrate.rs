//! uplink's own tables, created and upgraded at start-up: one set of
//! migrations per kind of database (`migrations/`, `migrations/mysql/`).

use anyhow::Context;

use super::pool::Database;

/// The Postgres migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The MySQL migrations: the same tables in MySQL's types, without the
/// attachment records (attachments are Postgres-only).
pub static MYSQL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

pub async fn run(db: &Database) -> anyhow::Result<()> {
    match db {
        Database::Postgres(pool) => MIGRATOR.run(pool).await,
        Database::MySql(pool) => MYSQL_MIGRATOR.run(pool).await,
    }
    .context("Failed to run uplink's migrations")
}
