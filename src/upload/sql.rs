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
    // Serializing a &str cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// PUT: insert or replace. `owned` lists the client-owned columns when the
/// table declares them: absent ones then become their DEFAULT on replace
/// too. Without a declaration, the statement covers exactly the columns the
/// rows carry (callers group rows by their column set) and absent columns
/// keep their server value on replace.
pub fn upsert(table: &Table, owned: Option<&[&Column]>, rows: &[&Row]) -> String {
    let (mut sql, columns) = insert_select(table, owned, rows);
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
    let (sql, _) = insert_select(table, owned, rows);
    sql + " ON CONFLICT (\"id\") DO NOTHING"
}

/// `INSERT INTO t (id, …) SELECT … FROM $1`, and the columns it sets.
fn insert_select<'c>(
    table: &Table,
    owned: Option<&[&'c Column]>,
    rows: &[&Row<'c, '_>],
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
            let _ = write!(
                sql,
                ", CASE WHEN x.j ? {} THEN r.{c} ELSE {default} END",
                quote_literal(&column.name)
            );
        }
    }
    let _ = write!(
        sql,
        " FROM jsonb_array_elements($1::jsonb) AS x(j) \
         CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, x.j) AS r"
    );
    (sql, columns)
}

/// PATCH: set exactly the given columns of existing rows; missing rows are
/// left alone. Each row keeps the server value of columns it does not carry.
pub fn update(table: &Table, rows: &[&Row]) -> Option<String> {
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
    Some(format!(
        "UPDATE {t} AS t SET ({list}) = (SELECT {picked} FROM jsonb_populate_record(t, x.j) AS p) \
         FROM (SELECT e.j FROM jsonb_array_elements($1::jsonb) AS e(j) LIMIT {limit}) AS x(j) \
         WHERE t.\"id\" = (x.j->>'id')::{}",
        table.id_type
    ))
}

/// DELETE by ids bound as `$1` (a text array).
pub fn delete(table: &Table) -> String {
    format!(
        "DELETE FROM {} WHERE \"id\" = ANY($1::text[]::{}[])",
        quote_ident(&table.name),
        table.id_type
    )
}
