//! The catalogue of the app's tables every SQL identifier comes from (each
//! backend reads it from its database: `postgres::catalog`, `mysql::catalog`).

use std::collections::{BTreeMap, HashMap};

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
    /// Whether `id` is the table's only unique key: an upsert on MySQL
    /// (`ON DUPLICATE KEY`, which any unique key triggers) then cannot
    /// update another row than its id's.
    pub id_is_only_key: bool,
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
    Canonical(fn(&str) -> std::borrow::Cow<'_, str>),
    /// uplink cannot tell (a domain, `citext`): every entry gets a
    /// statement of its own.
    Unknown,
}

impl RowKey {
    /// The text that is equal for ids naming one row; `None` when unknown.
    pub fn of<'i>(self, id: &'i str) -> Option<std::borrow::Cow<'i, str>> {
        match self {
            Self::Exact => Some(std::borrow::Cow::Borrowed(id)),
            Self::Canonical(canonical) => Some(canonical(id)),
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
            id_is_only_key: false,
            rows_independent: false,
        }
    }

    /// Adds a column after the others.
    pub fn push_column(&mut self, column: Column) {
        self.by_name.insert(column.name.clone(), self.columns.len());
        self.columns.push(column);
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

impl Catalog {
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
