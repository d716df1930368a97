//! Runs prepared entries on MySQL in order: one set-based statement per
//! group of a plain table, the policy steps for a group of a policy table.

use sqlx::MySqlConnection;

use super::found::find;
use super::{policy, statements};
use crate::upload::batch::Op;
use crate::upload::plan::{Group, Step, group};
use crate::upload::policy::ConflictNote;
use crate::upload::prepared::{Position, Prepared};
use crate::upload::run::{Conflicts, RunContext, RunEntries, RunFailure, row_result};
use crate::upload::sql::Row;

impl RunEntries for MySqlConnection {
    fn run_entries(
        &mut self,
        ctx: &RunContext<'_, '_, '_>,
        entries: &[&Prepared<'_, '_>],
    ) -> impl Future<Output = Result<Conflicts, RunFailure>> + Send {
        run(self, ctx, entries)
    }

    /// MySQL names the column of a value it refuses.
    async fn refused_column(
        &mut self,
        _prepared: &Prepared<'_, '_>,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        Ok(None)
    }
}

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
    policy::apply_set(
        conn,
        group.table,
        rules,
        &ctx.entries_of(group),
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
    let mut entries = group.entries.clone();
    // In the client's order (see `statements::update`).
    entries.sort_by_key(|e| e.at);
    let rows: Vec<&Row> = entries
        .iter()
        .filter(|e| e.op == op)
        .map(|e| &e.row)
        .collect();
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
    let found = find(conn, table, &ids).await?;
    let (replaced, new): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .zip(&found.rows)
        .partition(|(_, current)| current.is_some());
    let (replaced, new): (Vec<_>, Vec<_>) = (
        replaced.into_iter().map(|(row, _)| row).collect(),
        new.into_iter().map(|(row, _)| row).collect(),
    );
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
