//! uplink's own tables, created and upgraded at start-up in their own
//! namespace (`db::own`): one set of migrations per kind of database
//! (`migrations/`, `migrations/mysql/`), run on a connection of its own whose
//! default schema (Postgres `search_path`, MySQL `USE`) is uplink's, so the
//! migrations name their tables unqualified and never touch the app's.

use anyhow::Context;
use sqlx::{Connection, Executor, MySqlConnection, MySqlPool, PgConnection, PgPool};

use super::own::Own;
use super::pool::Database;

/// The Postgres migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The MySQL migrations: the same tables in MySQL's types.
pub static MYSQL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// The first migration of both sets: a `_sqlx_migrations` table that holds
/// it is uplink's.
const FIRST_VERSION: i64 = 20260101000001;

/// Where releases before the own namespace created uplink's tables (the
/// app's schema or database), moved from there once.
const LEGACY_POSTGRES: &[&str] = &[
    "_sqlx_migrations",
    "uplink_client_progress",
    "uplink_dead_letters",
    "write_conflicts",
    "checkpoints",
    "attachments",
];
const LEGACY_MYSQL: &[&str] = &[
    "_sqlx_migrations",
    "uplink_client_progress",
    "uplink_dead_letters",
    "uplink_dead_letter_users",
    "write_conflicts",
    "checkpoints",
];

pub async fn run(db: &Database) -> anyhow::Result<()> {
    match db {
        Database::Postgres(pool, own) => postgres(pool, own).await,
        Database::MySql(pool, own) => mysql(pool, own).await,
    }
    .context("Failed to run uplink's migrations")
}

async fn postgres(pool: &PgPool, own: &Own) -> anyhow::Result<()> {
    // Detached: the search_path set below must not go back to the pool.
    let mut conn = pool.acquire().await?.detach();
    // Replicas starting together: one creates and moves, the others wait.
    conn.execute("SELECT pg_advisory_lock(hashtext('uplink: migrations'))")
        .await?;
    let schema = own.name();
    conn.execute(format!(r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#).as_str())
        .await?;
    move_legacy_postgres(&mut conn, schema).await?;
    conn.execute(format!(r#"SET search_path TO "{schema}""#).as_str())
        .await?;
    MIGRATOR.run_direct(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Moves the tables an earlier release made in the app's schema (the first
/// of the default `search_path`) into uplink's, when that schema has no
/// migrations yet and the app's `_sqlx_migrations` is uplink's.
async fn move_legacy_postgres(conn: &mut PgConnection, schema: &str) -> anyhow::Result<()> {
    // None when no schema of the search_path exists: nothing to move.
    let Some(legacy) = sqlx::query_scalar::<_, Option<String>>("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?
    else {
        return Ok(());
    };
    if legacy == schema || table_exists_pg(conn, schema, "_sqlx_migrations").await? {
        return Ok(());
    }
    // Uplink's own name is a plain identifier (`own::valid_name`); the
    // app's schema may be any name.
    let quoted = format!("\"{}\"", legacy.replace('"', "\"\""));
    if !table_exists_pg(conn, &legacy, "_sqlx_migrations").await? {
        return Ok(());
    }
    let ours: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {quoted}._sqlx_migrations WHERE version = $1)"
    ))
    .bind(FIRST_VERSION)
    .fetch_one(&mut *conn)
    .await?;
    if !ours {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    for table in LEGACY_POSTGRES {
        if table_exists_pg(&mut tx, &legacy, table).await? {
            tx.execute(format!(r#"ALTER TABLE {quoted}."{table}" SET SCHEMA "{schema}""#).as_str())
                .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(from = %legacy, to = %schema, "moved uplink's tables into their own schema");
    Ok(())
}

async fn table_exists_pg(conn: &mut PgConnection, schema: &str, table: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(conn)
    .await
}

async fn mysql(pool: &MySqlPool, own: &Own) -> anyhow::Result<()> {
    // Detached: the `USE` below must not go back to the pool.
    let mut conn = pool.acquire().await?.detach();
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('uplink: migrations', 60)")
        .fetch_one(&mut conn)
        .await?;
    anyhow::ensure!(
        locked == Some(1),
        "another uplink held the migration lock for a minute"
    );
    let schema = own.name();
    conn.execute(
        format!(
            "CREATE DATABASE IF NOT EXISTS `{schema}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
        .as_str(),
    )
    .await?;
    move_legacy_mysql(&mut conn, schema).await?;
    conn.execute(format!("USE `{schema}`").as_str()).await?;
    MYSQL_MIGRATOR.run_direct(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// As on Postgres: tables an earlier release made in the app's database.
async fn move_legacy_mysql(conn: &mut MySqlConnection, schema: &str) -> anyhow::Result<()> {
    let Some(legacy) = sqlx::query_scalar::<_, Option<String>>("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?
    else {
        return Ok(());
    };
    if table_exists_mysql(conn, schema, "_sqlx_migrations").await?
        || !table_exists_mysql(conn, &legacy, "_sqlx_migrations").await?
    {
        return Ok(());
    }
    let quoted = format!("`{}`", legacy.replace('`', "``"));
    let ours: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {quoted}._sqlx_migrations WHERE version = ?)"
    ))
    .bind(FIRST_VERSION)
    .fetch_one(&mut *conn)
    .await?;
    if !ours {
        return Ok(());
    }
    let mut moves = Vec::new();
    for table in LEGACY_MYSQL {
        if table_exists_mysql(conn, &legacy, table).await? {
            moves.push(format!("{quoted}.`{table}` TO `{schema}`.`{table}`"));
        }
    }
    // One statement: MySQL renames the tables atomically.
    conn.execute(format!("RENAME TABLE {}", moves.join(", ")).as_str())
        .await?;
    tracing::info!(from = %legacy, to = %schema, "moved uplink's tables into their own database");
    Ok(())
}

async fn table_exists_mysql(
    conn: &mut MySqlConnection,
    schema: &str,
    table: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = ? AND table_name = ?)",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(conn)
    .await
}
