//! The connection pool.

use std::str::FromStr;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseSettings;

/// Builds a lazy pool: the process starts (and `/health/ready` answers 503)
/// even while Postgres is down.
pub fn pool(settings: &DatabaseSettings, url: &str) -> anyhow::Result<PgPool> {
    let options = connect_options(settings, url)?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
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

/// How long start-up waits for a first connection before serving without one.
const REACHABLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a connection can be had now (within a short timeout).
pub async fn reachable(pool: &PgPool) -> bool {
    matches!(
        tokio::time::timeout(REACHABLE_TIMEOUT, pool.acquire()).await,
        Ok(Ok(_))
    )
}
