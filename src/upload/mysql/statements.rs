//! Every statement on the app's tables in MySQL. Identifiers come from the
//! introspected catalogue and are quoted; values are bound as text, which
//! MySQL converts to the column's type (strict mode refuses what does not
//! fit). A statement's rows are split into chunks that stay under MySQL's
//! limits on placeholders and packet size.

use std::borrow::Cow;
use std::fmt::Write;

use sqlx::mysql::MySqlArguments;
use sqlx::{Arguments, MySqlConnection};

use crate::upload::row::Row;
use crate::upload::schema::{Column, MySqlKind, Table, ValueKind};

/// At most this many placeholders per statement (MySQL allows 65 535).
const MAX_PARAMS: usize = 60_000;
/// At most this many bytes of values per statement (well under the
/// smallest default `max_allowed_packet`, 16 MiB).
const MAX_BYTES: usize = 8 << 20;

/// A statement and its text parameters, in placeholder order.
pub struct Statement<'p> {
    sql: String,
    params: Vec<Option<Cow<'p, str>>>,
}

impl<'p> Statement<'p> {
    fn new() -> Self {
        Self {
            sql: String::new(),
            params: Vec::new(),
        }
    }

    /// Binds a value; returns its placeholder for a column of `kind`.
    fn bind(&mut self, value: Option<Cow<'p, str>>, kind: ValueKind) -> &'static str {
        self.params.push(value);
        match kind {
            ValueKind::MySql(MySqlKind::BinaryUuid) => "UNHEX(?)",
            _ => "?",
        }
    }

    /// Binds a row id of `table`.
    fn bind_id(&mut self, table: &Table, id: &'p str) -> &'static str {
        let kind = id_kind(table);
        let id = match kind {
            ValueKind::MySql(MySqlKind::BinaryUuid) => uuid::Uuid::parse_str(id)
                .map_or(Cow::Borrowed(id), |u| Cow::Owned(u.simple().to_string())),
            _ => Cow::Borrowed(id),
        };
        self.bind(Some(id), kind)
    }

    pub async fn execute(&self, conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
        sqlx::query_with(&self.sql, self.arguments()?)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Runs the statement; its two text columns, per returned row.
    pub async fn fetch_rows(
        &self,
        conn: &mut MySqlConnection,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as_with(&self.sql, self.arguments()?)
            .fetch_all(conn)
            .await
    }

    fn arguments(&self) -> Result<MySqlArguments, sqlx::Error> {
        let mut arguments = MySqlArguments::default();
        for param in &self.params {
            arguments
                .add(param.as_deref())
                .map_err(sqlx::Error::Encode)?;
        }
        Ok(arguments)
    }
}

fn id_kind(table: &Table) -> ValueKind {
    table.column("id").map_or(ValueKind::Other, |c| c.kind)
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Splits `rows` into runs whose statements stay under the limits; each row
/// needs `params` placeholders.
fn chunks<T>(rows: &[T], params: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let (mut count, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let row_bytes = size(row);
        if i > start && (count + params > MAX_PARAMS || bytes + row_bytes > MAX_BYTES) {
            out.push(&rows[start..i]);
            start = i;
            (count, bytes) = (0, 0);
        }
        count += params;
        bytes += row_bytes;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

fn row_bytes(row: &&Row) -> usize {
    row.id.len()
        + row
            .values
            .iter()
            .map(|(_, v)| v.as_deref().map_or(0, str::len))
            .sum::<usize>()
}

/// The columns a PUT statement writes: the declared ones, else those the
/// first row carries (callers group rows by their column set).
fn put_columns<'c>(owned: Option<&[&'c Column]>, rows: &[&Row<'c, '_>]) -> Vec<&'c Column> {
    match owned {
        Some(owned) => owned.to_vec(),
        None => rows
            .first()
            .map(|r| r.values.iter().map(|(c, _)| *c).collect())
            .unwrap_or_default(),
    }
}

/// `INSERT INTO t (id, …) VALUES (…), …`: a column a row does not carry is
/// its DEFAULT.
fn insert_sql<'p>(table: &Table, columns: &[&Column], rows: &[&'p Row<'_, '_>]) -> Statement<'p> {
    let mut statement = Statement::new();
    let _ = write!(statement.sql, "INSERT INTO {} (`id`", quote(&table.name));
    for column in columns {
        let _ = write!(statement.sql, ", {}", quote(&column.name));
    }
    statement.sql.push_str(") VALUES ");
    for (r, row) in rows.iter().enumerate() {
        let id = statement.bind_id(table, &row.id);
        let mut tuple = format!("{}({id}", if r > 0 { ", " } else { "" });
        for column in columns {
            match row.value(&column.name) {
                Some(value) => {
                    let placeholder = statement.bind(value.map(Cow::Borrowed), column.kind);
                    let _ = write!(tuple, ", {placeholder}");
                }
                None => tuple.push_str(", DEFAULT"),
            }
        }
        tuple.push(')');
        statement.sql.push_str(&tuple);
    }
    statement
}

/// PUT: insert or replace. With declared columns (`owned`) absent ones
/// become their DEFAULT on replace too; without, a replace keeps the server
/// value of columns the rows do not carry. Only for tables whose one unique
/// key is `id` (`Table::id_is_only_key`): MySQL would update the row
/// another unique key matches.
pub fn upsert<'p>(
    table: &Table,
    owned: Option<&[&Column]>,
    rows: &[&'p Row<'_, '_>],
) -> Vec<Statement<'p>> {
    let columns = put_columns(owned, rows);
    chunks(rows, columns.len() + 1, row_bytes)
        .into_iter()
        .map(|rows| {
            let mut statement = insert_sql(table, &columns, rows);
            statement.sql.push_str(" ON DUPLICATE KEY UPDATE ");
            if columns.is_empty() {
                statement.sql.push_str("`id` = `id`");
            }
            for (i, column) in columns.iter().enumerate() {
                let c = quote(&column.name);
                let _ = write!(
                    statement.sql,
                    "{}{c} = VALUES({c})",
                    if i > 0 { ", " } else { "" }
                );
            }
            statement
        })
        .collect()
}

/// INSERT of rows whose ids have no row (checked under lock), each
/// statement with the rows it inserts: a row that appeared meanwhile, or
/// another unique key, fails it.
pub fn insert<'r, 'p, 'c, 'a>(
    table: &Table,
    owned: Option<&[&Column]>,
    rows: &'r [&'p Row<'c, 'a>],
) -> Vec<(&'r [&'p Row<'c, 'a>], Statement<'p>)> {
    let columns = put_columns(owned, rows);
    chunks(rows, columns.len() + 1, row_bytes)
        .into_iter()
        .map(|rows| (rows, insert_sql(table, &columns, rows)))
        .collect()
}

/// PUT of an existing (locked) row: the written columns set, each to the
/// row's value or, where it carries none, its DEFAULT. Used where an upsert
/// could reach another row by another unique key.
pub fn replace<'p>(
    table: &Table,
    owned: Option<&[&Column]>,
    row: &'p Row<'_, '_>,
) -> Statement<'p> {
    let columns = put_columns(owned, &[row]);
    let mut statement = Statement::new();
    let _ = write!(
        statement.sql,
        "UPDATE {} SET `id` = `id`",
        quote(&table.name)
    );
    for column in columns {
        let value = match row.value(&column.name) {
            Some(value) => statement.bind(value.map(Cow::Borrowed), column.kind),
            None => "DEFAULT",
        };
        let _ = write!(statement.sql, ", {} = {value}", quote(&column.name));
    }
    statement.sql.push_str(" WHERE `id` = ");
    let id = statement.bind_id(table, &row.id);
    statement.sql.push_str(id);
    statement
}

/// PATCH: set exactly the given columns of existing rows; missing rows are
/// left alone, and each row keeps the columns it does not carry. `rows` are
/// in the client's order, and each `CASE` tries the last row first: where
/// two ids name one row (`abc` and `ABC` on a `_ci` key), the later entry's
/// values win, as they would one entry at a time.
pub fn update<'p>(table: &Table, rows: &[&'p Row<'_, '_>]) -> Vec<Statement<'p>> {
    let rows: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| !r.values.is_empty())
        .collect();
    let width = rows
        .iter()
        .map(|r| 2 * r.values.len() + 1)
        .max()
        .unwrap_or(0);
    chunks(&rows, width, row_bytes)
        .into_iter()
        .map(|rows| {
            let mut columns: Vec<&Column> = Vec::new();
            for row in rows {
                for (column, _) in &row.values {
                    if !columns.iter().any(|c| c.name == column.name) {
                        columns.push(column);
                    }
                }
            }
            let mut statement = Statement::new();
            let _ = write!(statement.sql, "UPDATE {} SET ", quote(&table.name));
            for (i, column) in columns.iter().enumerate() {
                let c = quote(&column.name);
                let _ = write!(
                    statement.sql,
                    "{}{c} = CASE `id`",
                    if i > 0 { ", " } else { "" }
                );
                for row in rows.iter().rev() {
                    if let Some(value) = row.value(&column.name) {
                        let id = statement.bind_id(table, &row.id);
                        let value = statement.bind(value.map(Cow::Borrowed), column.kind);
                        let _ = write!(statement.sql, " WHEN {id} THEN {value}");
                    }
                }
                let _ = write!(statement.sql, " ELSE {c} END");
            }
            statement.sql.push_str(" WHERE `id` IN (");
            push_ids(&mut statement, table, rows.iter().map(|r| &*r.id));
            statement.sql.push(')');
            statement
        })
        .collect()
}

fn push_ids<'p>(statement: &mut Statement<'p>, table: &Table, ids: impl Iterator<Item = &'p str>) {
    for (i, id) in ids.enumerate() {
        let placeholder = statement.bind_id(table, id);
        let _ = write!(
            statement.sql,
            "{}{placeholder}",
            if i > 0 { ", " } else { "" }
        );
    }
}

/// `head` followed by the ids, in chunks: `… WHERE id IN (…)` + `tail`.
fn by_ids<'p>(table: &Table, head: &str, ids: &[&'p str], tail: &str) -> Vec<Statement<'p>> {
    chunks(ids, 1, |id| id.len())
        .into_iter()
        .map(|ids| {
            let mut statement = Statement::new();
            let _ = write!(statement.sql, "{head} WHERE `id` IN (");
            push_ids(&mut statement, table, ids.iter().copied());
            let _ = write!(statement.sql, "){tail}");
            statement
        })
        .collect()
}

/// DELETE the rows with these ids.
pub fn delete<'p>(table: &Table, ids: &[&'p str]) -> Vec<Statement<'p>> {
    by_ids(
        table,
        &format!("DELETE FROM {}", quote(&table.name)),
        ids,
        "",
    )
}

/// Locks the existing rows with these ids, in id order, until the
/// transaction ends.
pub fn lock<'p>(table: &Table, ids: &[&'p str]) -> Vec<Statement<'p>> {
    by_ids(
        table,
        &format!("SELECT 1 FROM {}", quote(&table.name)),
        ids,
        " ORDER BY `id` FOR UPDATE",
    )
}

/// The existing rows these ids name, as MySQL compares keys (a `_ci` or PAD
/// SPACE key matches `ABC ` for `abc`; a BINARY(16) uuid any spelling of
/// it), locked in id order until the transaction ends. Per row: which of
/// the chunk's ids name it (their positions, comma-separated) and the row
/// as `load` gives it. Each statement covers `ids[offset..]` from its
/// offset on.
pub fn find<'p>(table: &Table, ids: &[&'p str]) -> Vec<(usize, Statement<'p>)> {
    let mut offset = 0;
    chunks(ids, 3, |id| 2 * id.len())
        .into_iter()
        .map(|chunk| {
            let mut statement = Statement::new();
            statement.sql.push_str("SELECT CONCAT_WS(','");
            for (i, id) in chunk.iter().enumerate() {
                let placeholder = statement.bind_id(table, id);
                let _ = write!(statement.sql, ", IF(`id` = {placeholder}, {i}, NULL)");
            }
            let _ = write!(
                statement.sql,
                "), {} FROM {} WHERE `id` IN (",
                row_json(table),
                quote(&table.name)
            );
            push_ids(&mut statement, table, chunk.iter().copied());
            statement.sql.push_str(") ORDER BY `id` FOR UPDATE");
            let at = offset;
            offset += chunk.len();
            (at, statement)
        })
        .collect()
}

/// Adds one to `column` of the rows with these ids (NULL counts as 0).
pub fn bump_version<'p>(table: &Table, column: &Column, ids: &[&'p str]) -> Vec<Statement<'p>> {
    let c = quote(&column.name);
    by_ids(
        table,
        &format!(
            "UPDATE {} SET {c} = COALESCE({c}, 0) + 1",
            quote(&table.name)
        ),
        ids,
        "",
    )
}

/// Adds the client's change `new − previous` to `column` of row `id`,
/// computed exactly: integers and decimals as DECIMAL (a text MySQL cannot
/// read is refused in strict mode, not taken as 0), floats as DOUBLE.
/// Integer texts are already integral (`values::convert`).
pub fn add_delta<'p>(
    table: &Table,
    column: &Column,
    id: &'p str,
    new: &'p str,
    previous: &'p str,
) -> Statement<'p> {
    let c = quote(&column.name);
    let exact = match column.cast_type.as_str() {
        "float" | "double" | "real" => "DOUBLE",
        _ if column.is_integer() => "DECIMAL(65, 0)",
        _ => "DECIMAL(65, 30)",
    };
    let mut statement = Statement::new();
    statement.params.push(Some(Cow::Borrowed(new)));
    statement.params.push(Some(Cow::Borrowed(previous)));
    let _ = write!(
        statement.sql,
        "UPDATE {} SET {c} = {c} + (CAST(? AS {exact}) - CAST(? AS {exact})) WHERE `id` = ",
        quote(&table.name)
    );
    let id = statement.bind_id(table, id);
    statement.sql.push_str(id);
    statement
}

/// Every column of a row as one JSON object, as text.
fn row_json(table: &Table) -> String {
    let members: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let value = match c.kind {
                ValueKind::MySql(MySqlKind::BinaryUuid) => uuid_text(&quote(&c.name)),
                _ => quote(&c.name),
            };
            format!("{}, {value}", json_key(&c.name))
        })
        .collect();
    format!("CAST(JSON_OBJECT({}) AS CHAR)", members.join(", "))
}

fn uuid_text(column: &str) -> String {
    format!(
        "LOWER(INSERT(INSERT(INSERT(INSERT(HEX({column}), 9, 0, '-'), 14, 0, '-'), 19, 0, '-'), 24, 0, '-'))"
    )
}

/// A column name as a string literal (names come from the catalogue).
fn json_key(name: &str) -> String {
    format!("'{}'", name.replace('\\', "\\\\").replace('\'', "''"))
}
