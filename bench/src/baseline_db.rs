//! Connections to the target's database, for the baselines and for
//! finding the local Postgres server's processes.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::procfs;

/// A plain pool for the baselines: as many connections as the load has,
/// with uplink's session settings (UTC, and the plan mode it uses for the
/// statements at hand).
pub async fn baseline_pool(
    url: &str,
    connections: usize,
    plan_cache_mode: &str,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("Failed to parse --database-url")?
        .application_name("uplink-bench")
        .options([("TimeZone", "UTC"), ("plan_cache_mode", plan_cache_mode)]);
    PgPoolOptions::new()
        .max_connections(connections as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .context("Failed to connect to --database-url")
}

/// The local postmaster behind the database, if the database is local.
pub async fn find_postmaster(db: &PgPool) -> Option<u32> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(db)
        .await
        .ok()?;
    let is_postgres = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("postgres"))
    };
    let backend = u32::try_from(backend).ok()?;
    if !is_postgres(backend) {
        return None;
    }
    procfs::parent_pid(backend).filter(|p| is_postgres(*p))
}
