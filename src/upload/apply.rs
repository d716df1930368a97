//! Applies a batch in one database transaction.
//!
//! The fast path runs every valid entry as set-based statements with no
//! savepoints. If Postgres refuses one (a constraint, a bad value), the
//! transaction is rolled back and the batch runs again carefully: one
//! savepoint per client transaction, so only the failing one is rolled back
//! and dead-lettered, and the entry that caused it is found by replaying that
//! client transaction one entry at a time.

use sqlx::{Acquire, PgConnection, Postgres, Transaction};

use super::dead_letter;
use super::envelope::{Batch, Entry, Op};
use super::plan::{Allowed, Prepared, group};
use super::progress;
use super::report::{EntryResult, Rejection, Report, Status};
use super::sql;
use super::sqlstate::{DbFailure, classify};

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

/// What happened to one client transaction.
enum TxOutcome {
    /// Entries applied (duplicates excluded).
    Applied,
    /// Rejected: the position (within the transaction) of the entry at fault.
    Rejected {
        culprit: usize,
        rejection: Rejection,
    },
}

/// Validation and duplicate detection, before any statement runs.
struct TxWork<'c, 'a> {
    /// Per entry: duplicate (None) or prepared / refused.
    entries: Vec<Option<Result<Prepared<'c, 'a>, Rejection>>>,
}

impl TxWork<'_, '_> {
    fn first_refusal(&self) -> Option<(usize, &Rejection)> {
        self.entries.iter().enumerate().find_map(|(i, e)| match e {
            Some(Err(rejection)) => Some((i, rejection)),
            _ => None,
        })
    }

    fn runnable(&self) -> impl Iterator<Item = &Prepared<'_, '_>> {
        self.entries
            .iter()
            .filter_map(|e| e.as_ref().and_then(|r| r.as_ref().ok()))
    }
}

/// Marks duplicates (op_id at or below the client's high-water mark) and
/// validates the rest.
fn prepare_work<'c, 'a>(
    allowed: &'c Allowed<'_>,
    batch: &Batch<'a>,
    mut high_water: Option<i64>,
) -> (Vec<TxWork<'c, 'a>>, Option<i64>) {
    let mut work = Vec::with_capacity(batch.transactions.len());
    for transaction in &batch.transactions {
        let mut entries = Vec::with_capacity(transaction.entries.len());
        for entry in &transaction.entries {
            let duplicate = match (high_water, entry.op_id) {
                (Some(mark), Some(op_id)) => op_id <= mark,
                _ => false,
            };
            if let (Some(mark), Some(op_id)) = (high_water.as_mut(), entry.op_id) {
                *mark = (*mark).max(op_id);
            }
            entries.push((!duplicate).then(|| allowed.prepare(entry)));
        }
        work.push(TxWork { entries });
    }
    (work, high_water)
}

/// Runs entries as grouped statements on `conn`.
async fn run(conn: &mut PgConnection, entries: &[&Prepared<'_, '_>]) -> Result<(), sqlx::Error> {
    for group in group(entries) {
        match group.op {
            Op::Put => {
                let rows: Vec<_> = group.rows.iter().map(|r| (*r).clone()).collect();
                let statement = sql::upsert(group.table, group.owned, &rows);
                sqlx::query(&statement)
                    .bind(sql::rows_param(&rows))
                    .execute(&mut *conn)
                    .await?;
            }
            Op::Patch => {
                let rows: Vec<_> = group.rows.iter().map(|r| (*r).clone()).collect();
                if let Some(statement) = sql::update(group.table, &rows) {
                    sqlx::query(&statement)
                        .bind(sql::rows_param(&rows))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Op::Delete => {
                let ids: Vec<&str> = group.rows.iter().map(|r| r.id.as_str()).collect();
                sqlx::query(&sql::delete(group.table))
                    .bind(ids)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Finds the entry of a failed client transaction that Postgres refuses,
/// applying its entries one at a time inside a savepoint that is then
/// rolled back. `None` when each entry alone succeeds.
async fn find_culprit(
    conn: &mut PgConnection,
    runnable: &[(usize, &Prepared<'_, '_>)],
) -> Result<Option<(usize, Rejection)>, DbFailure> {
    let mut probe = conn.begin().await.map_err(classify)?;
    for (position, prepared) in runnable {
        match run(&mut probe, &[*prepared]).await.map_err(classify) {
            Ok(()) => {}
            Err(DbFailure::Permanent(rejection)) => {
                probe.rollback().await.map_err(classify)?;
                return Ok(Some((*position, rejection)));
            }
            Err(other) => return Err(other),
        }
    }
    probe.rollback().await.map_err(classify)?;
    Ok(None)
}

async fn run_careful(
    conn: &mut PgConnection,
    work: &TxWork<'_, '_>,
) -> Result<TxOutcome, DbFailure> {
    if let Some((culprit, rejection)) = work.first_refusal() {
        return Ok(TxOutcome::Rejected {
            culprit,
            rejection: rejection.clone(),
        });
    }
    let runnable: Vec<(usize, &Prepared)> = work
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_ref().and_then(|r| r.as_ref().ok()).map(|p| (i, p)))
        .collect();
    if runnable.is_empty() {
        return Ok(TxOutcome::Applied);
    }
    let mut savepoint = conn.begin().await.map_err(classify)?;
    let entries: Vec<&Prepared> = runnable.iter().map(|(_, p)| *p).collect();
    match run(&mut savepoint, &entries).await.map_err(classify) {
        Ok(()) => {
            savepoint.commit().await.map_err(classify)?;
            Ok(TxOutcome::Applied)
        }
        Err(DbFailure::Permanent(group_rejection)) => {
            savepoint.rollback().await.map_err(classify)?;
            match find_culprit(conn, &runnable).await? {
                Some((culprit, rejection)) => Ok(TxOutcome::Rejected { culprit, rejection }),
                // One at a time it applies: that is the reference result.
                None => {
                    let mut savepoint = conn.begin().await.map_err(classify)?;
                    for prepared in &entries {
                        if let Err(err) = run(&mut savepoint, &[*prepared]).await.map_err(classify)
                        {
                            return match err {
                                DbFailure::Permanent(_) => Ok(TxOutcome::Rejected {
                                    culprit: runnable[0].0,
                                    rejection: group_rejection,
                                }),
                                other => Err(other),
                            };
                        }
                    }
                    savepoint.commit().await.map_err(classify)?;
                    Ok(TxOutcome::Applied)
                }
            }
        }
        Err(other) => Err(other),
    }
}

/// Options of one application of a batch.
pub struct Apply<'r> {
    pub actor: Actor<'r>,
    /// Record rejected client transactions in the dead letters.
    pub dead_letters: bool,
    /// Track exactly-once progress for the batch's client id.
    pub track_progress: bool,
}

/// Applies `batch` inside the open transaction `tx`; the caller commits.
pub async fn apply_in(
    tx: &mut Transaction<'_, Postgres>,
    allowed: &Allowed<'_>,
    batch: &Batch<'_>,
    options: &Apply<'_>,
    mode: Mode,
) -> Result<Report, DbFailure> {
    let client_id = batch
        .client_id
        .as_deref()
        .filter(|_| options.track_progress);
    let high_water = match client_id {
        Some(client_id) => Some(
            progress::lock(tx, options.actor.user_id, client_id)
                .await
                .map_err(classify)?,
        ),
        None => None,
    };
    let (work, new_high_water) = prepare_work(allowed, batch, high_water);

    let mut outcomes: Vec<TxOutcome> = Vec::with_capacity(work.len());
    match mode {
        Mode::Fast => {
            let all: Vec<&Prepared> = work
                .iter()
                .filter(|w| w.first_refusal().is_none())
                .flat_map(TxWork::runnable)
                .collect();
            run(tx, &all).await.map_err(classify)?;
            for w in &work {
                outcomes.push(match w.first_refusal() {
                    Some((culprit, rejection)) => TxOutcome::Rejected {
                        culprit,
                        rejection: rejection.clone(),
                    },
                    None => TxOutcome::Applied,
                });
            }
        }
        Mode::Careful => {
            for w in &work {
                outcomes.push(run_careful(tx, w).await?);
            }
        }
    }

    let report = build_report(batch, &work, &outcomes);
    if options.dead_letters {
        for ((transaction, outcome), _) in batch.transactions.iter().zip(&outcomes).zip(&work) {
            if let TxOutcome::Rejected { culprit, rejection } = outcome {
                dead_letter::insert(
                    tx,
                    options.actor.user_id,
                    batch.client_id.as_deref(),
                    transaction,
                    transaction.entries.get(*culprit).and_then(|e| e.op_id),
                    rejection,
                )
                .await
                .map_err(classify)?;
            }
        }
    }
    if let (Some(client_id), Some(mark)) = (client_id, new_high_water)
        && Some(mark) != high_water
    {
        progress::advance(tx, options.actor.user_id, client_id, mark)
            .await
            .map_err(classify)?;
    }
    Ok(report)
}

fn result_for(entry: &Entry<'_>, status: Status) -> EntryResult {
    EntryResult {
        op_id: entry.op_id,
        table: entry.table.to_string(),
        id: entry.id.clone(),
        status,
        code: None,
        message: None,
        constraint_name: None,
        column: None,
    }
}

fn build_report(batch: &Batch<'_>, work: &[TxWork<'_, '_>], outcomes: &[TxOutcome]) -> Report {
    let mut report = Report::default();
    for ((transaction, w), outcome) in batch.transactions.iter().zip(work).zip(outcomes) {
        for (position, (entry, slot)) in transaction.entries.iter().zip(&w.entries).enumerate() {
            if slot.is_none() {
                report.duplicates += 1;
                let mut result = result_for(entry, Status::Duplicate);
                result.code = Some("duplicate");
                report.results.push(result);
                continue;
            }
            match outcome {
                TxOutcome::Applied => report.applied += 1,
                TxOutcome::Rejected { culprit, rejection } => {
                    report.rejected += 1;
                    let mut result = result_for(entry, Status::Rejected);
                    if position == *culprit {
                        result.code = Some(rejection.code);
                        result.message = Some(rejection.message.clone());
                        result.constraint_name = rejection.constraint_name.clone();
                        result.column = rejection.column.clone();
                    } else {
                        result.code = Some("transaction_rejected");
                        result.message = Some(
                            "another entry of this client transaction was rejected".to_owned(),
                        );
                    }
                    report.results.push(result);
                }
            }
        }
    }
    report
}

/// Marks the transaction as one whose deferred constraints are checked per
/// statement, so a violation is attributed to its client transaction.
pub async fn check_constraints_immediately(conn: &mut PgConnection) -> Result<(), DbFailure> {
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(classify)
}
