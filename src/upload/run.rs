//! Runs prepared entries in order, on any backend: a plain table's group
//! as the backend's set-based statements, a policy table's entries through
//! the policy steps (a set at a time, or one row at a time).

use super::backend::Backend;
use super::batch::{Batch, Entry};
use super::failure::Failure;
use super::plan::{Group, MixKey, Step, group};
use super::policy::{self, ConflictNote, RowOutcome};
use super::prepared::{Position, Prepared};

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

/// `entries` grouped into the steps `C` runs: operations share a
/// statement where the database allows it and no role hides rows.
pub fn steps<'p, 'c, 'a, C: Backend>(
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&'p Prepared<'c, 'a>],
) -> Vec<Step<'p, 'c, 'a>> {
    group(
        entries,
        ctx.rls_role.is_none().then_some(C::mix_key as MixKey),
    )
}

/// Groups `entries` into steps and runs them.
pub async fn run<C: Backend>(
    conn: &mut C,
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&Prepared<'_, '_>],
) -> Result<Conflicts, Failure> {
    run_steps(conn, ctx, steps::<C>(ctx, entries)).await
}

/// Runs already grouped steps, in order.
pub async fn run_steps(
    conn: &mut impl Backend,
    ctx: &RunContext<'_, '_, '_>,
    steps: Vec<Step<'_, '_, '_>>,
) -> Result<Conflicts, Failure> {
    let mut conflicts = Vec::new();
    for step in steps {
        match step {
            Step::PerRow(prepared) => {
                conflicts.extend(run_policy_row(conn, ctx, prepared).await?);
            }
            Step::Statement(group) if group.policy.is_some() => {
                conflicts.extend(run_policy_set(conn, ctx, &group).await?);
            }
            Step::Statement(group) => conn.write_plain(&group, ctx.rls_role).await?,
        }
    }
    Ok(conflicts)
}

/// One entry of a policy applied one row at a time.
async fn run_policy_row(
    conn: &mut impl Backend,
    ctx: &RunContext<'_, '_, '_>,
    prepared: &Prepared<'_, '_>,
) -> Result<Option<(Position, ConflictNote)>, Failure> {
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
    .await?;
    Ok(match outcome {
        RowOutcome::Applied => None,
        RowOutcome::Conflict(note) => Some((prepared.at, note)),
    })
}

/// Checks and writes a group of policy entries a set at a time.
async fn run_policy_set(
    conn: &mut impl Backend,
    ctx: &RunContext<'_, '_, '_>,
    group: &Group<'_, '_, '_>,
) -> Result<Conflicts, Failure> {
    let Some(policy) = group.policy else {
        return Ok(Vec::new());
    };
    policy::apply_set(
        conn,
        group.table,
        policy,
        &ctx.entries_of(group),
        ctx.user_id,
        ctx.client_id,
    )
    .await
}
