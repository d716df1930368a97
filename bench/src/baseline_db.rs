//! The target's database: Postgres or MySQL/MariaDB (by the URL's scheme),
//! for the baselines, resetting the todos between cases and finding the
//! local server's processes.

use sqlx::{MySqlPool, PgPool};
use uuid::Uuid;

use crate::targets::{Pool, Target};
use crate::workload::Workload;
use crate::{baseline_mysql, baseline_pg};

#[derive(Clone)]
pub enum Database {
    Postgres {
        /// Sessions that plan every statement anew (`force_custom_plan`).
        custom: PgPool,
        /// The same database; its sessions may reuse generic plans.
        reusing: PgPool,
    },
    MySql(MySqlPool),
}

impl Database {
    /// Pools of `connections` connections with uplink's session settings;
    /// the one of batches of PUTs (sql-limit's) up to `put_connections`.
    pub async fn connect(
        url: &str,
        connections: usize,
        put_connections: usize,
    ) -> anyhow::Result<Self> {
        let put_connections = put_connections.max(connections);
        if baseline_mysql::is_mysql_url(url) {
            return Ok(Self::MySql(
                baseline_mysql::pool(url, put_connections).await?,
            ));
        }
        Ok(Self::Postgres {
            custom: baseline_pg::pool(url, connections, "force_custom_plan").await?,
            reusing: baseline_pg::pool(url, put_connections, "auto").await?,
        })
    }

    /// `postgres` or `mysql` (MariaDB included), as the report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::MySql(_) => "mysql",
        }
    }

    pub fn is_mysql(&self) -> bool {
        matches!(self, Self::MySql(_))
    }

    /// Closes every connection (a pool of the cost curve's own).
    pub async fn close(&self) {
        match self {
            Self::Postgres { custom, reusing } => {
                custom.close().await;
                reusing.close().await;
            }
            Self::MySql(pool) => pool.close().await,
        }
    }

    /// The server's version string.
    pub async fn version(&self) -> Option<String> {
        match self {
            Self::Postgres { custom, .. } => sqlx::query_scalar("SELECT version()")
                .fetch_one(custom)
                .await
                .ok(),
            Self::MySql(pool) => sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
                .fetch_one(pool)
                .await
                .ok(),
        }
    }

    /// The server's main process, when it runs on this machine: its CPU
    /// time (with its children's) is the database's share of the report.
    pub async fn server_pid(&self) -> Option<u32> {
        match self {
            Self::Postgres { custom, .. } => baseline_pg::find_postmaster(custom).await,
            Self::MySql(pool) => baseline_mysql::find_server(pool).await,
        }
    }

    /// Empties the todos (and the benchmark's client progress) and
    /// refreshes the table's statistics.
    pub async fn reset_todos(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres { custom, .. } => baseline_pg::reset_todos(custom).await,
            Self::MySql(pool) => baseline_mysql::reset_todos(pool).await,
        }
    }

    /// Adds `rows` todos spread over `lists` (the cost curve's large
    /// table), then refreshes the table's statistics.
    pub async fn fill_todos(&self, rows: u64, lists: &[Uuid], owner: &str) -> anyhow::Result<()> {
        match self {
            Self::Postgres { custom, .. } => {
                baseline_pg::fill_todos(custom, rows, lists, owner).await
            }
            Self::MySql(pool) => baseline_mysql::fill_todos(pool, rows, lists, owner).await,
        }
    }

    pub async fn create_lists(&self, ids: &[Uuid], owner: &str) -> anyhow::Result<()> {
        match self {
            Self::Postgres { custom, .. } => baseline_pg::create_lists(custom, ids, owner).await,
            Self::MySql(pool) => baseline_mysql::create_lists(pool, ids, owner).await,
        }
    }

    /// The baselines of a write workload, in the order they run.
    pub fn baselines(&self, workload: Workload) -> Vec<Target> {
        match self {
            // As in uplink: batches of inserts only (put100) may reuse
            // plans, whose shape cannot depend on the data; lookups of
            // existing rows are planned per execution. The demos send
            // unnamed statements, planned every time.
            Self::Postgres { custom, reusing } => {
                let prepared = if workload == Workload::Put100 {
                    reusing
                } else {
                    custom
                };
                vec![
                    Target::Naive(Pool::Postgres(custom.clone())),
                    Target::NaiveTyped(prepared.clone()),
                    Target::SqlLimit(Pool::Postgres(prepared.clone())),
                ]
            }
            // The demo's MySQL statements already bind one parameter per
            // column: naive is the typed per-entry baseline there.
            Self::MySql(pool) => vec![
                Target::Naive(Pool::MySql(pool.clone())),
                Target::SqlLimit(Pool::MySql(pool.clone())),
            ],
        }
    }
}
