//! Set-based statements over the app's tables. Every identifier comes from the
//! introspected catalogue and is quoted here; every value travels in the one
//! bound JSON parameter, which Postgres converts with `jsonb_populate_record`.

use std::borrow::Cow;
use std::fmt::Write;

use super::schema::{Column, Table};

/// A row of a statement: its id and the (coerced) values it sets.
#[derive(Debug, Clone)]
pub struct Row<'c, 'a> {
    pub id: String,
    pub values: Vec<(&'c Column, Cow<'a, str>)>,
}

impl Row<'_, '_> {
    fn has(&self, column: &str) -> bool {
        self.values.iter().any(|(c, _)| c.name == column)
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The JSON array bound as `$1`: `[{"id": …, "col": value, …}, …]`.
pub fn rows_param(rows: &[&Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 128);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        push_json_string(&mut out, &row.id);
        for (column, value) in &row.values {
            out.push(',');
            push_json_string(&mut out, &column.name);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
    }
    out.push(']');
    out
}

fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&json_string(text));
}

/// A JSON string literal for `text`.
pub fn json_string(text: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// PUT: insert or replace. `owned` lists the client-owned columns when the
/// table declares them: absent ones then become their DEFAULT on replace
/// too. Without a declaration, the statement covers exactly the columns the
/// rows carry (callers group rows by their column set) and absent columns
/// keep their server value on replace.
pub fn upsert(table: &Table, owned: Option<&[&Column]>, rows: &[&Row]) -> String {
    upsert_at(table, owned, rows, 1, None)
}

fn upsert_at(
    table: &Table,
    owned: Option<&[&Column]>,
    rows: &[&Row],
    param: usize,
    guard: Option<&str>,
) -> String {
    let (mut sql, columns) = insert_select(table, owned, rows, param, guard);
    sql.push_str(" ON CONFLICT (\"id\") DO ");
    if columns.is_empty() {
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

/// PUT into an insert-only table: new ids only; an existing row is left as it is.
pub fn insert_new(table: &Table, owned: Option<&[&Column]>, rows: &[&Row]) -> String {
    let (sql, _) = insert_select(table, owned, rows, 1, None);
    sql + " ON CONFLICT (\"id\") DO NOTHING"
}

/// `INSERT INTO t (id, …) SELECT … FROM $param`, and the columns it sets.
fn insert_select<'c>(
    table: &Table,
    owned: Option<&[&'c Column]>,
    rows: &[&Row<'c, '_>],
    param: usize,
    guard: Option<&str>,
) -> (String, Vec<&'c Column>) {
    let t = quote_ident(&table.name);
    let columns: Vec<&Column> = match owned {
        Some(owned) => owned.to_vec(),
        None => rows
            .first()
            .map(|r| r.values.iter().map(|(c, _)| *c).collect())
            .unwrap_or_default(),
    };
    let mut sql = format!("INSERT INTO {t} AS t (\"id\"");
    for column in &columns {
        let _ = write!(sql, ", {}", quote_ident(&column.name));
    }
    sql.push_str(") SELECT r.\"id\"");
    let mut per_row_presence = false;
    for column in &columns {
        let c = quote_ident(&column.name);
        let in_all = rows.iter().all(|r| r.has(&column.name));
        let in_none = !rows.iter().any(|r| r.has(&column.name));
        let default = column.default.as_deref().unwrap_or("NULL");
        if in_all {
            let _ = write!(sql, ", r.{c}");
        } else if in_none {
            let _ = write!(sql, ", {default}");
        } else {
            per_row_presence = true;
            let _ = write!(
                sql,
                ", CASE WHEN x.j ? {} THEN r.{c} ELSE {default} END",
                quote_literal(&column.name)
            );
        }
    }
    if per_row_presence {
        let _ = write!(
            sql,
            " FROM jsonb_array_elements(${param}::jsonb) AS x(j) \
             CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, x.j) AS r"
        );
    } else {
        // Every row carries the same columns: one conversion call for all.
        let _ = write!(
            sql,
            " FROM jsonb_populate_recordset(NULL::{t}, ${param}::jsonb) AS r"
        );
    }
    if let Some(guard) = guard {
        let _ = write!(sql, " WHERE {guard}");
    }
    (sql, columns)
}

/// PATCH: set exactly the given columns of existing rows; missing rows are
/// left alone. Each row keeps the server value of columns it does not carry.
pub fn update(table: &Table, rows: &[&Row]) -> Option<String> {
    update_at(table, rows, 1, None)
}

fn update_at(table: &Table, rows: &[&Row], param: usize, guard: Option<&str>) -> Option<String> {
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
    let t = quote_ident(&table.name);
    let list = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let picked = columns
        .iter()
        .map(|c| format!("p.{}", quote_ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    // Postgres guesses 100 rows for jsonb_array_elements. For a few rows
    // against a table whose statistics say "empty" (just created, or not yet
    // re-analysed), that makes a hash join over a full scan look cheaper than
    // index lookups, and every PATCH then scans the whole table. A LIMIT of
    // the row count rounded up to a power of two (few distinct statements
    // to cache, never fewer than the rows) gives the planner the real size.
    let limit = rows.len().max(1).next_power_of_two();
    let guard = guard.map(|g| format!(" AND {g}")).unwrap_or_default();
    let uniform = rows
        .iter()
        .all(|r| r.values.len() == columns.len() && columns.iter().all(|c| r.has(&c.name)));
    if uniform {
        // Every row sets the same columns: one conversion call for all.
        let values = columns
            .iter()
            .map(|c| format!("x.{}", quote_ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!(
            "UPDATE {t} AS t SET ({list}) = ROW({values}) \
             FROM (SELECT * FROM jsonb_populate_recordset(NULL::{t}, ${param}::jsonb) LIMIT {limit}) AS x \
             WHERE t.\"id\" = x.\"id\"{guard}"
        ));
    }
    Some(format!(
        "UPDATE {t} AS t SET ({list}) = (SELECT {picked} FROM jsonb_populate_record(t, x.j) AS p) \
         FROM (SELECT e.j FROM jsonb_array_elements(${param}::jsonb) AS e(j) LIMIT {limit}) AS x(j) \
         WHERE t.\"id\" = (x.j->>'id')::{}{guard}",
        table.id_type,
    ))
}

/// DELETE by ids bound as `$1` (a text array).
pub fn delete(table: &Table) -> String {
    delete_at(table, 1, None)
}

fn delete_at(table: &Table, param: usize, guard: Option<&str>) -> String {
    format!(
        "DELETE FROM {} AS t WHERE t.\"id\" = ANY(${param}::text[]::{}[]){}",
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
/// cannot deadlock on them. Returns the statement and its parameters in order:
/// all ids, then delete ids, patch rows and put rows for the parts present.
pub fn combined(
    table: &Table,
    owned: Option<&[&Column]>,
    parts: &Combined,
) -> (String, Vec<Param>) {
    let t = quote_ident(&table.name);
    let mut ids: Vec<&str> = parts
        .puts
        .iter()
        .chain(&parts.patches)
        .chain(&parts.deletes)
        .map(|r| r.id.as_str())
        .collect();
    ids.sort_unstable();
    let guard = "(SELECT count(*) FROM l) >= 0";
    let mut sql = format!(
        "WITH l AS (SELECT 1 FROM {t} WHERE \"id\" = ANY($1::text[]::{}[]) ORDER BY \"id\" FOR UPDATE)",
        table.id_type
    );
    let mut params = vec![Param::Ids(ids.into_iter().map(str::to_owned).collect())];
    if !parts.deletes.is_empty() {
        params.push(Param::Ids(
            parts.deletes.iter().map(|r| r.id.clone()).collect(),
        ));
        let _ = write!(
            sql,
            ", d AS ({})",
            delete_at(table, params.len(), Some(guard))
        );
    }
    if let Some(update) = update_at(table, &parts.patches, params.len() + 1, Some(guard)) {
        params.push(Param::Rows(rows_param(&parts.patches)));
        let _ = write!(sql, ", u AS ({update})");
    }
    if !parts.puts.is_empty() {
        params.push(Param::Rows(rows_param(&parts.puts)));
        let _ = write!(
            sql,
            ", i AS ({})",
            upsert_at(table, owned, &parts.puts, params.len(), Some(guard))
        );
    }
    sql.push_str(" SELECT 1");
    (sql, params)
}

/// A bound parameter of `combined`.
pub enum Param {
    Ids(Vec<String>),
    Rows(String),
}
