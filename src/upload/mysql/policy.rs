//! Policy tables on MySQL, through the policy steps the Postgres path
//! shares (claim, check, decide): the rows are loaded under `FOR UPDATE`,
//! new ones inserted (a concurrent creator of the same id then fails on the
//! key and is checked against the winner's row). `apply_set` does this for
//! entries on distinct rows in a few statements; `apply_row` one entry at a
//! time, which also settles what a set leaves to the careful mode.

use sqlx::MySqlConnection;

use super::found::find;
use super::statements;
use crate::upload::batch::{Entry, Op};
use crate::upload::policy::{
    Policy, RowFailure, RowOutcome, Verdict, Write, by_columns, check_existing, check_new, claim,
    written_columns,
};
use crate::upload::prepared::Prepared;
use crate::upload::run::{Conflicts, RunFailure};
use crate::upload::schema::Table;
use crate::upload::sql::Row;

/// MySQL's "duplicate entry" error.
const DUPLICATE_KEY: u16 = 1062;

/// Applies one entry of a policy table.
pub async fn apply_row<'c>(
    conn: &mut MySqlConnection,
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, '_>,
    entry: &Entry<'_>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<RowOutcome, RowFailure> {
    let row = claim(table, policy, prepared, user_id, client_id)?;
    let current = match load(conn, table, &row.id).await? {
        Some(current) => current,
        // No row: PATCH and DELETE do nothing (deletes win); PUT inserts.
        None if prepared.op != Op::Put => return Ok(RowOutcome::Applied),
        None => {
            let new_row = check_new(policy, entry, row.clone())?;
            match insert(conn, table, prepared, &new_row).await {
                Ok(()) => return Ok(RowOutcome::Applied),
                Err(err) if is_duplicate(&err) => match load(conn, table, &row.id).await? {
                    // Another transaction created the id: check against its row.
                    Some(current) => current,
                    // Another unique key refused the row.
                    None => return Err(RowFailure::Db(err)),
                },
                Err(err) => return Err(RowFailure::Db(err)),
            }
        }
    };
    match check_existing(table, policy, prepared, entry, row, &current, user_id)? {
        Verdict::Keep(note) => Ok(RowOutcome::Conflict(note)),
        Verdict::Write(write, note) => {
            write_one(conn, table, prepared, &write).await?;
            Ok(note.map_or(RowOutcome::Applied, RowOutcome::Conflict))
        }
    }
}

fn is_duplicate(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| e.number() == DUPLICATE_KEY),
        _ => false,
    }
}

/// The row with `id` as JSON text, locked until the transaction ends.
async fn load(
    conn: &mut MySqlConnection,
    table: &Table,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let rows = statements::load(table, id).fetch_text(conn).await?;
    Ok(rows.into_iter().next().flatten())
}

async fn insert(
    conn: &mut MySqlConnection,
    table: &Table,
    prepared: &Prepared<'_, '_>,
    row: &Row<'_, '_>,
) -> Result<(), sqlx::Error> {
    let owned = written_columns(prepared, row);
    for statement in statements::insert(table, owned.as_deref(), &[row]) {
        statement.execute(conn).await?;
    }
    Ok(())
}

/// Writes one decided entry to its existing (locked) row.
async fn write_one(
    conn: &mut MySqlConnection,
    table: &Table,
    prepared: &Prepared<'_, '_>,
    write: &Write<'_, '_>,
) -> Result<(), sqlx::Error> {
    let row = &write.row;
    let statements = match prepared.op {
        Op::Delete => statements::delete(table, &[row.id.as_str()]),
        Op::Put => {
            let owned = written_columns(prepared, row);
            vec![statements::replace(table, owned.as_deref(), row)]
        }
        Op::Patch => statements::update(table, &[row]),
    };
    for statement in statements {
        statement.execute(conn).await?;
    }
    if let (Some(column), false) = (write.bump_version, prepared.op == Op::Delete) {
        for statement in statements::bump_version(table, column, &[row.id.as_str()]) {
            statement.execute(conn).await?;
        }
    }
    Ok(())
}

/// Entries of a policy table on distinct rows, a set at a time: claimed,
/// loaded under lock in one statement, checked and decided one by one,
/// then written in a few statements. A refusal is not attributed here: the
/// careful mode replays the entries one at a time (`apply_row`) to find the
/// one at fault, as it does for a new id another writer took meanwhile (the
/// insert fails on the key).
pub async fn apply_set<'c>(
    conn: &mut MySqlConnection,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[(&Prepared<'c, '_>, &Entry<'_>)],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Conflicts, RunFailure> {
    let unattributed = |failure: RowFailure| match failure {
        RowFailure::Refused(rejection) => RunFailure::Unattributed(rejection),
        RowFailure::Db(err) => RunFailure::Db(err),
    };
    let mut claimed = Vec::with_capacity(entries.len());
    for (prepared, entry) in entries {
        let row =
            claim(table, policy, prepared, user_id, client_id).map_err(RunFailure::Unattributed)?;
        claimed.push((*prepared, *entry, row));
    }
    let ids: Vec<&str> = claimed.iter().map(|(_, _, row)| row.id.as_str()).collect();
    let found = find(conn, table, &ids).await?;
    if found.shared {
        // Two ids name one row (`abc` and `ABC` on a `_ci` key): one entry
        // at a time, in the client's order.
        return apply_each(conn, table, policy, entries, user_id, client_id).await;
    }
    let mut conflicts = Vec::new();
    let mut writes = Vec::new();
    let mut inserts = Vec::new();
    for ((prepared, entry, row), current) in claimed.into_iter().zip(&found.rows) {
        match current {
            None if prepared.op != Op::Put => {}
            None => inserts.push((
                prepared,
                check_new(policy, entry, row).map_err(unattributed)?,
            )),
            Some(server) => {
                match check_existing(table, policy, prepared, entry, row, server, user_id)
                    .map_err(unattributed)?
                {
                    Verdict::Keep(note) => conflicts.push((prepared.at, note)),
                    Verdict::Write(write, note) => {
                        conflicts.extend(note.map(|note| (prepared.at, note)));
                        writes.push((prepared, write));
                    }
                }
            }
        }
    }
    write_set(conn, table, &writes).await?;
    for (owned, rows) in by_columns(inserts.iter().map(|(p, row)| (*p, row))) {
        for statement in statements::insert(table, owned.as_deref(), &rows) {
            statement.execute(conn).await?;
        }
    }
    Ok(conflicts)
}

/// The entries one at a time, in the client's order; a refusal is left to
/// the careful mode to attribute.
async fn apply_each<'c>(
    conn: &mut MySqlConnection,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[(&Prepared<'c, '_>, &Entry<'_>)],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Conflicts, RunFailure> {
    let mut ordered = entries.to_vec();
    ordered.sort_by_key(|(prepared, _)| prepared.at);
    let mut conflicts = Vec::new();
    for (prepared, entry) in ordered {
        match apply_row(conn, table, policy, prepared, entry, user_id, client_id).await {
            Ok(RowOutcome::Applied) => {}
            Ok(RowOutcome::Conflict(note)) => conflicts.push((prepared.at, note)),
            Err(RowFailure::Refused(rejection)) => return Err(RunFailure::Unattributed(rejection)),
            Err(RowFailure::Db(err)) => return Err(RunFailure::Db(err)),
        }
    }
    Ok(conflicts)
}

/// Writes decided entries to their existing (locked) rows, as `write_one`
/// does one by one: deletes, updates, replaces, then the version bumps.
async fn write_set(
    conn: &mut MySqlConnection,
    table: &Table,
    writes: &[(&Prepared<'_, '_>, Write<'_, '_>)],
) -> Result<(), sqlx::Error> {
    let of = |op: Op| writes.iter().filter(move |(p, _)| p.op == op);
    let deleted: Vec<&str> = of(Op::Delete).map(|(_, w)| w.row.id.as_str()).collect();
    let patched: Vec<&Row> = of(Op::Patch).map(|(_, w)| &w.row).collect();
    let mut statements = statements::delete(table, &deleted);
    statements.extend(statements::update(table, &patched));
    for (owned, rows) in by_columns(of(Op::Put).map(|(p, w)| (*p, &w.row))) {
        if table.rows_independent {
            statements.extend(statements::upsert(table, owned.as_deref(), &rows));
        } else {
            statements.extend(
                rows.into_iter()
                    .map(|row| statements::replace(table, owned.as_deref(), row)),
            );
        }
    }
    let bumped: Vec<&str> = writes
        .iter()
        .filter(|(p, w)| w.bump_version.is_some() && p.op != Op::Delete)
        .map(|(_, w)| w.row.id.as_str())
        .collect();
    if let Some(column) = writes.iter().find_map(|(_, w)| w.bump_version) {
        statements.extend(statements::bump_version(table, column, &bumped));
    }
    for statement in statements {
        statement.execute(conn).await?;
    }
    Ok(())
}
