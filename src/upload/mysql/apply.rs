//! Applies a batch in one MySQL transaction, as `upload::apply` does on
//! Postgres: progress, prepared work, the fast run or the careful one,
//! then conflicts, dead letters and the new progress.

use sqlx::MySqlConnection;

use super::run::run;
use super::statements;
use crate::error::ErrorCode;
use crate::store::mysql::{conflicts, dead_letters, progress};
use crate::upload::apply::{Apply, Mode, fast_outcomes};
use crate::upload::batch::{Batch, truncate_for_message};
use crate::upload::bookkeeping::{recorded, rejected};
use crate::upload::careful::run_careful;
use crate::upload::dead_letter::{entries_text, new_letter, room_for};
use crate::upload::failure::{Failure, localized};
use crate::upload::plan::Allowed;
use crate::upload::prepared::Prepared;
use crate::upload::rejection::Rejection;
use crate::upload::report::{Report, build_report};
use crate::upload::run::{RunContext, RunFailure};
use crate::upload::sql::json_string;
use crate::upload::work::{TxOutcome, TxWork, prepare_work, rows_in_lock_order};

/// Applies `batch` inside the open transaction on `conn`; the caller commits.
pub async fn apply_in(
    conn: &mut MySqlConnection,
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
        Some(client_id) => Some(progress::lock(conn, options.own, user_id, client_id).await?),
        None => None,
    };
    let (mut work, new_high_water) = prepare_work(allowed, batch, high_water);
    refuse_unusable_ids(&mut work);
    let ctx = RunContext {
        batch,
        user_id,
        client_id: batch.client_id.as_deref(),
        rls_role: None,
    };
    if lock_rows {
        lock_in_order(conn, &work, mode).await?;
    }
    let outcomes = match mode {
        Mode::Fast => {
            let all: Vec<&Prepared> = work
                .iter()
                .filter(|w| w.first_refusal().is_none())
                .flat_map(TxWork::runnable)
                .collect();
            match run(conn, &ctx, &all).await {
                Ok(conflicts) => fast_outcomes(&work, &conflicts),
                Err(RunFailure::Db(err)) => return Err(localized(err)),
                // Let the careful mode attribute it.
                Err(RunFailure::Refused(_, rejection) | RunFailure::Unattributed(rejection)) => {
                    return Err(Failure::Permanent(rejection));
                }
            }
        }
        Mode::Careful => run_careful(conn, &ctx, &work).await?,
    };
    let report = build_report(batch, &work, &outcomes);
    bookkeeping(conn, batch, &outcomes, options).await?;
    if let (Some(client_id), Some(mark)) = (client_id, new_high_water)
        && Some(mark) != high_water
    {
        progress::advance(conn, options.own, user_id, client_id, mark).await?;
    }
    Ok(report)
}

/// Refuses ids the key column cannot hold before any statement runs:
/// MySQL would compare `abc` with an integer key as 0 rather than fail.
fn refuse_unusable_ids(work: &mut [TxWork<'_, '_>]) {
    for slot in work.iter_mut().flat_map(|w| &mut w.entries) {
        let Some(Ok(prepared)) = slot else { continue };
        let table = prepared.table;
        if table
            .id_parses
            .is_some_and(|usable| !usable(&prepared.row.id))
        {
            let rejection = Rejection::new(
                ErrorCode::InvalidValue,
                format!(
                    "the row id {} does not fit the key of `{}` ({})",
                    json_string(&truncate_for_message(&prepared.row.id)),
                    table.name,
                    table.id_type
                ),
            )
            .with_column("id");
            *slot = Some(Err(rejection));
        }
    }
}

/// Recorded conflicts and dead letters, in the batch's transaction.
async fn bookkeeping(
    conn: &mut MySqlConnection,
    batch: &Batch<'_>,
    outcomes: &[TxOutcome],
    options: &Apply<'_>,
) -> Result<(), Failure> {
    let user_id = options.actor.user_id;
    let client_id = batch.client_id.as_deref();
    let conflicts = recorded(batch, outcomes);
    if !conflicts.is_empty() {
        conflicts::record(conn, options.own, &conflicts, user_id, client_id).await?;
    }
    let rejected = rejected(batch, outcomes);
    let Some(cap) = options.dead_letters.filter(|_| !rejected.is_empty()) else {
        return Ok(());
    };
    dead_letters::lock_user(conn, options.own, user_id).await?;
    let pending = dead_letters::pending_usage(conn, options.own, user_id, cap.rows).await?;
    let entries: Vec<String> = rejected.iter().map(entries_text).collect();
    let letters: Vec<_> = rejected
        .iter()
        .zip(&entries)
        .map(|(letter, entries)| new_letter(letter, entries, user_id, client_id))
        .collect();
    room_for(&letters, cap, pending, user_id)?;
    for letter in &letters {
        dead_letters::insert(conn, options.own, letter).await?;
    }
    Ok(())
}

/// Locks every existing row the batch will write, table by table in name
/// order and by id within a table, so that a retried batch cannot
/// deadlock with another again. A refused lock statement changes nothing
/// on MySQL; in the careful mode it is skipped, and the entry's own
/// statement is refused and localised.
async fn lock_in_order(
    conn: &mut MySqlConnection,
    work: &[TxWork<'_, '_>],
    mode: Mode,
) -> Result<(), Failure> {
    for (table, mut ids) in rows_in_lock_order(work) {
        if let Some(usable) = table.id_parses {
            ids.retain(|id| usable(id));
        }
        for statement in statements::lock(table, &ids) {
            match statement.fetch_text(conn).await.map_err(localized) {
                Ok(_) => {}
                Err(Failure::Permanent(_)) if mode == Mode::Careful => {}
                Err(other) => return Err(other),
            }
        }
    }
    Ok(())
}
