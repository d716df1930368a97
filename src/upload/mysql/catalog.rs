//! Introspection of the app's tables on MySQL: the tables of the URL's
//! database, from `information_schema`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use sqlx::MySqlPool;

use crate::upload::schema::{Catalog, Column, MySqlKind, RowKey, Table, ValueKind};

// Every name is read as CHAR: MySQL 8 types several of these as binary strings.
const COLUMNS: &str = "
SELECT CAST(c.TABLE_NAME AS CHAR)              AS table_name,
       CAST(c.COLUMN_NAME AS CHAR)             AS column_name,
       CAST(LOWER(c.DATA_TYPE) AS CHAR)        AS data_type,
       CAST(LOWER(c.COLUMN_TYPE) AS CHAR)      AS column_type,
       c.IS_NULLABLE = 'NO'                    AS not_null,
       CAST(c.COLUMN_DEFAULT AS CHAR)          AS default_expr,
       CAST(c.EXTRA AS CHAR) LIKE '%GENERATED%' AS is_generated
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

/// Tables whose `id` alone is a unique key (`ON DUPLICATE KEY` then means
/// "this id exists").
const ID_KEYS: &str = "
SELECT CAST(s.TABLE_NAME AS CHAR) AS table_name
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = DATABASE() AND s.NON_UNIQUE = 0
GROUP BY s.TABLE_NAME, s.INDEX_NAME
HAVING COUNT(*) = 1 AND MAX(s.COLUMN_NAME) = 'id'";

/// Tables with another unique key: an upsert of a row that breaks it would
/// update the other row instead of failing.
const OTHER_KEYS: &str = "
SELECT DISTINCT CAST(s.TABLE_NAME AS CHAR) AS table_name
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = DATABASE() AND s.NON_UNIQUE = 0
GROUP BY s.TABLE_NAME, s.INDEX_NAME
HAVING NOT (COUNT(*) = 1 AND MAX(s.COLUMN_NAME) = 'id')";

/// Tables whose rows a constraint or trigger relates (a foreign key to the
/// table itself, any trigger): writes to distinct rows may not commute.
const RELATED_ROWS: &str = "
SELECT CAST(k.TABLE_NAME AS CHAR) AS table_name
FROM information_schema.KEY_COLUMN_USAGE k
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_SCHEMA = k.TABLE_SCHEMA
  AND k.REFERENCED_TABLE_NAME = k.TABLE_NAME
UNION
SELECT CAST(g.EVENT_OBJECT_TABLE AS CHAR) AS table_name
FROM information_schema.TRIGGERS g
WHERE g.EVENT_OBJECT_SCHEMA = DATABASE()";

/// MariaDB's JSON type is LONGTEXT with a `json_valid` check.
const MARIADB_JSON_CHECKS: &str = "
SELECT CAST(TABLE_NAME AS CHAR), CAST(CHECK_CLAUSE AS CHAR)
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND CHECK_CLAUSE LIKE 'json_valid(%'";

#[derive(sqlx::FromRow)]
struct ColumnRow {
    table_name: String,
    column_name: String,
    data_type: String,
    column_type: String,
    not_null: bool,
    default_expr: Option<String>,
    is_generated: bool,
}

pub async fn load(db: &MySqlPool) -> anyhow::Result<Catalog> {
    let rows: Vec<ColumnRow> = sqlx::query_as(COLUMNS)
        .fetch_all(db)
        .await
        .context("Failed to introspect the app's tables")?;
    let keyed = table_names(db, ID_KEYS, "keys").await?;
    let other_keys = table_names(db, OTHER_KEYS, "keys").await?;
    let related = table_names(db, RELATED_ROWS, "foreign keys and triggers").await?;
    // MySQL 8 has no TABLE_NAME here, and a real JSON type instead.
    let json_checks: Vec<(String, String)> = sqlx::query_as(MARIADB_JSON_CHECKS)
        .fetch_all(db)
        .await
        .unwrap_or_default();
    let is_json = |table: &str, column: &str| {
        json_checks.iter().any(|(t, clause)| {
            t == table
                && clause
                    .trim_end_matches(')')
                    .ends_with(&format!("`{column}`"))
        })
    };

    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let kind = kind_of(&row, is_json(&row.table_name, &row.column_name));
        columns
            .entry(row.table_name.clone())
            .or_default()
            .push(Column {
                kind,
                numeric: matches!(
                    row.data_type.as_str(),
                    "decimal" | "float" | "double" | "real"
                ),
                name: row.column_name,
                sql_type: row.column_type,
                cast_type: row.data_type,
                not_null: row.not_null,
                default: row.default_expr.filter(|d| d != "NULL"),
                writable: !row.is_generated,
            });
    }
    let tables = columns
        .into_iter()
        .map(|(name, columns)| {
            let mut table = Table::new(name.clone(), columns);
            if let Some((id_type, parses)) = table
                .column("id")
                .map(|id| (id.sql_type.clone(), id_parser(id)))
            {
                table.id_type = id_type;
                table.id_parses = Some(parses);
                // MySQL's statements keep entries on one row in order
                // (`ON DUPLICATE KEY` row by row, `CASE` latest first), and
                // the policies find rows by the key's own comparison.
                table.row_key = RowKey::Exact;
            }
            table.id_is_key = keyed.contains(&name);
            table.id_is_only_key = !other_keys.contains(&name);
            table.rows_independent = table.id_is_only_key && !related.contains(&name);
            (name, table)
        })
        .collect();
    Ok(Catalog {
        tables,
        has_deferrable: false,
    })
}

/// The tables `sql` names (its one column).
async fn table_names(db: &MySqlPool, sql: &str, what: &str) -> anyhow::Result<BTreeSet<String>> {
    let names: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(db)
        .await
        .with_context(|| format!("Failed to introspect the app's {what}"))?;
    Ok(names.into_iter().collect())
}

fn kind_of(row: &ColumnRow, json: bool) -> ValueKind {
    match (row.data_type.as_str(), row.column_type.as_str()) {
        ("tinyint", "tinyint(1)" | "tinyint(1) unsigned") | ("bool" | "boolean", _) => {
            ValueKind::MySql(MySqlKind::Boolean)
        }
        ("tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint", _) => {
            ValueKind::MySql(MySqlKind::Integer)
        }
        ("datetime" | "timestamp", _) => ValueKind::MySql(MySqlKind::DateTime),
        ("binary", "binary(16)") => ValueKind::MySql(MySqlKind::BinaryUuid),
        ("json", _) => ValueKind::Json,
        ("longtext", _) if json => ValueKind::Json,
        _ => ValueKind::Other,
    }
}

/// Which ids the key column can hold; other key types take any text (MySQL
/// refuses what does not fit, per entry).
fn id_parser(id: &Column) -> fn(&str) -> bool {
    match id.kind {
        ValueKind::MySql(MySqlKind::BinaryUuid) => |id| uuid::Uuid::parse_str(id).is_ok(),
        ValueKind::MySql(MySqlKind::Integer) => |id| id.parse::<i64>().is_ok(),
        _ => |_| true,
    }
}
