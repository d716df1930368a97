//! The app's tables as Postgres describes them: columns and their types,
//! keys, and what relates one row of a table to another.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::Context;
use sqlx::PgPool;

use crate::upload::schema::{Catalog, Column, RowKey, Table, ValueKind};

const ROW_RELATIONS: &str = r#"
SELECT c.relname::text AS table_name,
       NOT (
           EXISTS (SELECT 1 FROM pg_index i
                   WHERE i.indrelid = c.oid AND i.indisunique
                     AND NOT (i.indnkeyatts = 1 AND i.indkey[0] = (
                         SELECT a.attnum FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attname = 'id')))
        OR EXISTS (SELECT 1 FROM pg_constraint k
                   WHERE k.conrelid = c.oid
                     AND (k.contype = 'x' OR (k.contype = 'f' AND k.confrelid = c.oid)))
        OR EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal)
       ) AS rows_independent,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.condeferrable) AS deferrable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
"#;

const INTROSPECT: &str = r#"
SELECT c.relname::text                                   AS table_name,
       a.attname::text                                   AS column_name,
       format_type(a.atttypid, a.atttypmod)              AS sql_type,
       quote_ident(tn.nspname) || '.' || quote_ident(t.typname) AS cast_type,
       bt.typname::text                                  AS base_type,
       bt.typcategory::text                              AS category,
       COALESCE(et.typcategory::text, '')                AS element_category,
       a.attnotnull                                      AS not_null,
       pg_get_expr(d.adbin, d.adrelid)                   AS default_expr,
       (a.attgenerated <> '' OR a.attidentity = 'a')     AS generated,
       EXISTS (
           SELECT 1 FROM pg_index i
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL
             AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum
       )                                                 AS unique_key
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"#;

#[derive(sqlx::FromRow)]
struct ColumnRow {
    table_name: String,
    column_name: String,
    sql_type: String,
    cast_type: String,
    base_type: String,
    category: String,
    element_category: String,
    not_null: bool,
    default_expr: Option<String>,
    generated: bool,
    unique_key: bool,
}

fn kind_of(row: &ColumnRow) -> ValueKind {
    match (row.base_type.as_str(), row.category.as_str()) {
        ("bool", _) => ValueKind::Boolean,
        ("int2" | "int4" | "int8", _) => ValueKind::Integer,
        ("json" | "jsonb", _) => ValueKind::Json,
        (_, "A") => ValueKind::Array {
            // S = string category (text, varchar, …); enums (E) are text-like too.
            text_elements: matches!(row.element_category.as_str(), "S" | "E"),
        },
        _ => ValueKind::Other,
    }
}

/// For the built-in key types (a domain may refuse more, so none for it).
fn id_parser(cast_type: &str) -> Option<fn(&str) -> bool> {
    Some(match cast_type.strip_prefix("pg_catalog.")? {
        "uuid" => |id| uuid::Uuid::parse_str(id).is_ok(),
        "int2" => |id| id.parse::<i16>().is_ok(),
        "int4" => |id| id.parse::<i32>().is_ok(),
        "int8" => |id| id.parse::<i64>().is_ok(),
        "text" | "varchar" => |_| true,
        _ => return None,
    })
}

/// How ids of the built-in key types compare (see `RowKey`).
fn row_key(cast_type: &str) -> RowKey {
    match cast_type.strip_prefix("pg_catalog.") {
        Some("uuid") => RowKey::Canonical(canonical_uuid),
        Some("int2" | "int4" | "int8") => RowKey::Canonical(canonical_integer),
        // The default collation is deterministic: equal means equal text.
        Some("text" | "varchar") => RowKey::Exact,
        _ => RowKey::Unknown,
    }
}

/// A uuid in its lower-case hyphenated form; the id itself when it is in
/// that form already (the SDKs' `uuid()`), so most ids cost no copy.
fn canonical_uuid(id: &str) -> Cow<'_, str> {
    let Ok(uuid) = uuid::Uuid::parse_str(id) else {
        return Cow::Borrowed(id);
    };
    let mut buffer = uuid::Uuid::encode_buffer();
    let canonical = uuid.hyphenated().encode_lower(&mut buffer);
    if &*canonical == id {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(canonical.to_owned())
    }
}

fn canonical_integer(id: &str) -> Cow<'_, str> {
    id.trim()
        .parse::<i64>()
        .map_or(Cow::Borrowed(id), |n| Cow::Owned(n.to_string()))
}

/// The app's tables in `schema` of a Postgres database.
pub async fn load(db: &PgPool, schema: &str) -> anyhow::Result<Catalog> {
    let rows: Vec<ColumnRow> = sqlx::query_as(INTROSPECT)
        .bind(schema)
        .fetch_all(db)
        .await
        .context("Failed to introspect the app's tables")?;
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in rows {
        let table = tables
            .entry(row.table_name.clone())
            .or_insert_with(|| Table::new(row.table_name.clone(), Vec::new()));
        if row.column_name == "id" {
            table.id_type = row.cast_type.clone();
            table.id_parses = id_parser(&row.cast_type);
            table.row_key = row_key(&row.cast_type);
            table.id_is_key = row.unique_key;
        }
        let column = Column {
            kind: kind_of(&row),
            numeric: row.category == "N",
            name: row.column_name,
            sql_type: row.sql_type,
            cast_type: row.cast_type,
            not_null: row.not_null,
            default: row.default_expr,
            writable: !row.generated,
        };
        table.push_column(column);
    }
    let relations: Vec<(String, bool, bool)> = sqlx::query_as(ROW_RELATIONS)
        .bind(schema)
        .fetch_all(db)
        .await
        .context("Failed to introspect the app's constraints")?;
    let mut has_deferrable = false;
    for (name, rows_independent, deferrable) in relations {
        has_deferrable |= deferrable;
        if let Some(table) = tables.get_mut(&name) {
            table.rows_independent = rows_independent;
        }
    }
    Ok(Catalog {
        tables,
        has_deferrable,
    })
}
