//! Set-based writes of the app's rows. A statement's rows travel column by
//! column, one text array each, unnested and cast to the column's type:
//! Postgres parses each value with the type's own input function, as it
//! would a literal.

use std::fmt::Write;

use super::statement::{Binds, Statement, quote_ident};
use crate::upload::row::Row;
use crate::upload::schema::{Column, Table};

/// How the rows of a statement carry one of its columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carried {
    All,
    /// Some rows do: `u.p{i}` says which.
    Some,
    None,
}

/// The rows as a relation `u("id", v0, p0, v1, …)`: the id, then per column
/// `v{i}` (its text) and, when only some rows carry it, `p{i}` (whether the
/// row does).
struct Source {
    from: String,
    carried: Vec<Carried>,
}

impl Source {
    fn new<'p>(binds: &mut Binds<'p>, columns: &[&Column], rows: &[&'p Row]) -> Self {
        let mut arrays = vec![binds.text(rows.iter().map(|r| Some(&*r.id)).collect())];
        let mut names = vec!["\"id\"".to_owned()];
        let mut carried = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let values: Vec<Option<Option<&'p str>>> =
                rows.iter().map(|r| r.value(&column.name)).collect();
            let how = if values.iter().all(Option::is_some) {
                Carried::All
            } else if values.iter().all(Option::is_none) {
                Carried::None
            } else {
                Carried::Some
            };
            if how != Carried::None {
                let flags: Vec<bool> = values.iter().map(Option::is_some).collect();
                arrays.push(binds.text(values.into_iter().map(Option::flatten).collect()));
                names.push(format!("v{i}"));
                if how == Carried::Some {
                    arrays.push(binds.flags(flags));
                    names.push(format!("p{i}"));
                }
            }
            carried.push(how);
        }
        Self {
            from: format!("unnest({}) AS u({})", arrays.join(", "), names.join(", ")),
            carried,
        }
    }

    /// Column `i`'s value, cast to the column's type.
    fn value(i: usize, column: &Column) -> String {
        format!("u.v{i}::{}", column.cast_type)
    }

    /// What column `i` becomes where a row does not carry it: `otherwise`.
    fn value_or(&self, i: usize, column: &Column, otherwise: &str) -> String {
        match self.carried[i] {
            Carried::All => Self::value(i, column),
            Carried::Some => format!(
                "CASE WHEN u.p{i} THEN {} ELSE {otherwise} END",
                Self::value(i, column)
            ),
            Carried::None => otherwise.to_owned(),
        }
    }
}

/// PUT: insert or replace. `owned` lists the client-owned columns when the
/// table declares them: absent ones then become their DEFAULT on replace
/// too. Without a declaration, the statement covers exactly the columns the
/// rows carry (callers group rows by their column set) and absent columns
/// keep their server value on replace.
pub fn upsert<'p>(table: &Table, owned: Option<&[&Column]>, rows: &[&'p Row]) -> Statement<'p> {
    let mut binds = Binds::default();
    let sql = insert_sql(&mut binds, table, owned, rows, None, true);
    binds.insert(sql)
}

/// PUT of new ids: an existing row is left as it is. Returns the ids it
/// inserted, so the caller learns which rows another writer had taken.
pub fn insert_new<'p>(table: &Table, owned: Option<&[&Column]>, rows: &[&'p Row]) -> Statement<'p> {
    let mut binds = Binds::default();
    let mut sql = insert_sql(&mut binds, table, owned, rows, None, false);
    sql.push_str(" RETURNING t.\"id\"::text");
    binds.insert(sql)
}

/// `INSERT INTO t (id, …) SELECT … FROM unnest(…) [WHERE guard]`; an
/// existing row is replaced or, without `replace`, left as it is.
fn insert_sql<'p>(
    binds: &mut Binds<'p>,
    table: &Table,
    owned: Option<&[&Column]>,
    rows: &[&'p Row],
    guard: Option<&str>,
    replace: bool,
) -> String {
    let columns: Vec<&Column> = match owned {
        Some(owned) => owned.to_vec(),
        None => rows
            .first()
            .map(|r| r.values.iter().map(|(c, _)| *c).collect())
            .unwrap_or_default(),
    };
    let source = Source::new(binds, &columns, rows);
    let mut sql = format!("INSERT INTO {} AS t (\"id\"", quote_ident(&table.name));
    for column in &columns {
        let _ = write!(sql, ", {}", quote_ident(&column.name));
    }
    let _ = write!(sql, ") SELECT u.\"id\"::{}", table.id_type);
    for (i, column) in columns.iter().enumerate() {
        let default = column.default.as_deref().unwrap_or("NULL");
        let _ = write!(sql, ", {}", source.value_or(i, column, default));
    }
    let _ = write!(sql, " FROM {}", source.from);
    if let Some(guard) = guard {
        let _ = write!(sql, " WHERE {guard}");
    }
    sql.push_str(" ON CONFLICT (\"id\") DO ");
    if !replace || columns.is_empty() {
        sql.push_str("NOTHING");
    } else {
        sql.push_str("UPDATE SET ");
        for (i, column) in columns.iter().enumerate() {
            let c = quote_ident(&column.name);
            let _ = write!(sql, "{}{c} = EXCLUDED.{c}", if i > 0 { ", " } else { "" });
        }
    }
    sql
}

/// PATCH: set exactly the given columns of existing rows; missing rows are
/// left alone. Each row keeps the server value of columns it does not carry.
pub fn update<'p>(table: &Table, rows: &[&'p Row]) -> Option<Statement<'p>> {
    let mut binds = Binds::default();
    let sql = update_sql(&mut binds, table, rows, None)?;
    Some(binds.lookup(sql))
}

fn update_sql<'p>(
    binds: &mut Binds<'p>,
    table: &Table,
    rows: &[&'p Row],
    guard: Option<&str>,
) -> Option<String> {
    let mut columns: Vec<&Column> = Vec::new();
    for row in rows {
        for (column, _) in &row.values {
            if !columns.iter().any(|c| c.name == column.name) {
                columns.push(column);
            }
        }
    }
    if columns.is_empty() {
        return None;
    }
    // The planner sees the arrays' lengths (custom plans), so a few rows
    // are looked up by key even in a table analysed while empty.
    let source = Source::new(binds, &columns, rows);
    let list = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let values = columns
        .iter()
        .enumerate()
        .map(|(i, c)| source.value_or(i, c, &format!("t.{}", quote_ident(&c.name))))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "UPDATE {} AS t SET ({list}) = ROW({values}) FROM {} WHERE t.\"id\" = u.\"id\"::{}{}",
        quote_ident(&table.name),
        source.from,
        table.id_type,
        guard.map(|g| format!(" AND {g}")).unwrap_or_default()
    ))
}

/// DELETE the rows with these ids.
pub fn delete<'p>(table: &Table, ids: Vec<&'p str>) -> Statement<'p> {
    let mut binds = Binds::default();
    let sql = delete_sql(&mut binds, table, ids, None);
    binds.lookup(sql)
}

fn delete_sql<'p>(
    binds: &mut Binds<'p>,
    table: &Table,
    ids: Vec<&'p str>,
    guard: Option<&str>,
) -> String {
    let ids = binds.text(ids.into_iter().map(Some).collect());
    format!(
        "DELETE FROM {} AS t WHERE t.\"id\" = ANY({ids}::{}[]){}",
        quote_ident(&table.name),
        table.id_type,
        guard.map(|g| format!(" AND {g}")).unwrap_or_default()
    )
}

/// Rows of one table, each touched by one operation, for `combined`.
pub struct Combined<'r, 'c, 'a> {
    pub puts: Vec<&'r Row<'c, 'a>>,
    pub patches: Vec<&'r Row<'c, 'a>>,
    pub deletes: Vec<&'r Row<'c, 'a>>,
}

/// PUTs, PATCHes and DELETEs of distinct rows of one table as one statement
/// (data-modifying CTEs). The parts see the same snapshot, which equals
/// applying them one after another only because every row is touched once
/// and the table has no constraint or trigger that relates its rows (the
/// caller checks `Table::rows_independent`). The first CTE locks every
/// existing row in id order before any part writes, so concurrent batches
/// cannot deadlock on them.
pub fn combined<'p>(
    table: &Table,
    owned: Option<&[&Column]>,
    parts: &Combined<'p, '_, '_>,
) -> Statement<'p> {
    let mut binds = Binds::default();
    let mut ids: Vec<&str> = parts
        .puts
        .iter()
        .chain(&parts.patches)
        .chain(&parts.deletes)
        .map(|r| &*r.id)
        .collect();
    ids.sort_unstable();
    let guard = "(SELECT count(*) FROM l) >= 0";
    let mut sql = format!(
        "WITH l AS (SELECT 1 FROM {} WHERE \"id\" = ANY({}::{}[]) ORDER BY \"id\" FOR UPDATE)",
        quote_ident(&table.name),
        binds.text(ids.into_iter().map(Some).collect()),
        table.id_type
    );
    if !parts.deletes.is_empty() {
        let ids = parts.deletes.iter().map(|r| &*r.id).collect();
        let _ = write!(
            sql,
            ", deleted AS ({})",
            delete_sql(&mut binds, table, ids, Some(guard))
        );
    }
    if let Some(update) = update_sql(&mut binds, table, &parts.patches, Some(guard)) {
        let _ = write!(sql, ", patched AS ({update})");
    }
    if !parts.puts.is_empty() {
        let _ = write!(
            sql,
            ", put AS ({})",
            insert_sql(&mut binds, table, owned, &parts.puts, Some(guard), true)
        );
    }
    sql.push_str(" SELECT 1");
    binds.lookup(sql)
}
