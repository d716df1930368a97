//! Runs prepared entries in order: set-based statements for plain tables,
//! the policy steps for tables with a policy.

use sqlx::PgConnection;

use super::batch::{Batch, Entry, Op};
use super::plan::{Group, Step, group};
use super::policy::{self, ConflictNote, RowFailure, RowOutcome, SetFailure};
use super::prepared::{Position, Prepared};
use super::rejection::Rejection;
use super::sql;
use crate::error::ErrorCode;

/// Why running entries stopped.
pub enum RunFailure {
    Db(sqlx::Error),
    /// A policy refused the entry at this position.
    Refused(Position, Rejection),
    /// A policy refused an entry of a set after writes that could fail
    /// first: replaying the entries one at a time finds the culprit.
    Unattributed(Rejection),
}

impl From<SetFailure> for RunFailure {
    fn from(failure: SetFailure) -> Self {
        match failure {
            SetFailure::Refused(at, rejection) => Self::Refused(at, rejection),
            SetFailure::RefusedLater(rejection) => Self::Unattributed(rejection),
            SetFailure::Db(err) => Self::Db(err),
        }
    }
}

impl From<sqlx::Error> for RunFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

/// What every step of a batch needs to know.
pub struct RunContext<'r, 'b, 'a> {
    pub batch: &'b Batch<'a>,
    pub user_id: &'r str,
    pub client_id: Option<&'r str>,
    pub rls_role: Option<&'r str>,
}

impl<'a> RunContext<'_, '_, 'a> {
    pub(crate) fn entry(&self, at: Position) -> &Entry<'a> {
        &self.batch.transactions[at.0].entries[at.1]
    }

    /// A policy group's entries, each with the client's entry it came from.
    pub(crate) fn entries_of<'p, 'c>(
        &self,
        group: &Group<'p, 'c, 'a>,
    ) -> Vec<(&'p Prepared<'c, 'a>, &Entry<'a>)> {
        group
            .entries
            .iter()
            .map(|p| (*p, self.entry(p.at)))
            .collect()
    }
}

/// Entries resolved in the server's favour, by position.
pub type Conflicts = Vec<(Position, ConflictNote)>;

/// A connection that runs prepared entries: what the careful mode needs
/// from each database.
pub trait RunEntries: sqlx::Connection {
    fn run_entries(
        &mut self,
        ctx: &RunContext<'_, '_, '_>,
        entries: &[&Prepared<'_, '_>],
    ) -> impl Future<Output = Result<Conflicts, RunFailure>> + Send;

    /// The column of an entry at fault whose value the database refused,
    /// and the database's words, where its error did not name it.
    fn refused_column(
        &mut self,
        prepared: &Prepared<'_, '_>,
    ) -> impl Future<Output = Result<Option<(String, String)>, sqlx::Error>> + Send;
}

impl RunEntries for PgConnection {
    fn run_entries(
        &mut self,
        ctx: &RunContext<'_, '_, '_>,
        entries: &[&Prepared<'_, '_>],
    ) -> impl Future<Output = Result<Conflicts, RunFailure>> + Send {
        run(self, ctx, entries)
    }

    fn refused_column(
        &mut self,
        prepared: &Prepared<'_, '_>,
    ) -> impl Future<Output = Result<Option<(String, String)>, sqlx::Error>> + Send {
        super::probe::refused_column(self, prepared)
    }
}

/// Groups `entries` into steps and runs them.
pub async fn run(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&Prepared<'_, '_>],
) -> Result<Conflicts, RunFailure> {
    run_steps(conn, ctx, group(entries, ctx.rls_role.is_none())).await
}

/// Runs already grouped steps, in order.
pub async fn run_steps(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    steps: Vec<Step<'_, '_, '_>>,
) -> Result<Conflicts, RunFailure> {
    let mut conflicts = Vec::new();
    for step in steps {
        match step {
            Step::PerRow(prepared) => {
                conflicts.extend(run_policy_row(conn, ctx, prepared).await?);
            }
            Step::Statement(group) if group.policy.is_some() => {
                conflicts.extend(run_policy_set(conn, ctx, &group).await?);
            }
            Step::Statement(group) => run_statement(conn, ctx, &group).await?,
        }
    }
    Ok(conflicts)
}

/// One entry of a policy applied one row at a time.
async fn run_policy_row(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    prepared: &Prepared<'_, '_>,
) -> Result<Option<(Position, ConflictNote)>, RunFailure> {
    let Some(policy) = prepared.policy else {
        return Ok(None);
    };
    let entry = ctx.entry(prepared.at);
    let outcome = policy::apply_row(
        conn,
        prepared.table,
        policy,
        prepared,
        entry,
        ctx.user_id,
        ctx.client_id,
    )
    .await;
    row_result(prepared.at, outcome)
}

/// What the policy decided for the entry at `at`, in the run's terms.
pub(crate) fn row_result(
    at: Position,
    outcome: Result<RowOutcome, RowFailure>,
) -> Result<Option<(Position, ConflictNote)>, RunFailure> {
    match outcome {
        Ok(RowOutcome::Applied) => Ok(None),
        Ok(RowOutcome::Conflict(note)) => Ok(Some((at, note))),
        Err(RowFailure::Refused(rejection)) => Err(RunFailure::Refused(at, rejection)),
        Err(RowFailure::Db(err)) => Err(RunFailure::Db(err)),
    }
}

/// Checks and writes a group of policy entries a set at a time.
async fn run_policy_set(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    group: &Group<'_, '_, '_>,
) -> Result<Conflicts, RunFailure> {
    let Some(policy) = group.policy else {
        return Ok(Vec::new());
    };
    Ok(policy::apply_set(
        conn,
        group.table,
        policy,
        &ctx.entries_of(group),
        ctx.user_id,
        ctx.client_id,
    )
    .await?)
}

/// A group of a table without a policy: one statement.
async fn run_statement(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    group: &Group<'_, '_, '_>,
) -> Result<(), RunFailure> {
    match group.single_op() {
        None => run_combined(conn, group).await?,
        Some(Op::Put) => {
            sql::upsert(group.table, group.owned, &group.rows(Op::Put))
                .execute(conn)
                .await?;
        }
        Some(Op::Patch) => {
            if let Some(mut statement) = sql::update(group.table, &group.rows(Op::Patch)) {
                statement.sql.push_str(returning_id(ctx));
                let touched = statement.fetch_text(conn).await?;
                check_hidden_rows(conn, ctx, group, touched).await?;
            }
        }
        Some(Op::Delete) => {
            let ids = group.entries.iter().map(|e| e.row.id.as_str()).collect();
            let mut statement = sql::delete(group.table, ids);
            statement.sql.push_str(returning_id(ctx));
            let touched = statement.fetch_text(conn).await?;
            check_hidden_rows(conn, ctx, group, touched).await?;
        }
    }
    Ok(())
}

/// Under row-level security, statements report the rows they touched.
fn returning_id(ctx: &RunContext<'_, '_, '_>) -> &'static str {
    if ctx.rls_role.is_some() {
        " RETURNING t.\"id\"::text"
    } else {
        ""
    }
}

/// PUTs, PATCHes and DELETEs of distinct rows of one table, one statement.
async fn run_combined(
    conn: &mut PgConnection,
    group: &Group<'_, '_, '_>,
) -> Result<(), sqlx::Error> {
    let parts = sql::Combined {
        puts: group.rows(Op::Put),
        patches: group
            .rows(Op::Patch)
            .into_iter()
            .filter(|r| !r.values.is_empty())
            .collect(),
        deletes: group.rows(Op::Delete),
    };
    sql::combined(group.table, group.owned, &parts)
        .execute(conn)
        .await
}

/// Under row-level security an UPDATE or DELETE silently skips rows the
/// user may not see. A skipped row that exists is someone else's: refuse the
/// entry as `forbidden` rather than report a no-op.
async fn check_hidden_rows(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    group: &Group<'_, '_, '_>,
    touched: Vec<String>,
) -> Result<(), RunFailure> {
    let Some(role) = ctx.rls_role else {
        return Ok(());
    };
    let skipped: Vec<&str> = group
        .entries
        .iter()
        .map(|e| e.row.id.as_str())
        .filter(|id| !touched.iter().any(|t| t == id))
        .collect();
    if skipped.is_empty() {
        return Ok(());
    }
    let existing = sql::hidden_rows(conn, group.table, role, &skipped).await?;
    match group.entries.iter().find(|e| existing.contains(&e.row.id)) {
        Some(entry) => Err(RunFailure::Refused(
            entry.at,
            Rejection::new(
                ErrorCode::Forbidden,
                "row-level security hides this row from the user",
            ),
        )),
        None => Ok(()),
    }
}
