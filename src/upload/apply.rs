//! Applies a batch in one database transaction.
//!
//! The fast path runs every valid entry as set-based statements with no
//! savepoints. If Postgres or a policy refuses one (a constraint, a bad
//! value, another user's row), the transaction is rolled back and the batch
//! runs again carefully: one savepoint per client transaction, so only the
//! failing one is rolled back and dead-lettered, and the entry that caused it
//! is found by replaying that client transaction one entry at a time.

use sqlx::{Acquire, PgConnection, Postgres, Transaction};

use super::dead_letter;
use super::envelope::{Batch, Entry, Op};
use super::failure::{Failure, classify};
use super::plan::{Allowed, Prepared, Step, group};
use super::policy::{self, ConflictNote, Position, RowFailure, RowOutcome, SetFailure};
use super::progress;
use super::report::{EntryResult, Rejection, Report, Status};
use super::sql::{self, quote_ident};

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
    /// Record rejected client transactions in the dead letters, at most
    /// this many pending per user.
    pub dead_letters: Option<u32>,
    /// Track exactly-once progress for the batch's client id.
    pub track_progress: bool,
    /// Run the app's writes as this role, with the PostgREST claim settings.
    pub rls_role: Option<&'r str>,
}

/// Why running entries stopped.
enum RunFailure {
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

/// What happened to one client transaction.
enum TxOutcome {
    /// Applied; entries resolved in the server's favour carry a note.
    Applied {
        conflicts: Vec<(usize, ConflictNote)>,
    },
    /// Rejected: the entry (position within the transaction) at fault.
    Rejected {
        culprit: usize,
        rejection: Rejection,
    },
}

/// Per entry of a client transaction: duplicate (None), prepared or refused.
struct TxWork<'c, 'a> {
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

/// Marks duplicates (op_id at or below the client's progress from earlier
/// requests), refuses op_ids that cannot be in order, and validates the
/// rest. Op ids are checked only where progress is tracked (`high_water`).
fn prepare_work<'c, 'a>(
    allowed: &'c Allowed<'_>,
    batch: &Batch<'a>,
    high_water: Option<i64>,
) -> (Vec<TxWork<'c, 'a>>, Option<i64>) {
    let mut mark = high_water;
    let mut work = Vec::with_capacity(batch.transactions.len());
    for (t, transaction) in batch.transactions.iter().enumerate() {
        let mut entries = Vec::with_capacity(transaction.entries.len());
        for (e, entry) in transaction.entries.iter().enumerate() {
            let slot = match (high_water, mark, entry.op_id) {
                (Some(_), _, Some(op_id)) if op_id <= 0 => Some(Err(Rejection::new(
                    "invalid_op_id",
                    format!("op_id {op_id} is not a positive integer"),
                ))),
                (Some(stored), _, Some(op_id)) if op_id <= stored => None,
                (_, Some(seen), Some(op_id)) if op_id <= seen => Some(Err(Rejection::new(
                    "op_id_not_increasing",
                    format!(
                        "op_id {op_id} follows op_id {seen} in this request; op_ids must increase"
                    ),
                ))),
                _ => Some(allowed.prepare((t, e), entry)),
            };
            if let (Some(seen), Some(op_id)) = (mark.as_mut(), entry.op_id) {
                *seen = (*seen).max(op_id);
            }
            entries.push(slot);
        }
        work.push(TxWork { entries });
    }
    (work, mark)
}

struct RunContext<'r, 'b, 'a> {
    batch: &'b Batch<'a>,
    user_id: &'r str,
    client_id: Option<&'r str>,
    rls_role: Option<&'r str>,
}

/// Runs entries in order: set-based statements, and the per-row path for
/// tables with a policy. Returns the entries resolved as conflicts.
async fn run(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    entries: &[&Prepared<'_, '_>],
) -> Result<Vec<(Position, ConflictNote)>, RunFailure> {
    run_steps(conn, ctx, group(entries, ctx.rls_role.is_none())).await
}

/// Runs already grouped steps, in order.
async fn run_steps(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    steps: Vec<Step<'_, '_, '_>>,
) -> Result<Vec<(Position, ConflictNote)>, RunFailure> {
    let mut conflicts = Vec::new();
    for step in steps {
        match step {
            Step::PerRow(prepared) => {
                let Some(policy) = prepared.policy else {
                    continue;
                };
                let entry: &Entry = &ctx.batch.transactions[prepared.at.0].entries[prepared.at.1];
                match policy::apply_row(
                    conn,
                    prepared.table,
                    policy,
                    prepared,
                    entry,
                    ctx.user_id,
                    ctx.client_id,
                )
                .await
                {
                    Ok(RowOutcome::Applied) => {}
                    Ok(RowOutcome::Conflict(note)) => conflicts.push((prepared.at, note)),
                    Err(RowFailure::Refused(rejection)) => {
                        return Err(RunFailure::Refused(prepared.at, rejection));
                    }
                    Err(RowFailure::Db(err)) => return Err(RunFailure::Db(err)),
                }
            }
            Step::Statement(group) if group.policy.is_some() => {
                conflicts.extend(run_policy_set(conn, ctx, &group).await?);
            }
            Step::Statement(group) => match group.single_op() {
                None => run_combined(conn, &group).await?,
                Some(Op::Put) => {
                    sql::upsert(group.table, group.owned, &group.rows(Op::Put))
                        .execute(conn)
                        .await?;
                }
                Some(Op::Patch) => {
                    if let Some(mut statement) = sql::update(group.table, &group.rows(Op::Patch)) {
                        statement.sql.push_str(returning_id(ctx));
                        let touched = statement.fetch_text(conn).await?;
                        check_hidden_rows(conn, ctx, &group, touched).await?;
                    }
                }
                Some(Op::Delete) => {
                    let ids = group.entries.iter().map(|e| e.row.id.as_str()).collect();
                    let mut statement = sql::delete(group.table, ids);
                    statement.sql.push_str(returning_id(ctx));
                    let touched = statement.fetch_text(conn).await?;
                    check_hidden_rows(conn, ctx, &group, touched).await?;
                }
            },
        }
    }
    Ok(conflicts)
}

/// Checks and writes a group of policy entries a set at a time.
async fn run_policy_set(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    group: &super::plan::Group<'_, '_, '_>,
) -> Result<Vec<(Position, ConflictNote)>, RunFailure> {
    let Some(policy) = group.policy else {
        return Ok(Vec::new());
    };
    let entries: Vec<_> = group
        .entries
        .iter()
        .map(|p| (*p, &ctx.batch.transactions[p.at.0].entries[p.at.1]))
        .collect();
    Ok(policy::apply_set(
        conn,
        group.table,
        policy,
        &entries,
        ctx.user_id,
        ctx.client_id,
    )
    .await?)
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
    group: &super::plan::Group<'_, '_, '_>,
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
    group: &super::plan::Group<'_, '_, '_>,
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
    sqlx::query("RESET ROLE").execute(&mut *conn).await?;
    let existing: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT \"id\"::text FROM {} WHERE \"id\" = ANY($1::text[]::{}[])",
        quote_ident(&group.table.name),
        group.table.id_type
    ))
    .bind(&skipped)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role)))
        .execute(&mut *conn)
        .await?;
    match group.entries.iter().find(|e| existing.contains(&e.row.id)) {
        Some(entry) => Err(RunFailure::Refused(
            entry.at,
            Rejection::new(
                "forbidden",
                "row-level security hides this row from the user",
            ),
        )),
        None => Ok(()),
    }
}

/// A refusal as a rejection, with the entry's position when a policy named
/// it (a refused statement does not say which of its rows failed), or the
/// classified database failure.
fn refusal(failure: RunFailure) -> Result<(Option<Position>, Rejection), Failure> {
    match failure {
        RunFailure::Refused(at, rejection) => Ok((Some(at), rejection)),
        RunFailure::Unattributed(rejection) => Ok((None, rejection)),
        RunFailure::Db(err) => match classify(err) {
            Failure::Permanent(rejection) => Ok((None, rejection)),
            other => Err(other),
        },
    }
}

/// Applies a failed client transaction's entries one at a time inside a
/// savepoint: the first refused entry is the culprit and everything is
/// rolled back; if each entry applies, that is the reference result and it
/// is kept.
async fn one_at_a_time(
    conn: &mut PgConnection,
    ctx: &RunContext<'_, '_, '_>,
    runnable: &[&Prepared<'_, '_>],
) -> Result<TxOutcome, Failure> {
    let mut savepoint = conn.begin().await.map_err(classify)?;
    let mut conflicts = Vec::new();
    for prepared in runnable {
        match run(&mut savepoint, ctx, &[*prepared]).await {
            Ok(notes) => conflicts.extend(notes.into_iter().map(|(at, n)| (at.1, n))),
            Err(failure) => {
                let (_, rejection) = refusal(failure)?;
                savepoint.rollback().await.map_err(classify)?;
                return Ok(TxOutcome::Rejected {
                    culprit: prepared.at.1,
                    rejection,
                });
            }
        }
    }
    savepoint.commit().await.map_err(classify)?;
    Ok(TxOutcome::Applied { conflicts })
}

/// Runs one client transaction inside a savepoint.
async fn run_careful(
    conn: &mut PgConnection,
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
    let mut savepoint = conn.begin().await.map_err(classify)?;
    let failure = match run(&mut savepoint, ctx, &runnable).await {
        Ok(conflicts) => {
            savepoint.commit().await.map_err(classify)?;
            return Ok(TxOutcome::Applied {
                conflicts: conflicts.into_iter().map(|(at, n)| (at.1, n)).collect(),
            });
        }
        Err(failure) => failure,
    };
    savepoint.rollback().await.map_err(classify)?;
    match refusal(failure)? {
        // A policy named the entry itself.
        (Some(at), rejection) => Ok(TxOutcome::Rejected {
            culprit: at.1,
            rejection,
        }),
        (None, _) => one_at_a_time(conn, ctx, &runnable).await,
    }
}

/// Locks every existing row the batch will write, table by table in name
/// order and by id within a table. Statements lock their rows in id order,
/// but a batch writes tables and operations in the client's order, so two
/// batches touching the same rows in different orders would deadlock (and
/// wait out Postgres' deadlock_timeout before one is retried).
async fn lock_in_order(
    conn: &mut PgConnection,
    work: &[TxWork<'_, '_>],
) -> Result<(), sqlx::Error> {
    let mut by_table: std::collections::BTreeMap<&str, (&super::schema::Table, Vec<&str>)> =
        std::collections::BTreeMap::new();
    for prepared in work.iter().flat_map(TxWork::runnable) {
        by_table
            .entry(prepared.table.name.as_str())
            .or_insert((prepared.table, Vec::new()))
            .1
            .push(prepared.row.id.as_str());
    }
    for (table, mut ids) in by_table.into_values() {
        // An id that does not cast to the key's type would fail this
        // statement; its entry is refused later, by its own statement.
        let Some(castable) = table.id_parses else {
            continue;
        };
        ids.retain(|id| castable(id));
        ids.sort_unstable();
        ids.dedup();
        sqlx::query(&format!(
            "SELECT 1 FROM {} WHERE \"id\" = ANY($1::text[]::{}[]) ORDER BY \"id\" FOR UPDATE",
            quote_ident(&table.name),
            table.id_type
        ))
        // Unnamed, so never a generic plan, even in a batch that allows them.
        .persistent(false)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Runs the app's writes as `role` with the PostgREST request settings, so
/// row-level security policies written for PostgREST/Supabase hold.
async fn assume_role(
    conn: &mut PgConnection,
    role: &str,
    actor: &Actor<'_>,
) -> Result<(), Failure> {
    sqlx::query(
        "SELECT set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true)",
    )
    .bind(actor.claims.to_string())
    .bind(actor.user_id)
    .execute(&mut *conn)
    .await
    .map_err(classify)?;
    sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role)))
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    Ok(())
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
    let ctx = RunContext {
        batch,
        user_id: options.actor.user_id,
        client_id: batch.client_id.as_deref(),
        rls_role: options.rls_role,
    };
    // A batch of one statement locks its rows in id order already; one of
    // several statements takes its locks up front (see `lock_in_order`).
    let all: Vec<&Prepared> = work
        .iter()
        .filter(|w| w.first_refusal().is_none())
        .flat_map(TxWork::runnable)
        .collect();
    let steps = group(&all, options.rls_role.is_none());
    if lock_rows || steps.len() > 1 {
        lock_in_order(tx, &work).await.map_err(classify)?;
    }
    if let Some(role) = options.rls_role {
        assume_role(tx, role, &options.actor).await?;
    }

    let mut outcomes: Vec<TxOutcome> = Vec::with_capacity(work.len());
    match mode {
        Mode::Fast => {
            let conflicts = match run_steps(tx, &ctx, steps).await {
                Ok(conflicts) => conflicts,
                Err(RunFailure::Db(err)) => return Err(classify(err)),
                // Let the careful mode attribute it.
                Err(RunFailure::Refused(_, rejection) | RunFailure::Unattributed(rejection)) => {
                    return Err(Failure::Permanent(rejection));
                }
            };
            for (t, w) in work.iter().enumerate() {
                outcomes.push(match w.first_refusal() {
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
                });
            }
        }
        Mode::Careful => {
            for w in &work {
                outcomes.push(run_careful(tx, &ctx, w).await?);
            }
        }
    }
    if options.rls_role.is_some() {
        // uplink's own bookkeeping runs as uplink.
        sqlx::query("RESET ROLE")
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }

    let report = build_report(batch, &work, &outcomes);
    let recorded: Vec<_> = batch
        .transactions
        .iter()
        .zip(&outcomes)
        .flat_map(|(transaction, outcome)| match outcome {
            TxOutcome::Applied { conflicts } => conflicts
                .iter()
                .filter_map(|(e, note)| {
                    note.record
                        .as_ref()
                        .map(|r| (transaction.entries[*e].op_id, note.code, r))
                })
                .collect(),
            TxOutcome::Rejected { .. } => Vec::new(),
        })
        .collect();
    if !recorded.is_empty() {
        policy::record_conflicts(
            tx,
            &recorded,
            options.actor.user_id,
            batch.client_id.as_deref(),
        )
        .await
        .map_err(classify)?;
    }
    if let Some(max_per_user) = options.dead_letters {
        for (transaction, outcome) in batch.transactions.iter().zip(&outcomes) {
            if let TxOutcome::Rejected { culprit, rejection } = outcome {
                dead_letter::insert(
                    tx,
                    max_per_user,
                    options.actor.user_id,
                    batch.client_id.as_deref(),
                    transaction,
                    transaction.entries.get(*culprit).and_then(|e| e.op_id),
                    rejection,
                )
                .await?;
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

fn result_for(
    entry: &Entry<'_>,
    status: Status,
    code: &'static str,
    message: String,
) -> EntryResult {
    EntryResult {
        op_id: entry.op_id,
        table: entry.table.to_string(),
        id: entry.id.clone(),
        status,
        code: Some(code),
        message: Some(message),
        constraint_name: None,
        column: None,
    }
}

fn build_report(batch: &Batch<'_>, work: &[TxWork<'_, '_>], outcomes: &[TxOutcome]) -> Report {
    let mut report = Report::default();
    for ((transaction, w), outcome) in batch.transactions.iter().zip(work).zip(outcomes) {
        for (position, (entry, slot)) in transaction.entries.iter().zip(&w.entries).enumerate() {
            let Some(prepared) = slot else {
                report.duplicates += 1;
                report.results.push(result_for(
                    entry,
                    Status::Duplicate,
                    "duplicate",
                    "already applied (op_id at or below this client's progress)".to_owned(),
                ));
                continue;
            };
            match outcome {
                TxOutcome::Applied { conflicts } => {
                    let note = conflicts
                        .iter()
                        .find(|(e, _)| *e == position)
                        .map(|(_, n)| n);
                    let read_only = prepared
                        .as_ref()
                        .ok()
                        .map(|p| &p.read_only_hits)
                        .filter(|h| !h.is_empty());
                    match (note, read_only) {
                        (Some(note), _) => {
                            report.conflicts += 1;
                            report.results.push(result_for(
                                entry,
                                Status::Conflict,
                                note.code,
                                note.message.clone(),
                            ));
                        }
                        (None, Some(columns)) => {
                            report.conflicts += 1;
                            let mut result = result_for(
                                entry,
                                Status::Conflict,
                                "read_only_column",
                                format!(
                                    "read-only columns were not written ({}); the rest of the entry was applied",
                                    columns.join(", ")
                                ),
                            );
                            result.column = columns.first().cloned();
                            report.results.push(result);
                        }
                        (None, None) => report.applied += 1,
                    }
                }
                TxOutcome::Rejected { culprit, rejection } => {
                    report.rejected += 1;
                    if position == *culprit {
                        let mut result = result_for(
                            entry,
                            Status::Rejected,
                            rejection.code,
                            rejection.message.clone(),
                        );
                        result.constraint_name = rejection.constraint_name.clone();
                        result.column = rejection.column.clone();
                        report.results.push(result);
                    } else {
                        report.results.push(result_for(
                            entry,
                            Status::Rejected,
                            "transaction_rejected",
                            "another entry of this client transaction was rejected".to_owned(),
                        ));
                    }
                }
            }
        }
        report.end_transaction();
    }
    report
}

/// Checks deferred constraints per statement, so a violation is attributed
/// to its client transaction rather than failing the commit.
pub async fn check_constraints_immediately(conn: &mut PgConnection) -> Result<(), Failure> {
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(classify)
}
