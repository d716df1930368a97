//! The careful mode: after a refusal aborted the fast attempt, each client
//! transaction runs in a savepoint, so only a failing one is rolled back
//! (and dead-lettered); the entry at fault is found by replaying that
//! transaction one entry at a time. The same on every database.

use sqlx::Database;

use super::failure::Failure;
use super::prepared::{Position, Prepared};
use super::rejection::Rejection;
use super::run::{RunContext, RunEntries, RunFailure};
use super::work::{TxOutcome, TxWork};

/// Runs one client transaction inside a savepoint.
pub async fn run_careful<C>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    work: &TxWork<'_, '_>,
) -> Result<TxOutcome, Failure>
where
    C: RunEntries,
    C::Database: Database<Connection = C>,
{
    if let Some((culprit, rejection)) = work.first_refusal() {
        return Ok(TxOutcome::Rejected {
            culprit,
            rejection: rejection.clone(),
        });
    }
    let runnable: Vec<&Prepared> = work.runnable().collect();
    if runnable.is_empty() {
        return Ok(TxOutcome::Applied {
            conflicts: Vec::new(),
        });
    }
    let mut savepoint = conn.begin().await?;
    let failure = match savepoint.run_entries(ctx, &runnable).await {
        Ok(conflicts) => {
            savepoint.commit().await?;
            return Ok(TxOutcome::Applied {
                conflicts: conflicts.into_iter().map(|(at, n)| (at.1, n)).collect(),
            });
        }
        Err(failure) => failure,
    };
    // Classified before the rollback: after a deadlock MySQL has rolled
    // back the whole transaction, savepoint included.
    let refusal = refusal(failure)?;
    savepoint.rollback().await?;
    match refusal {
        // A policy named the entry itself.
        (Some(at), rejection) => Ok(TxOutcome::Rejected {
            culprit: at.1,
            rejection,
        }),
        (None, _) => one_at_a_time(conn, ctx, &runnable).await,
    }
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
    C: RunEntries,
    C::Database: Database<Connection = C>,
{
    let mut savepoint = conn.begin().await?;
    let mut conflicts = Vec::new();
    for prepared in runnable {
        match savepoint.run_entries(ctx, &[*prepared]).await {
            Ok(notes) => conflicts.extend(notes.into_iter().map(|(at, n)| (at.1, n))),
            Err(failure) => {
                let (_, rejection) = refusal(failure)?;
                savepoint.rollback().await?;
                return Ok(TxOutcome::Rejected {
                    culprit: prepared.at.1,
                    rejection,
                });
            }
        }
    }
    savepoint.commit().await?;
    Ok(TxOutcome::Applied { conflicts })
}

/// A refusal as a rejection, with the entry's position when a policy named
/// it (a refused statement does not say which of its rows failed), or the
/// classified database failure.
fn refusal(failure: RunFailure) -> Result<(Option<Position>, Rejection), Failure> {
    match failure {
        RunFailure::Refused(at, rejection) => Ok((Some(at), rejection)),
        RunFailure::Unattributed(rejection) => Ok((None, rejection)),
        RunFailure::Db(err) => match Failure::from(err) {
            Failure::Permanent(rejection) => Ok((None, rejection)),
            other => Err(other),
        },
    }
}
