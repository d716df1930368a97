//! Introspection of the app's tables: the catalogue every SQL identifier comes from.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use sqlx::PgPool;

/// How uplink converts a client's JSON value for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Boolean,
    Integer,
    /// json / jsonb: clients send JSON *text*.
    Json,
    /// Any array: clients send a JSON array as text.
    Array {
        /// Elements must be JSON strings (text-like element types).
        text_elements: bool,
    },
    /// Everything Postgres parses from the value's text itself.
    Other,
    /// A MySQL column whose value uplink converts first (`mysql::values`);
    /// MySQL parses every other type from text itself.
    MySql(MySqlKind),
}

/// The MySQL column types whose text input MySQL would take differently
/// from what the client meant (silently rounded, offset dropped, refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySqlKind {
    /// `tinyint(1)` / BOOLEAN: JSON booleans become 1 and 0.
    Boolean,
    /// MySQL rounds `2.5` into an integer column; uplink refuses it.
    Integer,
    /// DATETIME / TIMESTAMP: timestamps with an offset are stored in UTC.
    DateTime,
    /// BINARY(16) holding a uuid: sent as text, stored as its 16 bytes.
    BinaryUuid,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type()` of the column, modifiers included (as shown to people).
    pub sql_type: String,
    /// The type without modifiers, for casts from text: the column's
    /// modifiers then apply as on assignment (`varchar(5)` refuses a longer
    /// value instead of truncating it, as an explicit cast would). Named by
    /// schema and internal name: `character` or `bit` unqualified would mean
    /// length 1.
    pub cast_type: String,
    pub kind: ValueKind,
    pub numeric: bool,
    pub not_null: bool,
    /// The DEFAULT expression as Postgres prints it, if any.
    pub default: Option<String>,
    /// Generated or identity-always columns cannot be written.
    pub writable: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    by_name: HashMap<String, usize>,
    /// The `id` column's type without modifiers (see `Column::cast_type`).
    pub id_type: String,
    /// Which ids cast to that type, where uplink can tell without asking
    /// Postgres (`None`: it cannot).
    pub id_parses: Option<fn(&str) -> bool>,
    /// When two ids name one row (see `RowKey`).
    pub row_key: RowKey,
    /// Whether `id` has a unique index usable by `ON CONFLICT (id)`.
    pub id_is_key: bool,
    /// No constraint or trigger relates one row of the table to another
    /// (unique or exclusion constraints besides `id`, self-references,
    /// triggers): writes to distinct rows then commute.
    pub rows_independent: bool,
}

/// When two ids of entries name one row, as one set-based statement sees
/// them: a statement must never write a row twice (its entries would not
/// apply in order).
#[derive(Debug, Clone, Copy)]
pub enum RowKey {
    /// Ids name one row only when their texts are equal.
    Exact,
    /// Ids name one row when their canonical texts are equal (a uuid in
    /// any case, `01` and `1`).
    Canonical(fn(&str) -> String),
    /// uplink cannot tell (a domain, `citext`): every entry gets a
    /// statement of its own.
    Unknown,
}

impl RowKey {
    /// The text that is equal for ids naming one row; `None` when unknown.
    pub fn of<'i>(self, id: &'i str) -> Option<std::borrow::Cow<'i, str>> {
        match self {
            Self::Exact => Some(std::borrow::Cow::Borrowed(id)),
            Self::Canonical(canonical) => Some(std::borrow::Cow::Owned(canonical(id))),
            Self::Unknown => None,
        }
    }
}

impl Column {
    /// An integer column, in either database.
    pub fn is_integer(&self) -> bool {
        matches!(
            self.kind,
            ValueKind::Integer | ValueKind::MySql(MySqlKind::Integer)
        )
    }
}

impl Table {
    /// A table of `columns`; its key facts are filled in by the caller.
    pub fn new(name: String, columns: Vec<Column>) -> Self {
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Self {
            name,
            columns,
            by_name,
            id_type: String::new(),
            id_parses: None,
            row_key: RowKey::Unknown,
            id_is_key: false,
            rows_independent: false,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }
}

/// The app's tables in the configured schema, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, Table>,
    /// Some constraint of the schema is deferrable (checked at commit unless
    /// the transaction says otherwise).
    pub has_deferrable: bool,
}

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
        Some("uuid") => RowKey::Canonical(|id| {
            uuid::Uuid::parse_str(id).map_or_else(|_| id.to_owned(), |u| u.to_string())
        }),
        Some("int2" | "int4" | "int8") => RowKey::Canonical(|id| {
            id.trim()
                .parse::<i64>()
                .map_or_else(|_| id.to_owned(), |n| n.to_string())
        }),
        // The default collation is deterministic: equal means equal text.
        Some("text" | "varchar") => RowKey::Exact,
        _ => RowKey::Unknown,
    }
}

impl Catalog {
    /// The app's tables in `schema` of a Postgres database.
    pub async fn load(db: &PgPool, schema: &str) -> anyhow::Result<Self> {
        let rows: Vec<ColumnRow> = sqlx::query_as(INTROSPECT)
            .bind(schema)
            .fetch_all(db)
            .await
            .context("Failed to introspect the app's tables")?;
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for row in rows {
            let table = tables
                .entry(row.table_name.clone())
                .or_insert_with(|| Table {
                    name: row.table_name.clone(),
                    columns: Vec::new(),
                    by_name: HashMap::new(),
                    id_type: String::new(),
                    id_parses: None,
                    row_key: RowKey::Unknown,
                    id_is_key: false,
                    rows_independent: false,
                });
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
            table
                .by_name
                .insert(column.name.clone(), table.columns.len());
            table.columns.push(column);
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
        Ok(Self {
            tables,
            has_deferrable,
        })
    }

    /// A ready-to-edit `write.tables` allow-list for every table with an `id` key.
    pub fn to_allow_list_yaml(&self, schema: &str) -> String {
        let mut out = String::from(
            "# Generated by `uplink schema`: the tables clients may write and the columns they own.\n\
             # Remove what clients must not write; add policies per table (see config/base.yaml).\n",
        );
        out.push_str(&format!(
            "write:\n  schema: {}\n  tables:\n",
            yaml_scalar(schema)
        ));
        for table in self.tables.values() {
            if !table.id_is_key {
                out.push_str(&format!(
                    "    # {}: skipped, no `id` primary key\n",
                    yaml_scalar(&table.name)
                ));
                continue;
            }
            out.push_str(&format!(
                "    {}:\n      columns:\n",
                yaml_scalar(&table.name)
            ));
            for column in table
                .columns
                .iter()
                .filter(|c| c.writable && c.name != "id")
            {
                out.push_str(&format!(
                    "        - {}  # {}\n",
                    yaml_scalar(&column.name),
                    column.sql_type
                ));
            }
        }
        out
    }
}

/// A YAML scalar: plain when safe, else double-quoted (JSON escaping is valid YAML).
fn yaml_scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !value.starts_with('-');
    if plain {
        value.to_owned()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}
