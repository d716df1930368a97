//! The write step: decided writes and new rows, one at a time or a set at a
//! time (deletes, updates, replacing upserts, then the version bumps).

use std::collections::BTreeSet;

use super::verdict::Write;
use crate::upload::backend::Backend;
use crate::upload::batch::Op;
use crate::upload::failure::Failure;
use crate::upload::prepared::Prepared;
use crate::upload::row::Row;
use crate::upload::schema::{Column, Table};

/// A decided write with the entry it came from.
pub struct Decided<'p, 'c, 'a> {
    pub prepared: &'p Prepared<'c, 'a>,
    pub write: Write<'c, 'a>,
}

/// A PUT of an id that had no row.
pub struct Insert<'p, 'c, 'a, 'b> {
    pub prepared: &'p Prepared<'c, 'a>,
    pub entry: &'b crate::upload::batch::Entry<'a>,
    /// The id as the database prints the key (`Locked::key`).
    pub key: String,
    /// The row as claimed, to check against a row that appears meanwhile.
    pub claimed: Row<'c, 'a>,
    /// The row to insert.
    pub row: Row<'c, 'a>,
}

/// The columns a PUT writes: the table's client-owned columns plus those the
/// policy fills in (owner, per-field times), which the declaration may not
/// list; `None` when the table declares none.
pub fn written_columns<'c>(
    prepared: &Prepared<'c, '_>,
    row: &Row<'c, '_>,
) -> Option<Vec<&'c Column>> {
    prepared.owned.map(|owned| {
        let mut columns = owned.to_vec();
        for (column, _) in &row.values {
            if !columns.iter().any(|c| c.name == column.name) {
                columns.push(*column);
            }
        }
        columns
    })
}

/// Inserts a new row unless another transaction inserted its id first;
/// whether it did.
pub async fn insert_one(
    conn: &mut impl Backend,
    table: &Table,
    prepared: &Prepared<'_, '_>,
    row: &Row<'_, '_>,
) -> Result<bool, Failure> {
    let owned = written_columns(prepared, row);
    let inserted = conn.insert_new(table, owned.as_deref(), &[row]).await?;
    Ok(!inserted.is_empty())
}

/// Writes one decided entry to its existing (locked) row.
pub async fn write_one(
    conn: &mut impl Backend,
    table: &Table,
    prepared: &Prepared<'_, '_>,
    write: &Write<'_, '_>,
) -> Result<(), Failure> {
    let row = &write.row;
    match prepared.op {
        Op::Delete => return conn.delete(table, &[&*row.id]).await,
        Op::Put => {
            let owned = written_columns(prepared, row);
            conn.replace(table, owned.as_deref(), &[row]).await?;
        }
        Op::Patch => {
            conn.update(table, &[row]).await?;
            for delta in &write.deltas {
                conn.add_delta(table, delta.column, &row.id, &delta.new, &delta.previous)
                    .await?;
            }
        }
    }
    if let Some(column) = write.bump_version {
        conn.bump_versions(table, column, &[&*row.id]).await?;
    }
    Ok(())
}

/// Writes decided entries to their existing (locked) rows, as `write_one`
/// does one by one: deletes, updates, replacements, then the version bumps.
pub async fn write_set(
    conn: &mut impl Backend,
    table: &Table,
    writes: &[Decided<'_, '_, '_>],
) -> Result<(), Failure> {
    let of = |op: Op| writes.iter().filter(move |w| w.prepared.op == op);
    let deleted: Vec<&str> = of(Op::Delete).map(|w| &*w.write.row.id).collect();
    if !deleted.is_empty() {
        conn.delete(table, &deleted).await?;
    }
    // PATCH {} writes nothing (it would still fire update triggers).
    let patched: Vec<&Row> = of(Op::Patch)
        .map(|w| &w.write.row)
        .filter(|r| !r.values.is_empty())
        .collect();
    if !patched.is_empty() {
        conn.update(table, &patched).await?;
    }
    for (owned, rows) in by_columns(of(Op::Put).map(|w| (w.prepared, &w.write.row))) {
        conn.replace(table, owned.as_deref(), &rows).await?;
    }
    let bumped: Vec<&str> = writes
        .iter()
        .filter(|w| w.write.bump_version.is_some() && w.prepared.op != Op::Delete)
        .map(|w| &*w.write.row.id)
        .collect();
    if let Some(column) = writes.iter().find_map(|w| w.write.bump_version)
        && !bumped.is_empty()
    {
        conn.bump_versions(table, column, &bumped).await?;
    }
    Ok(())
}

/// Inserts the rows of PUTs of ids that had no row; returns the keys
/// inserted (another transaction may have taken the others meanwhile).
pub async fn insert_set(
    conn: &mut impl Backend,
    table: &Table,
    inserts: &[Insert<'_, '_, '_, '_>],
) -> Result<BTreeSet<String>, Failure> {
    let mut inserted = BTreeSet::new();
    for (owned, rows) in by_columns(inserts.iter().map(|i| (i.prepared, &i.row))) {
        inserted.extend(conn.insert_new(table, owned.as_deref(), &rows).await?);
    }
    Ok(inserted)
}

/// The columns a statement writes (see `written_columns`) and its rows.
pub type ColumnSet<'r, 'c, 'a> = (Option<Vec<&'c Column>>, Vec<&'r Row<'c, 'a>>);

/// PUT rows grouped by the columns they write: one statement per column set.
pub fn by_columns<'r, 'c, 'a>(
    rows: impl Iterator<Item = (&'r Prepared<'c, 'a>, &'r Row<'c, 'a>)>,
) -> Vec<ColumnSet<'r, 'c, 'a>>
where
    'c: 'r,
    'a: 'r,
{
    let mut sets: Vec<(BTreeSet<&str>, ColumnSet<'r, 'c, 'a>)> = Vec::new();
    for (prepared, row) in rows {
        let columns = written_columns(prepared, row);
        let key: BTreeSet<&str> = match &columns {
            Some(columns) => columns.iter().map(|c| c.name.as_str()).collect(),
            None => row.values.iter().map(|(c, _)| c.name.as_str()).collect(),
        };
        match sets.iter_mut().find(|(k, _)| *k == key) {
            Some((_, (_, rows))) => rows.push(row),
            None => sets.push((key, (columns, vec![row]))),
        }
    }
    sets.into_iter().map(|(_, set)| set).collect()
}
