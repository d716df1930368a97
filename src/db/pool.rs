//! The connection pool: Postgres or MySQL, as `database.url` says.

use std::str::FromStr;

use anyhow::Context;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, MySqlPool, PgPool, Pool, Transaction};

use super::failure::connection_lost;
use super::own::{Own, schema_name};
use crate::config::sections::{DatabaseKind, DatabaseSettings};

/// The app's database, with where uplink keeps its own tables there: every
/// caller that runs SQL matches on it, and the write path keeps one module
/// of statements per kind.
#[derive(Clone, Debug)]
pub enum Database {
    Postgres(PgPool, Own),
    MySql(MySqlPool, Own),
}

impl Database {
    pub fn kind(&self) -> DatabaseKind {
        match self {
            Self::Postgres(..) => DatabaseKind::Postgres,
            Self::MySql(..) => DatabaseKind::MySql,
        }
    }

    /// uplink's own tables.
    pub fn own(&self) -> &Own {
        match self {
            Self::Postgres(_, own) | Self::MySql(_, own) => own,
        }
    }

    /// Open and idle connections.
    pub fn pool_size(&self) -> (u32, usize) {
        match self {
            Self::Postgres(pool, _) => (pool.size(), pool.num_idle()),
            Self::MySql(pool, _) => (pool.size(), pool.num_idle()),
        }
    }

    /// Closes every connection; acquiring fails from now on.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool, _) => pool.close().await,
            Self::MySql(pool, _) => pool.close().await,
        }
    }

    /// One trivial query: whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool, _) => pool.execute("SELECT 1").await.map(|_| ()),
            Self::MySql(pool, _) => pool.execute("SELECT 1").await.map(|_| ()),
        }
    }
}

/// Builds a lazy pool: the process starts (and `/health/ready` answers 503)
/// even while the database is down.
pub fn connect(settings: &DatabaseSettings, url: &str) -> anyhow::Result<Database> {
    let configured = settings.uplink_schema.as_deref();
    match DatabaseKind::of_url(url) {
        Some(DatabaseKind::MySql) => {
            let pool = mysql_pool(settings, url)?;
            let app_database = pool.connect_options().get_database().map(str::to_owned);
            let name = schema_name(configured, DatabaseKind::MySql, app_database.as_deref());
            anyhow::ensure!(
                app_database.as_deref() != Some(name.as_str()),
                "database.uplink_schema must differ from the app's database `{name}`: \
                 uplink's tables are kept apart from the app's"
            );
            Ok(Database::MySql(pool, Own::new(DatabaseKind::MySql, &name)))
        }
        _ => {
            let name = schema_name(configured, DatabaseKind::Postgres, None);
            Ok(Database::Postgres(
                pool(settings, url)?,
                Own::new(DatabaseKind::Postgres, &name),
            ))
        }
    }
}

/// A lazy Postgres pool.
pub fn pool(settings: &DatabaseSettings, url: &str) -> anyhow::Result<PgPool> {
    let options = connect_options(settings, url)?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_unless_for_begin(conn, meta)))
        .connect_lazy_with(options))
}

pub fn connect_options(settings: &DatabaseSettings, url: &str) -> anyhow::Result<PgConnectOptions> {
    let statement_timeout = settings.statement_timeout.as_millis().to_string();
    Ok(PgConnectOptions::from_str(url)
        .context("Failed to parse database.url")?
        .application_name("uplink")
        // Timestamps without an offset are UTC, whatever the server's zone.
        .options([
            ("TimeZone", "UTC"),
            // Set-based statements must not fall back to a generic plan made
            // while a table was empty: its plan would scan the grown table for
            // every row. A batch
            // of inserts only lifts this for its transaction (`Writer::attempt`).
            ("plan_cache_mode", "force_custom_plan"),
            ("statement_timeout", statement_timeout.as_str()),
        ]))
}

/// A lazy MySQL pool whose sessions refuse what MySQL would otherwise store
/// silently altered (strict mode), read committed rows (as Postgres does,
/// so a lock waits for a row rather than a gap), and keep times in UTC.
fn mysql_pool(settings: &DatabaseSettings, url: &str) -> anyhow::Result<MySqlPool> {
    // sqlx knows the scheme `mysql` only; MariaDB speaks the same protocol.
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
    };
    let options = MySqlConnectOptions::from_str(&url)
        .context("Failed to parse database.url")?
        .timezone(Some("+00:00".to_owned()))
        .charset("utf8mb4");
    let lock_wait = settings.statement_timeout.as_secs().max(1);
    Ok(MySqlPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_unless_for_begin(conn, meta)))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(
                    format!(
                        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,\
                         ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', \
                         SESSION innodb_lock_wait_timeout = {lock_wait}"
                    )
                    .as_str(),
                )
                .await?;
                // The one spelling MySQL 8 and MariaDB 10 share.
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map(|_| ())
            })
        })
        .connect_lazy_with(options))
}

tokio::task_local! {
    /// Set while `begin` takes a connection: its `BEGIN` is the test.
    static TESTED_BY_BEGIN: ();
}

/// Whether a pooled connection may be handed out (an error closes it and
/// the pool takes another). It is pinged first, a round trip, unless it is
/// for `begin`, whose `BEGIN` finds a dead connection as well.
async fn ping_unless_for_begin<C: Connection>(
    conn: &mut C,
    _: PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if TESTED_BY_BEGIN.try_with(|_| ()).is_err() {
        conn.ping().await?;
    }
    Ok(true)
}

/// Starts a transaction on a pooled connection, with `statement` instead
/// of `BEGIN` if given: the write path's one round trip fewer per request.
/// The connection is not pinged first (`ping_unless_for_begin`), so one the
/// database dropped while it sat in the pool (a restart, a failover, a
/// terminated backend) fails here instead: it is discarded and the next one
/// tried. Nothing ran on it, so trying again changes nothing; every
/// connection of the pool can be dead at once.
pub async fn begin<DB: sqlx::Database>(
    pool: &Pool<DB>,
    statement: Option<&'static str>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    let mut spare = pool.options().get_max_connections();
    loop {
        let started = match statement {
            Some(statement) => TESTED_BY_BEGIN.scope((), pool.begin_with(statement)).await,
            None => TESTED_BY_BEGIN.scope((), pool.begin()).await,
        };
        match started {
            Err(err) if spare > 0 && connection_lost(&err) => {
                tracing::debug!(error = %err, "a pooled connection was dropped; taking another");
                spare -= 1;
            }
            other => return other,
        }
    }
}

/// How long start-up waits for a first connection before serving without one.
const REACHABLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a connection can be had now (within a short timeout).
pub async fn reachable(db: &Database) -> bool {
    matches!(
        tokio::time::timeout(REACHABLE_TIMEOUT, db.ping()).await,
        Ok(Ok(()))
    )
}
