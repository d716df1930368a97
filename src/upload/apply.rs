//! Applies a batch in one database transaction.
//!
//! The fast path runs every valid entry as set-based statements with no
//! savepoints. If Postgres or a policy refuses one (a constraint, a bad
//! value, another user's row), the transaction is rolled back and the batch
//! runs again in the careful mode (`careful`).

use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::batch::Batch;
use super::bookkeeping::{dead_letter_rejected, record_conflicts};
use super::careful::run_careful;
use super::failure::{Failure, localized};
use super::plan::{Allowed, group};
use super::prepared::Prepared;
use super::report::{Report, build_report};
use super::run::{Conflicts, RunContext, RunFailure, run_steps};
use super::settings::DeadLetterCap;
use super::sql;
use super::work::{TxOutcome, TxWork, prepare_work, rows_in_lock_order};
use crate::db::Own;
use crate::store::progress;

/// Who is writing.
pub struct Actor<'r> {
    pub user_id: &'r str,
    /// The verified token's claims, for row-level security.
    pub claims: &'r serde_json::Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No savepoints; any refusal aborts the attempt.
    Fast,
    /// A savepoint per client transaction.
    Careful,
}

/// Options of one application of a batch.
pub struct Apply<'r> {
    pub actor: Actor<'r>,
    /// Record rejected client transactions in the dead letters, within
    /// this per-user cap.
    pub dead_letters: Option<DeadLetterCap>,
    /// Track exactly-once progress for the batch's client id.
    pub track_progress: bool,
    /// Run the app's writes as this role, with the PostgREST claim settings.
    pub rls_role: Option<&'r str>,
    /// Where uplink's own tables are.
    pub own: &'r Own,
}

/// Applies `batch` inside the open transaction `tx`; the caller commits.
pub async fn apply_in(
    tx: &mut Transaction<'_, Postgres>,
    allowed: &Allowed<'_>,
    batch: &Batch<'_>,
    options: &Apply<'_>,
    mode: Mode,
    lock_rows: bool,
) -> Result<Report, Failure> {
    let user_id = options.actor.user_id;
    let client_id = batch
        .client_id
        .as_deref()
        .filter(|_| options.track_progress);
    let high_water = match client_id {
        Some(client_id) => Some(progress::lock(tx, options.own, user_id, client_id).await?),
        None => None,
    };
    let (work, new_high_water) = prepare_work(allowed, batch, high_water);
    let ctx = RunContext {
        batch,
        user_id,
        client_id: batch.client_id.as_deref(),
        rls_role: options.rls_role,
    };
    let outcomes = run_work(tx, &ctx, &work, options, mode, lock_rows).await?;
    let report = build_report(batch, &work, &outcomes);
    record_conflicts(tx, options.own, batch, &outcomes, user_id).await?;
    if let Some(cap) = options.dead_letters {
        dead_letter_rejected(tx, options.own, cap, batch, &outcomes, user_id).await?;
    }
    if let (Some(client_id), Some(mark)) = (client_id, new_high_water)
        && Some(mark) != high_water
    {
        progress::advance(tx, options.own, user_id, client_id, mark).await?;
    }
    Ok(report)
}

/// Runs the app's writes of every client transaction (as the RLS role, if
/// any); what became of each.
async fn run_work(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    work: &[TxWork<'_, '_>],
    options: &Apply<'_>,
    mode: Mode,
    lock_rows: bool,
) -> Result<Vec<TxOutcome>, Failure> {
    // A batch of one statement locks its rows in id order already; one of
    // several statements takes its locks up front (see `lock_in_order`).
    let all: Vec<&Prepared> = work
        .iter()
        .filter(|w| w.first_refusal().is_none())
        .flat_map(TxWork::runnable)
        .collect();
    let steps = group(&all, options.rls_role.is_none());
    if lock_rows || steps.len() > 1 {
        lock_in_order(conn, work, mode).await?;
    }
    if let Some(role) = options.rls_role {
        let claims = options.actor.claims.to_string();
        sql::assume_role(conn, role, &claims, options.actor.user_id).await?;
    }
    let outcomes = match mode {
        Mode::Fast => {
            let conflicts = match run_steps(conn, ctx, steps).await {
                Ok(conflicts) => conflicts,
                Err(RunFailure::Db(err)) => return Err(localized(err)),
                // Let the careful mode attribute it.
                Err(RunFailure::Refused(_, rejection) | RunFailure::Unattributed(rejection)) => {
                    return Err(Failure::Permanent(rejection));
                }
            };
            fast_outcomes(work, &conflicts)
        }
        Mode::Careful => run_careful(conn, ctx, work).await?,
    };
    if options.rls_role.is_some() {
        // uplink's own bookkeeping runs as uplink.
        sql::reset_role(conn).await?;
    }
    Ok(outcomes)
}

/// After a fast run: transactions refused up front are rejected, the others
/// applied with their conflicts.
pub(super) fn fast_outcomes(work: &[TxWork<'_, '_>], conflicts: &Conflicts) -> Vec<TxOutcome> {
    work.iter()
        .enumerate()
        .map(|(t, w)| match w.first_refusal() {
            Some((culprit, rejection)) => TxOutcome::Rejected {
                culprit,
                rejection: rejection.clone(),
            },
            None => TxOutcome::Applied {
                conflicts: conflicts
                    .iter()
                    .filter(|(at, _)| at.0 == t)
                    .map(|(at, note)| (at.1, note.clone()))
                    .collect(),
            },
        })
        .collect()
}

/// Locks every existing row the batch will write, table by table in name
/// order and by id within a table. Statements lock their rows in id order,
/// but a batch writes tables and operations in the client's order, so two
/// batches touching the same rows in different orders would deadlock (and
/// wait out Postgres' deadlock_timeout before one is retried). In the
/// careful mode a refused lock (an id the key's type does not take, say) is
/// skipped in its savepoint: the entry's own statement is refused and
/// localised.
async fn lock_in_order(
    conn: &mut PgConnection,
    work: &[TxWork<'_, '_>],
    mode: Mode,
) -> Result<(), Failure> {
    if mode == Mode::Fast {
        return lock_rows_of(conn, work).await.map_err(localized);
    }
    let mut savepoint = conn.begin().await.map_err(Failure::from)?;
    match lock_rows_of(&mut savepoint, work).await.map_err(localized) {
        Ok(()) => savepoint.commit().await.map_err(Failure::from),
        Err(Failure::Permanent(_)) => savepoint.rollback().await.map_err(Failure::from),
        Err(other) => Err(other),
    }
}

async fn lock_rows_of(conn: &mut PgConnection, work: &[TxWork<'_, '_>]) -> Result<(), sqlx::Error> {
    for (table, mut ids) in rows_in_lock_order(work) {
        // An id that does not cast to the key's type would fail this
        // statement; its entry is refused later, by its own statement.
        let Some(castable) = table.id_parses else {
            continue;
        };
        ids.retain(|id| castable(id));
        sql::lock_in_key_order(conn, table, ids).await?;
    }
    Ok(())
}
