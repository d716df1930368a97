//! The careful mode: after a refusal aborted the fast attempt, the batch's
//! client transactions run again inside savepoints, so only a failing one
//! is rolled back (and dead-lettered). The same on every database.
//!
//! Its cost is bounded by bisection rather than by the batch's length:
//! client transactions run as sets, a failing set is split in halves, and
//! within a failing transaction the entry at fault is the end of the
//! shortest prefix that fails. A batch of n transactions with k refusals
//! takes O(k log n) set-based runs, not n savepoints.

use super::backend::Backend;
use super::failure::Failure;
use super::prepared::{Position, Prepared};
use super::rejection::Rejection;
use super::run::{Conflicts, RunContext, run};
use super::work::{TxOutcome, TxWork};
use crate::error::ErrorCode;

/// Runs every client transaction of `work`, each all-or-nothing.
pub async fn run_careful<C>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    work: &[TxWork<'_, '_>],
) -> Result<Vec<TxOutcome>, Failure>
where
    C: Backend,
{
    let mut outcomes: Vec<Option<TxOutcome>> = work
        .iter()
        .map(|w| {
            w.first_refusal()
                .map(|(culprit, rejection)| TxOutcome::Rejected {
                    culprit,
                    rejection: rejection.clone(),
                })
        })
        .collect();
    // Ranges of transactions still to settle, the next on top: a range is
    // settled only after every range before it, as the client ordered them.
    let mut pending = vec![(0, work.len())];
    while let Some((lo, hi)) = pending.pop() {
        let open: Vec<usize> = (lo..hi).filter(|&t| outcomes[t].is_none()).collect();
        let runnable: Vec<&Prepared> = open.iter().flat_map(|&t| work[t].runnable()).collect();
        match attempt(conn, ctx, &runnable, true).await? {
            Ok(conflicts) => {
                for t in open {
                    outcomes[t] = Some(applied(t, &conflicts));
                }
            }
            // A policy named the entry: the transactions before it ran
            // cleanly in this attempt and run again as a set.
            Err((Some(at), rejection)) => {
                outcomes[at.0] = Some(TxOutcome::Rejected {
                    culprit: at.1,
                    rejection,
                });
                pending.push((at.0 + 1, hi));
                pending.push((lo, at.0));
            }
            Err((None, rejection)) => match open.as_slice() {
                [] => {}
                [t] => outcomes[*t] = Some(culprit(conn, ctx, &work[*t], rejection).await?),
                _ => {
                    let mid = open[open.len() / 2];
                    pending.push((mid, hi));
                    pending.push((lo, mid));
                }
            },
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(TxOutcome::Applied {
                conflicts: Vec::new(),
            })
        })
        .collect())
}

/// The applied outcome of transaction `t`, with its entries' conflicts.
fn applied(t: usize, conflicts: &Conflicts) -> TxOutcome {
    TxOutcome::Applied {
        conflicts: conflicts
            .iter()
            .filter(|(at, _)| at.0 == t)
            .map(|(at, note)| (at.1, note.clone()))
            .collect(),
    }
}

/// A refusal: the entry a policy named, if it named one.
type Refused = (Option<Position>, Rejection);

/// Runs `entries` in a savepoint, kept (`keep`) when they all apply; a
/// refusal rolls the savepoint back. Transient failures end the batch.
async fn attempt<C>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&Prepared<'_, '_>],
    keep: bool,
) -> Result<Result<Conflicts, Refused>, Failure>
where
    C: Backend,
{
    if entries.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    conn.savepoint().await?;
    match run(conn, ctx, entries).await {
        Ok(conflicts) if keep => {
            conn.release_savepoint().await?;
            Ok(Ok(conflicts))
        }
        Ok(conflicts) => {
            conn.rollback_savepoint().await?;
            Ok(Ok(conflicts))
        }
        Err(failure) => {
            // Classified before the rollback: after a deadlock MySQL has
            // rolled back the whole transaction, savepoint included.
            let refused = refusal(failure)?;
            conn.rollback_savepoint().await?;
            Ok(Err(refused))
        }
    }
}

/// The entry at fault in a client transaction that fails as a whole:
/// the end of the shortest failing prefix, found by bisection and then
/// confirmed one entry after its prefix. Where the entry applies after all
/// (a set refused what the entries one at a time accept), the transaction
/// runs one entry at a time and that is its result.
async fn culprit<C>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    work: &TxWork<'_, '_>,
    whole: Rejection,
) -> Result<TxOutcome, Failure>
where
    C: Backend,
{
    let runnable: Vec<&Prepared> = work.runnable().collect();
    // `ok` entries apply as a set; `failing` entries do not.
    let (mut ok, mut failing, mut rejection) = (0, runnable.len(), whole);
    while failing - ok > 1 {
        let mid = ok + (failing - ok) / 2;
        match attempt(conn, ctx, &runnable[..mid], false).await? {
            Ok(_) => ok = mid,
            Err((Some(at), named)) => {
                let named_at = runnable.iter().position(|p| p.at == at);
                failing = named_at.map_or(mid, |i| i + 1).max(ok + 1);
                rejection = named;
            }
            Err((None, refused)) => {
                failing = mid;
                rejection = refused;
            }
        }
    }
    let suspect = failing - 1;
    conn.savepoint().await?;
    if let Err(failure) = run(conn, ctx, &runnable[..suspect]).await {
        let _ = refusal(failure)?;
        conn.rollback_savepoint().await?;
        return one_at_a_time(conn, ctx, &runnable).await;
    }
    let confirmed = match run(conn, ctx, &runnable[suspect..failing]).await {
        Ok(_) => None,
        Err(failure) => Some(refusal(failure)?.1),
    };
    conn.rollback_savepoint().await?;
    match confirmed {
        Some(alone) => {
            // The entry's own refusal names its column or constraint best.
            let rejection = if alone.code == rejection.code {
                alone
            } else {
                rejection
            };
            Ok(TxOutcome::Rejected {
                culprit: runnable[suspect].at.1,
                rejection: with_column(conn, runnable[suspect], rejection).await?,
            })
        }
        None => one_at_a_time(conn, ctx, &runnable).await,
    }
}

/// A value refusal with the column it concerns, where the database did not
/// name it.
async fn with_column<C>(
    conn: &mut C,
    prepared: &Prepared<'_, '_>,
    mut rejection: Rejection,
) -> Result<Rejection, Failure>
where
    C: Backend,
{
    if rejection.code != ErrorCode::InvalidValue || rejection.column.is_some() {
        return Ok(rejection);
    }
    if let Some((column, said)) = conn.refused_column(prepared).await? {
        let cast = prepared
            .table
            .column(&column)
            .map_or("", |c| c.sql_type.as_str());
        rejection.message = format!("column `{column}` ({cast}) cannot take the value: {said}");
        rejection.column = Some(column);
    }
    Ok(rejection)
}

/// Applies a failed client transaction's entries one at a time inside a
/// savepoint: the first refused entry is the culprit and everything is
/// rolled back; if each entry applies, that is the reference result and it
/// is kept.
async fn one_at_a_time<C>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    runnable: &[&Prepared<'_, '_>],
) -> Result<TxOutcome, Failure>
where
    C: Backend,
{
    conn.savepoint().await?;
    let mut conflicts = Vec::new();
    for prepared in runnable {
        match run(conn, ctx, &[*prepared]).await {
            Ok(notes) => conflicts.extend(notes.into_iter().map(|(at, n)| (at.1, n))),
            Err(failure) => {
                let (_, rejection) = refusal(failure)?;
                conn.rollback_savepoint().await?;
                return Ok(TxOutcome::Rejected {
                    culprit: prepared.at.1,
                    rejection: with_column(conn, prepared, rejection).await?,
                });
            }
        }
    }
    conn.release_savepoint().await?;
    Ok(TxOutcome::Applied { conflicts })
}

/// A refusal as a rejection, with the entry's position when a policy named
/// it (a refused statement does not say which of its rows failed). The
/// backends localise errors of the app's writes (`failure::localized`): an
/// error uplink has not classified is the entry's to carry, never the whole
/// batch's.
fn refusal(failure: Failure) -> Result<Refused, Failure> {
    match failure {
        Failure::Refused { at, rejection } => Ok((at, *rejection)),
        other => Err(other),
    }
}
