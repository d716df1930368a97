//! The one place in the write path that picks the backend for the
//! configured `Database`.

use std::time::Instant;

use super::Done;
use crate::db::pool::{Database, begin};
use crate::upload::apply::{Apply, Mode, apply_in};
use crate::upload::batch::Batch;
use crate::upload::failure::{Failure, unavailable};
use crate::upload::plan::Allowed;
use crate::upload::replay::{ReplayOutcome, replay_in};
use crate::upload::report::Report;
use crate::upload::schema::Catalog;
use crate::upload::{mysql, postgres};

/// One attempt at a batch in its own transaction, on the database's
/// backend; the report (with the time it waited for its connection) and
/// how the commit went (the caller tells a lost connection at COMMIT from a
/// failure).
pub async fn attempt(
    db: &Database,
    allowed: &Allowed<'_>,
    batch: &Batch<'_>,
    options: &Apply<'_>,
    mode: Mode,
    lock_rows: bool,
    deferrable: bool,
) -> Result<(Report, Done), Failure> {
    let asked = Instant::now();
    let (mut report, commit, waited) = match db {
        Database::Postgres(pool, _) => {
            let mut tx = postgres::begin(pool, deferrable).await?;
            let waited = asked.elapsed();
            let report = apply_in(&mut *tx, allowed, batch, options, mode, lock_rows).await?;
            (report, tx.commit().await, waited)
        }
        Database::MySql(pool, _) => {
            let mut tx = begin(pool, None).await.map_err(unavailable)?;
            let waited = asked.elapsed();
            let report = apply_in(&mut *tx, allowed, batch, options, mode, lock_rows).await?;
            (report, tx.commit().await, waited)
        }
    };
    report.connection_wait = waited;
    Ok((report, commit.map_err(Failure::from)))
}

/// The app's tables: in `schema` on Postgres, in the URL's database on
/// MySQL (uplink's own are in a schema or database of their own).
pub async fn load_catalog(db: &Database, schema: &str) -> anyhow::Result<Catalog> {
    match db {
        Database::Postgres(pool, _) => postgres::catalog::load(pool, schema).await,
        Database::MySql(pool, _) => mysql::catalog::load(pool).await,
    }
}

/// Replays dead letter `id` in a transaction of its own (`replay::replay_in`).
pub async fn replay(
    db: &Database,
    allowed: &Allowed<'_>,
    rls_role: Option<&str>,
    id: i64,
) -> Result<ReplayOutcome, Failure> {
    match db {
        Database::Postgres(pool, own) => {
            let mut tx = postgres::begin(pool, false).await?;
            let outcome = replay_in(&mut *tx, own, allowed, rls_role, id).await?;
            tx.commit().await.map_err(Failure::from)?;
            Ok(outcome)
        }
        Database::MySql(pool, own) => {
            let mut tx = begin(pool, None).await.map_err(unavailable)?;
            let outcome = replay_in(&mut *tx, own, allowed, rls_role, id).await?;
            tx.commit().await.map_err(Failure::from)?;
            Ok(outcome)
        }
    }
}
