//! One entry of a policy table at a time: for delta columns and field
//! timestamps (their write depends on the running value), and as the
//! reference the set-based path is tested against.

use super::check::{check_existing, check_new};
use super::guard::claim;
use super::resolve::Policy;
use super::verdict::{RowOutcome, Verdict, taken};
use super::write::{insert_one, write_one};
use crate::upload::backend::Backend;
use crate::upload::batch::{Entry, Op};
use crate::upload::failure::Failure;
use crate::upload::prepared::Prepared;
use crate::upload::row::Row;
use crate::upload::schema::Table;

/// Applies one entry of a policy table. `client_id` is the batch's client
/// id (delta columns need exactly-once delivery). A refusal names the entry.
pub async fn apply_row<'c>(
    conn: &mut impl Backend,
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, '_>,
    entry: &Entry<'_>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<RowOutcome, Failure> {
    let refused = |rejection| Failure::refused_at(Some(prepared.at), rejection);
    let row = claim(table, policy, prepared, user_id, client_id).map_err(refused)?;
    apply_claimed(conn, table, policy, prepared, entry, row, user_id).await
}

/// Applies an entry that passed `claim`: load, check, decide, write.
pub async fn apply_claimed<'c, 'a>(
    conn: &mut impl Backend,
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    row: Row<'c, 'a>,
    user_id: &str,
) -> Result<RowOutcome, Failure> {
    let refused = |rejection| Failure::refused_at(Some(prepared.at), rejection);
    // The current row, locked until the transaction ends; or, for a PUT of
    // a new id, the row it inserts. The insert is the owner check's other
    // half: two writers of one new id serialise on its key, and the one that
    // does not insert it is checked against the row the other one wrote.
    let mut lost_race = false;
    let current = loop {
        if let Some(current) = load(conn, table, &row.id).await? {
            break current;
        }
        // No row: PATCH and DELETE do nothing (deletes win); PUT inserts.
        if prepared.op != Op::Put {
            return Ok(RowOutcome::Applied);
        }
        if lost_race {
            return Err(refused(taken(table, &row.id)));
        }
        let new_row = check_new(policy, entry, row.clone()).map_err(refused)?;
        if insert_one(conn, table, prepared, &new_row).await? {
            return Ok(RowOutcome::Applied);
        }
        // Another transaction inserted the id since the read: check against its row.
        lost_race = true;
    };
    match check_existing(table, policy, prepared, entry, row, &current, user_id).map_err(refused)? {
        Verdict::Keep(note) => Ok(RowOutcome::Conflict(note)),
        Verdict::Write(write, note) => {
            write_one(conn, table, prepared, &write).await?;
            Ok(note.map_or(RowOutcome::Applied, RowOutcome::Conflict))
        }
    }
}

/// The row with `id` as JSON text, locked until the transaction ends.
async fn load(conn: &mut impl Backend, table: &Table, id: &str) -> Result<Option<String>, Failure> {
    let locked = conn.lock_rows(table, &[id]).await?;
    Ok(locked
        .and_then(|mut rows| rows.pop())
        .and_then(|row| row.current))
}
