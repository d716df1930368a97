//! Applies a batch in one database transaction, on any backend.
//!
//! The fast path runs every valid entry as set-based statements with no
//! savepoints. If the database or a policy refuses one (a constraint, a bad
//! value, another user's row), the transaction is rolled back and the batch
//! runs again in the careful mode (`careful`).

use super::backend::Backend;
use super::batch::Batch;
use super::bookkeeping::{recorded, store_rejected};
use super::careful::run_careful;
use super::failure::Failure;
use super::plan::Allowed;
use super::prepared::Prepared;
use super::report::{Report, build_report};
use super::run::{Conflicts, RunContext, run_steps, steps};
use super::settings::DeadLetterCap;
use super::work::{TxOutcome, TxWork, prepare_work, rows_in_lock_order};
use crate::db::Own;

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

/// Applies `batch` inside the transaction open on `conn`; the caller
/// commits. Progress, prepared work, the fast run or the careful one, then
/// recorded conflicts and dead letters.
pub async fn apply_in<C: Backend>(
    conn: &mut C,
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
    // The progress is advanced first, past every op id of the batch: the
    // transaction commits with each entry applied, a duplicate or rejected
    // (and dead-lettered), or rolls back with the progress.
    let high_water = match client_id {
        Some(client_id) => Some(
            conn.advance_progress(options.own, user_id, client_id, last_op_id(batch))
                .await?,
        ),
        None => None,
    };
    let mut work = prepare_work(allowed, batch, high_water);
    screen::<C>(&mut work);
    let ctx = RunContext {
        batch,
        user_id,
        client_id: batch.client_id.as_deref(),
        rls_role: options.rls_role,
    };
    let outcomes = run_work(conn, &ctx, &work, options, mode, lock_rows).await?;
    let report = build_report(batch, &work, &outcomes);
    let conflicts = recorded(batch, &outcomes);
    if !conflicts.is_empty() {
        conn.record_conflicts(options.own, &conflicts, user_id, batch.client_id.as_deref())
            .await?;
    }
    if let Some(cap) = options.dead_letters {
        store_rejected(conn, options.own, cap, batch, &outcomes, user_id).await?;
    }
    Ok(report)
}

/// The highest op id of the batch (0 without any).
fn last_op_id(batch: &Batch<'_>) -> i64 {
    batch
        .transactions
        .iter()
        .flat_map(|t| &t.entries)
        .filter_map(|e| e.op_id)
        .max()
        .unwrap_or(0)
}

/// Refuses what the backend says its database would misread.
fn screen<C: Backend>(work: &mut [TxWork<'_, '_>]) {
    for slot in work.iter_mut().flat_map(|w| &mut w.entries) {
        if let Some(Ok(prepared)) = slot
            && let Some(rejection) = C::screen(prepared)
        {
            *slot = Some(Err(rejection));
        }
    }
}

/// Runs the app's writes of every client transaction (as the RLS role, if
/// any); what became of each.
async fn run_work<C: Backend>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    work: &[TxWork<'_, '_>],
    options: &Apply<'_>,
    mode: Mode,
    lock_rows: bool,
) -> Result<Vec<TxOutcome>, Failure> {
    // A batch of one step locks its rows as it writes them; one of several
    // steps takes its locks up front (see `lock_in_order`). On MySQL one
    // step of several operations is a statement per operation: two such
    // batches crossing on the same rows can deadlock, which InnoDB detects
    // at once and uplink retries: cheaper than a locking read in every
    // mixed batch.
    let all: Vec<&Prepared> = work
        .iter()
        .filter(|w| w.first_refusal().is_none())
        .flat_map(TxWork::runnable)
        .collect();
    let steps = steps::<C>(ctx, &all);
    if lock_rows || steps.len() > 1 {
        lock_in_order(conn, work, mode).await?;
    }
    if let Some(role) = options.rls_role {
        let claims = options.actor.claims.to_string();
        conn.assume_role(role, &claims, options.actor.user_id)
            .await?;
    }
    let outcomes = match mode {
        // A refusal here goes to the careful mode, which attributes it.
        Mode::Fast => fast_outcomes(work, &run_steps(conn, ctx, steps).await?),
        Mode::Careful => run_careful(conn, ctx, work).await?,
    };
    if options.rls_role.is_some() {
        // uplink's own bookkeeping runs as uplink.
        conn.reset_role().await?;
    }
    Ok(outcomes)
}

/// After a fast run: transactions refused up front are rejected, the others
/// applied with their conflicts.
fn fast_outcomes(work: &[TxWork<'_, '_>], conflicts: &Conflicts) -> Vec<TxOutcome> {
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
/// wait out the database's deadlock detection before one is retried). In
/// the careful mode a refused lock (an id the key's type does not take,
/// say) is skipped in its savepoint: the entry's own statement is refused
/// and localised.
async fn lock_in_order(
    conn: &mut impl Backend,
    work: &[TxWork<'_, '_>],
    mode: Mode,
) -> Result<(), Failure> {
    if mode == Mode::Fast {
        return lock_rows_of(conn, work).await;
    }
    conn.savepoint().await?;
    match lock_rows_of(conn, work).await {
        Ok(()) => conn.release_savepoint().await,
        Err(Failure::Refused { .. }) => conn.rollback_savepoint().await,
        Err(other) => Err(other),
    }
}

async fn lock_rows_of(conn: &mut impl Backend, work: &[TxWork<'_, '_>]) -> Result<(), Failure> {
    for (table, mut ids) in rows_in_lock_order(work) {
        // An id that does not parse as the key's type would fail this
        // statement; its entry is refused later, by its own statement.
        let Some(parses) = table.id_parses else {
            continue;
        };
        ids.retain(|id| parses(id));
        if !ids.is_empty() {
            conn.lock_in_key_order(table, &ids).await?;
        }
    }
    Ok(())
}
