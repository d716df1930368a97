//! uplink's own tables, created and upgraded at start-up.

use anyhow::Context;
use sqlx::PgPool;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn run(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("Failed to run uplink's migrations")
}
