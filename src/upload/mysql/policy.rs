//! Policy tables on MySQL, one entry at a time, through the policy steps
//! the Postgres path shares (claim, check, decide): load the row under
//! `FOR UPDATE`, or insert a new one (a concurrent creator of the same id
//! then fails on the key and is checked against the winner's row).

use sqlx::MySqlConnection;

use super::statements;
use crate::upload::batch::{Entry, Op};
use crate::upload::policy::{
    Policy, RowFailure, RowOutcome, Verdict, Write, check_existing, check_new, claim,
    written_columns,
};
use crate::upload::prepared::Prepared;
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
