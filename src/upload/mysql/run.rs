//! Runs prepared entries on MySQL in order: one set-based statement per
//! group of a plain table, the policy steps for a group of a policy table;
//! and the careful mode, a savepoint per client transaction.

use sqlx::{Acquire, MySqlConnection};

use super::{policy, statements};
use crate::upload::batch::Op;
use crate::upload::careful::refusal;
use crate::upload::failure::Failure;
use crate::upload::plan::{Group, Step, group};
use crate::upload::policy::ConflictNote;
use crate::upload::prepared::{Position, Prepared};
use crate::upload::run::{Conflicts, RunContext, RunFailure, row_result};
use crate::upload::work::{TxOutcome, TxWork};

/// Groups `entries` into steps and runs them. Operations never share a
/// statement on MySQL (it has no data-modifying CTEs).
pub async fn run(
    conn: &mut MySqlConnection,
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&Prepared<'_, '_>],
) -> Result<Conflicts, RunFailure> {
    let mut conflicts = Vec::new();
    for step in group(entries, false) {
        match step {
            Step::PerRow(prepared) => conflicts.extend(run_policy_row(conn, ctx, prepared).await?),
            // One entry: the row path, which settles races by itself.
            Step::Statement(group) if group.policy.is_some() && group.entries.len() == 1 => {
                conflicts.extend(run_policy_row(conn, ctx, group.entries[0]).await?);
            }
            Step::Statement(group) if group.policy.is_some() => {
                conflicts.extend(run_policy_set(conn, ctx, &group).await?);
            }
            Step::Statement(group) => run_statement(conn, &group).await?,
        }
    }
    Ok(conflicts)
}

async fn run_policy_row(
    conn: &mut MySqlConnection,
    ctx: &RunContext<'_, '_, '_>,
    prepared: &Prepared<'_, '_>,
) -> Result<Option<(Position, ConflictNote)>, RunFailure> {
    let Some(rules) = prepared.policy else {
        return Ok(None);
    };
    let entry = ctx.entry(prepared.at);
    let outcome = policy::apply_row(
        conn,
        prepared.table,
        rules,
        prepared,
        entry,
        ctx.user_id,
        ctx.client_id,
    )
    .await;
    row_result(prepared.at, outcome)
}

/// A group of policy entries on distinct rows, a set at a time.
async fn run_policy_set(
    conn: &mut MySqlConnection,
    ctx: &RunContext<'_, '_, '_>,
    group: &Group<'_, '_, '_>,
) -> Result<Conflicts, RunFailure> {
    let Some(rules) = group.policy else {
        return Ok(Vec::new());
    };
    let entries: Vec<_> = group
        .entries
        .iter()
        .map(|p| (*p, ctx.entry(p.at)))
        .collect();
    policy::apply_set(
        conn,
        group.table,
        rules,
        &entries,
        ctx.user_id,
        ctx.client_id,
    )
    .await
}

/// A group of one operation on a table without a policy.
async fn run_statement(
    conn: &mut MySqlConnection,
    group: &Group<'_, '_, '_>,
) -> Result<(), RunFailure> {
    let table = group.table;
    let Some(op) = group.single_op() else {
        return Ok(());
    };
    let rows = group.rows(op);
    let statements = match op {
        Op::Put if table.rows_independent => statements::upsert(table, group.owned, &rows),
        Op::Put => return put_row_by_row(conn, group).await,
        Op::Patch => statements::update(table, &rows),
        Op::Delete => {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            statements::delete(table, &ids)
        }
    };
    for statement in statements {
        statement.execute(conn).await?;
    }
    Ok(())
}

/// PUTs on a table with another unique key besides `id`: an upsert there
/// could update the row that key matches, so existing rows are locked and
/// replaced, and the others inserted (a clash on the other key fails).
async fn put_row_by_row(
    conn: &mut MySqlConnection,
    group: &Group<'_, '_, '_>,
) -> Result<(), RunFailure> {
    let table = group.table;
    let rows = group.rows(Op::Put);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut existing = Vec::new();
    for statement in statements::lock(table, &ids) {
        existing.extend(statement.fetch_text(conn).await?.into_iter().flatten());
    }
    let (replaced, new): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|r| existing.contains(&r.id));
    for row in replaced {
        statements::replace(table, group.owned, row)
            .execute(conn)
            .await?;
    }
    for statement in statements::insert(table, group.owned, &new) {
        statement.execute(conn).await?;
    }
    Ok(())
}

/// Runs one client transaction inside a savepoint: a refusal rolls back
/// only it, and the entry at fault is found by replaying it one entry at a
/// time.
pub async fn run_careful(
    conn: &mut MySqlConnection,
    ctx: &RunContext<'_, '_, '_>,
    work: &TxWork<'_, '_>,
) -> Result<TxOutcome, Failure> {
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
    let failure = match run(&mut savepoint, ctx, &runnable).await {
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
        (Some(at), rejection) => Ok(TxOutcome::Rejected {
            culprit: at.1,
            rejection,
        }),
        (None, _) => one_at_a_time(conn, ctx, &runnable).await,
    }
}

/// The first entry that fails alone is the culprit, and everything is
/// rolled back; if each entry applies, that result is kept.
async fn one_at_a_time(
    conn: &mut MySqlConnection,
    ctx: &RunContext<'_, '_, '_>,
    runnable: &[&Prepared<'_, '_>],
) -> Result<TxOutcome, Failure> {
    let mut savepoint = conn.begin().await?;
    let mut conflicts = Vec::new();
    for prepared in runnable {
        match run(&mut savepoint, ctx, &[*prepared]).await {
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
