//! A table's policy resolved against its introspected columns, once, when
//! the configuration and the schema are read.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::error::ConfigError;
use crate::upload::schema::{Column, MySqlKind, Table, ValueKind};
use crate::upload::settings::{
    ConflictSettings, ConflictStrategy, OnConflict, TableSettings, TransitionSettings,
};

/// A table's policy, resolved against its introspected columns.
#[derive(Debug)]
pub struct Policy<'c> {
    pub read_only: Vec<&'c str>,
    pub owner: Option<&'c Column>,
    pub conflict: Option<Conflict<'c>>,
    pub deltas: Vec<&'c Column>,
    pub transitions: Option<Transitions<'c>>,
    pub locked_when: Option<(&'c Column, &'c [String])>,
    pub insert_only: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Conflict<'c> {
    pub strategy: ConflictStrategy,
    /// The version / timestamp column, or the jsonb column of per-field times.
    pub column: &'c Column,
    pub on_conflict: OnConflict,
}

/// A state machine on one column.
#[derive(Debug)]
pub struct Transitions<'c> {
    pub column: &'c Column,
    /// From each state, the states it may change to.
    pub allowed: &'c BTreeMap<String, Vec<String>>,
    /// The states a row may be created in.
    pub initial: BTreeSet<&'c str>,
}

impl<'c> Transitions<'c> {
    /// `initial` as configured, else the states no transition leads to.
    /// There must be one: where every state has an incoming transition, the
    /// configuration names them.
    fn resolve(
        table: &str,
        column: &'c Column,
        settings: &'c TransitionSettings,
    ) -> Result<Self, ConfigError> {
        let initial: BTreeSet<&str> = match &settings.initial {
            Some(initial) => initial.iter().map(String::as_str).collect(),
            None => {
                let targets: BTreeSet<&str> = settings
                    .allowed
                    .values()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                settings
                    .allowed
                    .keys()
                    .map(String::as_str)
                    .filter(|state| !targets.contains(state))
                    .collect()
            }
        };
        if initial.is_empty() {
            return Err(ConfigError::invalid(
                format!("write.tables.{table}.transitions.initial"),
                "no state of `allowed` is free of incoming transitions; list the states a new row may be created in",
            ));
        }
        Ok(Self {
            column,
            allowed: &settings.allowed,
            initial,
        })
    }
}

/// The default column holding per-field times for `field_timestamps`.
pub const FIELD_TIMESTAMPS_COLUMN: &str = "field_timestamps";

impl<'c> Policy<'c> {
    /// Resolves and checks a table's settings; errors name the key, the table
    /// and the column.
    pub fn resolve(table: &'c Table, settings: &'c TableSettings) -> Result<Self, ConfigError> {
        let column = |key: &str, column: &str| column_of(table, key, column);
        // In the order of the settings, so the first error reported stays the same.
        let read_only = read_only_columns(table, settings)?;
        let owner = settings
            .owner_column
            .as_deref()
            .map(|c| column("owner_column", c))
            .transpose()?;
        let conflict = settings
            .conflict
            .as_ref()
            .map(|conflict| Conflict::resolve(table, conflict))
            .transpose()?;
        let deltas = delta_columns(table, settings)?;
        let transitions = settings
            .transitions
            .as_ref()
            .map(|t| Transitions::resolve(&table.name, column("transitions.column", &t.column)?, t))
            .transpose()?;
        let locked_when = settings
            .locked_when
            .as_ref()
            .map(|l| column("locked_when.column", &l.column).map(|c| (c, l.values.as_slice())))
            .transpose()?;
        Ok(Self {
            read_only,
            owner,
            conflict,
            deltas,
            transitions,
            locked_when,
            insert_only: settings.insert_only,
        })
    }

    /// Whether entries of this table can be checked and written a set at a
    /// time (`apply_set`). Delta columns and per-field times are applied
    /// one row at a time: a write's result depends on the running value.
    pub fn set_based(&self) -> bool {
        self.deltas.is_empty()
            && self
                .conflict
                .is_none_or(|c| c.strategy != ConflictStrategy::FieldTimestamps)
    }

    /// Whether entries of this table are checked against the current row.
    pub fn checks_rows(&self) -> bool {
        self.owner.is_some()
            || self.conflict.is_some()
            || !self.deltas.is_empty()
            || self.transitions.is_some()
            || self.locked_when.is_some()
            || self.insert_only
    }
}

/// The column `column` of `table`, named in the setting `key`.
fn column_of<'c>(table: &'c Table, key: &str, column: &str) -> Result<&'c Column, ConfigError> {
    table.column(column).ok_or_else(|| {
        ConfigError::invalid(
            format!("write.tables.{}.{key}", table.name),
            format!("column `{}.{column}` does not exist", table.name),
        )
    })
}

fn read_only_columns<'c>(
    table: &'c Table,
    settings: &'c TableSettings,
) -> Result<Vec<&'c str>, ConfigError> {
    let name = &table.name;
    let mut read_only = Vec::new();
    for c in &settings.read_only_columns {
        read_only.push(column_of(table, "read_only_columns", c)?.name.as_str());
        if settings.columns.iter().flatten().any(|owned| owned == c) {
            return Err(ConfigError::invalid(
                format!("write.tables.{name}.read_only_columns"),
                format!("column `{name}.{c}` is also listed in `columns`"),
            ));
        }
    }
    Ok(read_only)
}

fn delta_columns<'c>(
    table: &'c Table,
    settings: &'c TableSettings,
) -> Result<Vec<&'c Column>, ConfigError> {
    let name = &table.name;
    let mut deltas = Vec::new();
    for c in &settings.delta_columns {
        let col = column_of(table, "delta_columns", c)?;
        if !(col.is_integer() || col.numeric) {
            return Err(ConfigError::invalid(
                format!("write.tables.{name}.delta_columns"),
                format!(
                    "column `{name}.{c}` is {}; delta columns must be numeric",
                    col.sql_type
                ),
            ));
        }
        deltas.push(col);
    }
    Ok(deltas)
}

impl<'c> Conflict<'c> {
    /// The strategy's column, checked to hold what the strategy compares.
    fn resolve(table: &'c Table, settings: &ConflictSettings) -> Result<Self, ConfigError> {
        let name = &table.name;
        let column_name = match (settings.strategy, &settings.column) {
            (_, Some(c)) => c.as_str(),
            (ConflictStrategy::FieldTimestamps, None) => FIELD_TIMESTAMPS_COLUMN,
            (_, None) => {
                return Err(ConfigError::invalid(
                    format!("write.tables.{name}.conflict.column"),
                    "is required for the `version` and `timestamp` strategies",
                ));
            }
        };
        let c = column_of(table, "conflict.column", column_name)?;
        let (fits, needs) = match settings.strategy {
            ConflictStrategy::Version => (c.is_integer(), "an integer column"),
            // MySQL's DATETIME holds the UTC time uplink writes to it.
            ConflictStrategy::Timestamp => (
                c.sql_type.starts_with("timestamp")
                    || c.kind == ValueKind::MySql(MySqlKind::DateTime),
                "a timestamp column",
            ),
            ConflictStrategy::FieldTimestamps => (c.kind == ValueKind::Json, "a jsonb column"),
        };
        if !fits {
            return Err(ConfigError::invalid(
                format!("write.tables.{name}.conflict.column"),
                format!(
                    "column `{name}.{}` is {}; the {:?} strategy needs {needs}",
                    c.name, c.sql_type, settings.strategy,
                ),
            ));
        }
        if settings.strategy == ConflictStrategy::Version && c.default.is_none() {
            // Clients never write the version: a new row takes the DEFAULT.
            // Without one it would be NULL (the policy silently off for the
            // row) or a not-null violation.
            return Err(ConfigError::invalid(
                format!("write.tables.{name}.conflict.column"),
                format!(
                    "column `{name}.{}` has no DEFAULT, so a new row would start without a version; \
                     give it one (e.g. `{} NOT NULL DEFAULT 1`)",
                    c.name, c.sql_type
                ),
            ));
        }
        Ok(Self {
            strategy: settings.strategy,
            column: c,
            on_conflict: settings.on_conflict,
        })
    }
}
