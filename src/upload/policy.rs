//! Per-table write policies: ownership, optimistic concurrency, deltas,
//! state machines, insert-only tables.
//!
//! An entry of a table with such a policy is checked against the current
//! row, read with `FOR UPDATE` (so concurrent writers of one row serialise),
//! then written. A new row is inserted without replacing one that appeared
//! meanwhile, so concurrent creators of one id serialise on its key too, and
//! the one that loses is checked against the winner's row. `apply_set` does
//! this for a set of entries on distinct rows in a few statements;
//! `apply_row` one entry at a time, for delta columns and field timestamps
//! (their write depends on the running value) and as the reference. Both
//! decide with the same functions (`claim`, `check_new`, `check_existing`).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::PgConnection;

use super::envelope::{Entry, Op, truncate_for_message};
use super::plan::Prepared;
use super::report::Rejection;
use super::schema::{Column, Table, ValueKind};
use super::settings::{ConflictStrategy, OnConflict, TableSettings, TransitionSettings};
use super::sql::json_string;
use super::sql::{self, Row, quote_ident};
use crate::config::ConfigError;

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
        let name = &table.name;
        let column = |key: &str, column: &str| -> Result<&'c Column, ConfigError> {
            table.column(column).ok_or_else(|| {
                ConfigError::invalid(
                    format!("write.tables.{name}.{key}"),
                    format!("column `{name}.{column}` does not exist"),
                )
            })
        };
        let mut read_only = Vec::new();
        for c in &settings.read_only_columns {
            read_only.push(column("read_only_columns", c)?.name.as_str());
            if settings.columns.iter().flatten().any(|owned| owned == c) {
                return Err(ConfigError::invalid(
                    format!("write.tables.{name}.read_only_columns"),
                    format!("column `{name}.{c}` is also listed in `columns`"),
                ));
            }
        }
        let owner = settings
            .owner_column
            .as_deref()
            .map(|c| column("owner_column", c))
            .transpose()?;
        let conflict = match &settings.conflict {
            None => None,
            Some(conflict) => {
                let default = FIELD_TIMESTAMPS_COLUMN.to_owned();
                let column_name = match (conflict.strategy, &conflict.column) {
                    (_, Some(c)) => c,
                    (ConflictStrategy::FieldTimestamps, None) => &default,
                    (_, None) => {
                        return Err(ConfigError::invalid(
                            format!("write.tables.{name}.conflict.column"),
                            "is required for the `version` and `timestamp` strategies",
                        ));
                    }
                };
                let c = column("conflict.column", column_name)?;
                let fits = match conflict.strategy {
                    ConflictStrategy::Version => c.kind == ValueKind::Integer,
                    ConflictStrategy::Timestamp => c.sql_type.starts_with("timestamp"),
                    ConflictStrategy::FieldTimestamps => c.kind == ValueKind::Json,
                };
                if !fits {
                    return Err(ConfigError::invalid(
                        format!("write.tables.{name}.conflict.column"),
                        format!(
                            "column `{name}.{}` is {}; the {:?} strategy needs {}",
                            c.name,
                            c.sql_type,
                            conflict.strategy,
                            match conflict.strategy {
                                ConflictStrategy::Version => "an integer column",
                                ConflictStrategy::Timestamp => "a timestamp column",
                                ConflictStrategy::FieldTimestamps => "a jsonb column",
                            }
                        ),
                    ));
                }
                Some(Conflict {
                    strategy: conflict.strategy,
                    column: c,
                    on_conflict: conflict.on_conflict,
                })
            }
        };
        let mut deltas = Vec::new();
        for c in &settings.delta_columns {
            let col = column("delta_columns", c)?;
            if !(col.kind == ValueKind::Integer || col.numeric) {
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
        let transitions = settings
            .transitions
            .as_ref()
            .map(|t| Transitions::resolve(name, column("transitions.column", &t.column)?, t))
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

/// An entry that was resolved in the server's favour.
#[derive(Debug, Clone)]
pub struct ConflictNote {
    pub code: &'static str,
    pub message: String,
    /// Write both versions to `write_conflicts`.
    pub record: Option<RecordedConflict>,
}

#[derive(Debug, Clone)]
pub struct RecordedConflict {
    pub table: String,
    pub row_id: String,
    pub client_data: String,
    pub server_data: Option<String>,
}

/// What the per-row path decided for one entry.
pub enum RowOutcome {
    Applied,
    Conflict(ConflictNote),
}

pub enum RowFailure {
    /// The policy refuses the entry: its client transaction is rejected.
    Refused(Rejection),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for RowFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

/// A JSON value as the text it stands for (strings decoded).
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn raw_text(raw: &str) -> Option<String> {
    serde_json::from_str::<Value>(raw)
        .ok()
        .as_ref()
        .and_then(as_text)
}

/// A timestamp as clients and Postgres print them; no offset means UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f%#z",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// The entry's data as a JSON object text, for `write_conflicts.client_data`.
fn client_data(entry: &Entry<'_>) -> String {
    let members: Vec<String> = entry
        .data
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), v.get()))
        .collect();
    super::dead_letter::jsonb_safe(&format!("{{{}}}", members.join(","))).into_owned()
}

/// Per-field client times from the entry's metadata: `{"column": time}`,
/// optionally under a `field_timestamps` key; the metadata may be JSON text.
fn field_times(metadata: Option<&RawValue>) -> BTreeMap<String, DateTime<Utc>> {
    let Some(raw) = metadata else {
        return BTreeMap::new();
    };
    let mut value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
    if let Value::String(text) = &value {
        value = serde_json::from_str(text).unwrap_or(Value::Null);
    }
    let object = match value
        .get("field_timestamps")
        .or_else(|| value.get("fieldTimestamps"))
    {
        Some(inner) => inner.clone(),
        None => value,
    };
    object
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().and_then(parse_time).map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default()
}

fn refused(code: &'static str, message: impl Into<String>) -> RowFailure {
    RowFailure::Refused(Rejection::new(code, message))
}

/// What a policy decided for an entry on an existing row.
pub enum Verdict<'c, 'a> {
    /// Write `row`, then bump the version column if there is one; `note`
    /// names values the server kept (field timestamps).
    Write {
        row: Row<'c, 'a>,
        bump_version: Option<&'c Column>,
        note: Option<ConflictNote>,
    },
    /// The server's row stays as it is.
    Keep(ConflictNote),
}

/// Applies one entry of a policy table, one row at a time. `client_id` is
/// the batch's client id (delta columns need exactly-once delivery).
pub async fn apply_row<'c>(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, '_>,
    entry: &Entry<'_>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<RowOutcome, RowFailure> {
    let row = claim(table, policy, prepared, user_id, client_id)?;

    // The current row, locked until the transaction ends; or, for a PUT of
    // a new id, the row it inserts. The insert is the owner check's other
    // half: two writers of one new id serialise on its key, and the one that
    // does not insert it is checked against the row the other one wrote.
    let mut lost_race = false;
    let current = loop {
        if let Some(current) = lock_current(conn, table, &row.id).await? {
            break current;
        }
        // No row: PATCH and DELETE do nothing (deletes win); PUT inserts.
        if prepared.op != Op::Put {
            return Ok(RowOutcome::Applied);
        }
        if lost_race {
            return Err(taken(table, &row.id));
        }
        let new_row = check_new(policy, entry, row.clone())?;
        let owned = written_columns(prepared, &new_row);
        let inserted = sql::insert_new(table, owned.as_deref(), &[&new_row])
            .fetch_text(conn)
            .await?;
        if !inserted.is_empty() {
            return Ok(RowOutcome::Applied);
        }
        // Another transaction inserted the id since the read: check against its row.
        lost_race = true;
    };
    match check_existing(table, policy, prepared, entry, row, &current, user_id)? {
        Verdict::Keep(note) => Ok(RowOutcome::Conflict(note)),
        Verdict::Write {
            row,
            bump_version,
            note,
        } => {
            write_existing(conn, table, policy, prepared, entry, &row, bump_version).await?;
            Ok(note.map_or(RowOutcome::Applied, RowOutcome::Conflict))
        }
    }
}

/// A PUT of an id taken by a row this user cannot read (row-level security).
fn taken(table: &Table, id: &str) -> RowFailure {
    refused(
        "forbidden",
        format!(
            "row {} of `{}` belongs to another user",
            json_string(id),
            table.name
        ),
    )
}

/// The checks that need no current row (the operation, the client id delta
/// columns need, the owner the entry names); returns the row to write, with
/// the user as the owner of a PUT that names none.
fn claim<'c, 'a>(
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Row<'c, 'a>, RowFailure> {
    let mut row: Row = prepared.row.clone();
    if policy.insert_only && prepared.op != Op::Put {
        return Err(refused(
            "insert_only",
            format!("table `{}` accepts only new rows (PUT)", table.name),
        ));
    }
    let has_delta = policy
        .deltas
        .iter()
        .any(|d| row.values.iter().any(|(c, _)| c.name == d.name));
    if prepared.op == Op::Patch && has_delta && client_id.is_none() {
        return Err(refused(
            "client_id_required",
            "delta columns are applied exactly once only with a client id; send `client_id`",
        ));
    }
    if let Some(owner) = policy.owner {
        match value_of(&row, &owner.name) {
            Some(claimed) if claimed != user_id => {
                return Err(refused(
                    "forbidden",
                    format!("`{}` must be the authenticated user", owner.name),
                ));
            }
            None if prepared.op == Op::Put => {
                row.values.retain(|(c, _)| c.name != owner.name);
                row.values
                    .push((owner, Some(Cow::Owned(user_id.to_owned()))));
            }
            _ => {}
        }
    }
    Ok(row)
}

/// The text a row sets `column` to, if it sets it to a value.
fn value_of(row: &Row, column: &str) -> Option<String> {
    row.values
        .iter()
        .find(|(c, _)| c.name == column)
        .and_then(|(_, v)| v.as_deref().map(str::to_owned))
}

/// Checks a PUT of an id with no row against the policy; returns the row to
/// insert (with its per-field times).
fn check_new<'c, 'a>(
    policy: &Policy<'c>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
) -> Result<Row<'c, 'a>, RowFailure> {
    if let Some(transitions) = &policy.transitions
        && let Some((_, Some(state))) = row
            .values
            .iter()
            .find(|(c, _)| c.name == transitions.column.name)
        && !transitions.initial.contains(state.as_ref())
    {
        let initial: Vec<&str> = transitions.initial.iter().copied().collect();
        return Err(refused(
            "invalid_transition",
            format!(
                "a new row's `{}` may not be {}; it starts as one of: {}",
                transitions.column.name,
                truncate_for_message(state),
                initial.join(", ")
            ),
        ));
    }
    let field_column = policy
        .conflict
        .filter(|c| c.strategy == ConflictStrategy::FieldTimestamps)
        .map(|c| c.column);
    if let Some(column) = field_column {
        let times = field_times(entry.metadata);
        let object: BTreeMap<&String, String> =
            times.iter().map(|(k, v)| (k, v.to_rfc3339())).collect();
        row.values.retain(|(c, _)| c.name != column.name);
        row.values.push((
            column,
            Some(Cow::Owned(
                serde_json::to_string(&object).unwrap_or_default(),
            )),
        ));
    }
    Ok(row)
}

/// Checks an entry against the existing row `current` (its JSON text,
/// locked): ownership, insert-only, locks, transitions, conflicts.
fn check_existing<'c, 'a>(
    table: &Table,
    policy: &Policy<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
    current: &str,
    user_id: &str,
) -> Result<Verdict<'c, 'a>, RowFailure> {
    let Ok(server) = serde_json::from_str::<Value>(current) else {
        return Err(RowFailure::Db(sqlx::Error::Decode(
            format!("the current row of `{}` is not JSON", table.name).into(),
        )));
    };

    let server_text = |column: &Column| server.get(&column.name).and_then(as_text);
    if let Some(owner) = policy.owner
        && server_text(owner).as_deref() != Some(user_id)
    {
        return Err(taken(table, &row.id));
    }
    if policy.insert_only {
        // The row exists: an insert-only table never changes it.
        return Ok(Verdict::Keep(ConflictNote {
            code: "already_exists",
            message: format!(
                "row {} of `{}` exists already and is kept as it is (insert-only table)",
                json_string(&row.id),
                table.name
            ),
            record: None,
        }));
    }
    if let Some((column, values)) = policy.locked_when
        && let Some(state) = server_text(column)
        && values.contains(&state)
    {
        return Err(refused(
            "row_locked",
            format!("the row is `{state}` and accepts no change"),
        ));
    }
    if let Some(Transitions { column, .. }) = policy.transitions
        && prepared.op == Op::Put
        && value_of(&row, &column.name).is_none()
        && let Some(state) = server.get(&column.name)
    {
        // A PUT that does not mention the state keeps it (it would otherwise
        // reset it to its DEFAULT, bypassing the allowed transitions).
        row.values.retain(|(c, _)| c.name != column.name);
        row.values.push((column, as_text(state).map(Cow::Owned)));
    }
    if let Some(Transitions {
        column, allowed, ..
    }) = &policy.transitions
        && prepared.op != Op::Delete
        && let Some(next) = value_of(&row, &column.name)
    {
        let from = server_text(column).unwrap_or_default();
        let permitted = next == from || allowed.get(&from).is_some_and(|to| to.contains(&next));
        if !permitted {
            return Err(refused(
                "invalid_transition",
                format!("`{}` may not change from `{from}` to `{next}`", column.name),
            ));
        }
    }

    let mut bump_version = None;
    let mut stale: Option<(&'static str, String)> = None;
    if let Some(conflict) = policy.conflict {
        match conflict.strategy {
            ConflictStrategy::Version => {
                let server_version = server.get(&conflict.column.name).and_then(Value::as_i64);
                let seen = prepared
                    .conflict_value
                    .as_deref()
                    .and_then(raw_text)
                    .and_then(|v| v.parse::<f64>().ok());
                match (seen, server_version) {
                    (Some(seen), Some(server_version)) if seen != server_version as f64 => {
                        stale = Some((
                            "stale_version",
                            format!(
                                "the row is at version {server_version}; the client saw {seen}"
                            ),
                        ));
                    }
                    // An update that does not say which version it saw could
                    // undo any change since: it loses like a stale one.
                    // Deletes win (the SDK sends no data with a DELETE).
                    (None, Some(server_version)) if prepared.op != Op::Delete => {
                        stale = Some((
                            "version_required",
                            format!(
                                "the row is at version {server_version}; send the version the client saw in `{}`",
                                conflict.column.name
                            ),
                        ));
                    }
                    _ => {}
                }
                if prepared.op != Op::Delete {
                    bump_version = Some(conflict.column);
                }
            }
            ConflictStrategy::Timestamp => {
                let client = value_of(&row, &conflict.column.name).and_then(|t| parse_time(&t));
                let on_server = server_text(conflict.column).and_then(|t| parse_time(&t));
                if let (Some(client), Some(on_server)) = (client, on_server)
                    && client < on_server
                {
                    stale = Some((
                        "stale_update",
                        format!("the server's row was modified at {on_server}, after this write"),
                    ));
                }
            }
            ConflictStrategy::FieldTimestamps if prepared.op != Op::Delete => {
                let client_times = field_times(entry.metadata);
                let server_times: BTreeMap<String, DateTime<Utc>> = server
                    .get(&conflict.column.name)
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| {
                                v.as_str().and_then(parse_time).map(|t| (k.clone(), t))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut merged = server_times.clone();
                let mut lost = Vec::new();
                row.values.retain(|(column, _)| {
                    let client_time = client_times.get(&column.name);
                    match (client_time, server_times.get(&column.name)) {
                        (Some(c), Some(s)) if c <= s => {
                            lost.push(column.name.clone());
                            false
                        }
                        (Some(c), _) => {
                            merged.insert(column.name.clone(), *c);
                            true
                        }
                        (None, _) => true,
                    }
                });
                let object: BTreeMap<&String, String> =
                    merged.iter().map(|(k, v)| (k, v.to_rfc3339())).collect();
                row.values.retain(|(c, _)| c.name != conflict.column.name);
                row.values.push((
                    conflict.column,
                    Some(Cow::Owned(
                        serde_json::to_string(&object).unwrap_or_default(),
                    )),
                ));
                if !lost.is_empty() {
                    let note = ConflictNote {
                        code: "stale_field",
                        message: format!("newer server values kept for {}", lost.join(", ")),
                        record: (conflict.on_conflict == OnConflict::Record).then(|| {
                            RecordedConflict {
                                table: table.name.clone(),
                                row_id: row.id.clone(),
                                client_data: client_data(entry),
                                server_data: Some(current.to_owned()),
                            }
                        }),
                    };
                    if conflict.on_conflict == OnConflict::Reject {
                        return Err(refused("stale_field", note.message));
                    }
                    return Ok(Verdict::Write {
                        row,
                        bump_version: None,
                        note: Some(note),
                    });
                }
            }
            ConflictStrategy::FieldTimestamps => {}
        }
    }
    if let (Some((code, message)), Some(conflict)) = (stale, policy.conflict) {
        return match conflict.on_conflict {
            OnConflict::Reject => Err(refused(code, message)),
            on_conflict => Ok(Verdict::Keep(ConflictNote {
                code,
                message,
                record: (on_conflict == OnConflict::Record).then(|| RecordedConflict {
                    table: table.name.clone(),
                    row_id: row.id.clone(),
                    client_data: client_data(entry),
                    server_data: Some(current.to_owned()),
                }),
            })),
        };
    }
    Ok(Verdict::Write {
        row,
        bump_version,
        note: None,
    })
}

/// Reads the row with `id` as JSON text and locks it until the transaction
/// ends. Unnamed, so it is planned for the row at hand even in a batch that
/// allows generic plans (`apply_set` falls back to `apply_row` there).
async fn lock_current(
    conn: &mut PgConnection,
    table: &Table,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t)::text FROM {} AS t WHERE t.\"id\" = ($1::text)::{} FOR UPDATE",
        quote_ident(&table.name),
        table.id_type
    ))
    .persistent(false)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The columns a PUT writes: the table's client-owned columns plus those the
/// policy fills in (owner, per-field times), which the declaration may not
/// list; `None` when the table declares none.
fn written_columns<'c>(prepared: &Prepared<'c, '_>, row: &Row<'c, '_>) -> Option<Vec<&'c Column>> {
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

/// Writes an entry to an existing (locked) row: deltas are added, the
/// version is bumped.
async fn write_existing(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'_>,
    prepared: &Prepared<'_, '_>,
    entry: &Entry<'_>,
    row: &Row<'_, '_>,
    bump_version: Option<&Column>,
) -> Result<(), sqlx::Error> {
    let t = quote_ident(&table.name);
    let id_type = &table.id_type;
    match prepared.op {
        Op::Delete => {
            sql::delete(table, vec![row.id.as_str()])
                .execute(conn)
                .await?;
            return Ok(());
        }
        Op::Put => {
            let owned = written_columns(prepared, row);
            sql::upsert(table, owned.as_deref(), &[row])
                .execute(conn)
                .await?;
        }
        Op::Patch => {
            let old: Option<Value> = entry.old.and_then(|o| serde_json::from_str(o.get()).ok());
            let old = match old {
                Some(Value::String(text)) => serde_json::from_str(&text).ok(),
                other => other,
            };
            // (column, new value, previous value): the client's change is
            // new − previous when it sent `old` (trackPrevious), else the
            // value itself.
            let deltas: Vec<(&Column, String, String)> = policy
                .deltas
                .iter()
                .filter_map(|d| {
                    let new = row.values.iter().find(|(c, _)| c.name == d.name)?;
                    let previous = old
                        .as_ref()
                        .and_then(|o| o.get(&d.name))
                        .and_then(as_text)
                        .unwrap_or_else(|| "0".to_owned());
                    Some((
                        *d,
                        new.1.as_deref().unwrap_or_default().to_owned(),
                        previous,
                    ))
                })
                .collect();
            let mut plain = row.clone();
            plain
                .values
                .retain(|(c, _)| !deltas.iter().any(|(d, _, _)| d.name == c.name));
            if let Some(statement) = sql::update(table, &[&plain]) {
                statement.execute(conn).await?;
            }
            for (column, new, previous) in deltas {
                let c = quote_ident(&column.name);
                let ty = &column.sql_type;
                sqlx::query(&format!(
                    "UPDATE {t} SET {c} = {c} + (($2::text)::{ty} - ($3::text)::{ty}) \
                     WHERE \"id\" = ($1::text)::{id_type}"
                ))
                .bind(&row.id)
                .bind(new)
                .bind(previous)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    if let Some(column) = bump_version {
        let c = quote_ident(&column.name);
        sqlx::query(&format!(
            "UPDATE {t} SET {c} = {c} + 1 WHERE \"id\" = ($1::text)::{id_type}"
        ))
        // Unnamed, as `lock_current`.
        .persistent(false)
        .bind(&row.id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes recorded conflicts (after the client's writes, as uplink itself).
pub async fn record_conflicts(
    conn: &mut PgConnection,
    conflicts: &[(Option<i64>, &str, &RecordedConflict)],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    for (op_id, code, conflict) in conflicts {
        sqlx::query(
            "INSERT INTO write_conflicts \
             (table_name, row_id, conflict_type, client_data, server_data, user_id, client_id, op_id) \
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)",
        )
        .bind(&conflict.table)
        .bind(&conflict.row_id)
        .bind(code)
        .bind(&conflict.client_data)
        .bind(conflict.server_data.as_deref())
        .bind(user_id)
        .bind(client_id)
        .bind(op_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// (client transaction, entry) position of an entry in its batch.
pub type Position = (usize, usize);

/// Why a set of policy entries was not applied.
pub enum SetFailure {
    /// The policy refused this entry, the first of the set in the client's
    /// order: the one the one-at-a-time application refuses too.
    Refused(Position, Rejection),
    /// The policy refused a later entry: which entry the one-at-a-time
    /// application blames depends on the writes before it.
    RefusedLater(Rejection),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for SetFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

/// An entry of a set, with the batch entry it came from.
pub type SetEntry<'p, 'c, 'a, 'b> = (&'p Prepared<'c, 'a>, &'b Entry<'a>);

/// Entries refused so far, and how a refusal is reported.
struct Refusals {
    first: Option<Position>,
    refused: Vec<(Position, Rejection)>,
}

impl Refusals {
    fn note(&mut self, at: Position, failure: RowFailure) -> Result<(), sqlx::Error> {
        match failure {
            RowFailure::Refused(rejection) => {
                self.refused.push((at, rejection));
                Ok(())
            }
            RowFailure::Db(err) => Err(err),
        }
    }

    /// The refusal of the earliest refused entry, if any.
    fn failure(&mut self) -> Option<SetFailure> {
        self.refused.sort_by_key(|(at, _)| *at);
        match self.refused.drain(..).next() {
            Some((at, rejection)) if Some(at) == self.first => {
                Some(SetFailure::Refused(at, rejection))
            }
            Some((_, rejection)) => Some(SetFailure::RefusedLater(rejection)),
            None => None,
        }
    }
}

/// A decided write to an existing row.
struct Write<'p, 'c, 'a> {
    prepared: &'p Prepared<'c, 'a>,
    row: Row<'c, 'a>,
    bump_version: Option<&'c Column>,
}

/// Applies entries of one policy table, each on a different row, with the
/// decisions of `apply_row` in a few set-based statements: one reads and
/// locks the current rows, each entry is checked against its row as
/// `apply_row` checks it, then the rows that pass are written together. A
/// new id is inserted without replacing a row that appeared meanwhile, and
/// an entry that loses that race is checked against the winner's row, as in
/// `apply_row`. Returns the conflict notes in the client's order.
pub async fn apply_set<'c>(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[SetEntry<'_, 'c, '_, '_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Vec<(Position, ConflictNote)>, SetFailure> {
    let mut refusals = Refusals {
        first: entries.iter().map(|(p, _)| p.at).min(),
        refused: Vec::new(),
    };
    let mut claimed = Vec::with_capacity(entries.len());
    for &(prepared, entry) in entries {
        match claim(table, policy, prepared, user_id, client_id) {
            Ok(row) => claimed.push((prepared, entry, row)),
            Err(failure) => refusals.note(prepared.at, failure)?,
        }
    }
    let ids: Vec<&str> = claimed.iter().map(|(_, _, r)| r.id.as_str()).collect();
    let Some(current) = lock_rows(conn, table, &ids).await? else {
        // Two ids name one row (say, a uuid in upper and lower case).
        return apply_each(conn, table, policy, entries, user_id, client_id).await;
    };

    let mut notes = Vec::new();
    let mut writes = Vec::new();
    let mut inserts = Vec::new();
    for ((prepared, entry, row), locked) in claimed.into_iter().zip(current) {
        match locked.current {
            Some(current) => {
                let verdict =
                    check_existing(table, policy, prepared, entry, row, &current, user_id);
                match verdict {
                    Ok(verdict) => decided(prepared, verdict, &mut writes, &mut notes),
                    Err(failure) => refusals.note(prepared.at, failure)?,
                }
            }
            // No row: PATCH and DELETE do nothing (deletes win); PUT inserts.
            None if prepared.op != Op::Put => {}
            None => match check_new(policy, entry, row.clone()) {
                Ok(new_row) => inserts.push(Insert {
                    prepared,
                    entry,
                    key: locked.key,
                    claimed: row,
                    row: new_row,
                }),
                Err(failure) => refusals.note(prepared.at, failure)?,
            },
        }
    }
    if let Some(failure) = refusals.failure() {
        return Err(failure);
    }
    write_set(conn, table, &writes).await?;

    let inserted = insert_set(conn, table, &inserts).await?;
    let lost: Vec<Insert> = inserts
        .into_iter()
        .filter(|insert| !inserted.contains(&insert.key))
        .collect();
    if !lost.is_empty() {
        // Other transactions inserted these ids since the read: check the
        // entries against their rows.
        let ids: Vec<&str> = lost.iter().map(|i| i.claimed.id.as_str()).collect();
        // The first read found these keys distinct.
        let current = lock_rows(conn, table, &ids)
            .await?
            .ok_or_else(|| sqlx::Error::Decode("two new ids name one key".into()))?;
        let mut writes = Vec::new();
        for (insert, locked) in lost.into_iter().zip(current) {
            let Insert {
                prepared,
                entry,
                claimed,
                ..
            } = insert;
            let verdict = match locked.current {
                Some(current) => {
                    check_existing(table, policy, prepared, entry, claimed, &current, user_id)
                }
                None => Err(taken(table, &claimed.id)),
            };
            match verdict {
                Ok(verdict) => decided(prepared, verdict, &mut writes, &mut notes),
                Err(failure) => refusals.note(prepared.at, failure)?,
            }
        }
        if let Some(failure) = refusals.failure() {
            return Err(failure);
        }
        write_set(conn, table, &writes).await?;
    }
    notes.sort_by_key(|(at, _)| *at);
    Ok(notes)
}

/// Files a verdict: a write to make, a note to report.
fn decided<'p, 'c, 'a>(
    prepared: &'p Prepared<'c, 'a>,
    verdict: Verdict<'c, 'a>,
    writes: &mut Vec<Write<'p, 'c, 'a>>,
    notes: &mut Vec<(Position, ConflictNote)>,
) {
    match verdict {
        Verdict::Keep(note) => notes.push((prepared.at, note)),
        Verdict::Write {
            row,
            bump_version,
            note,
        } => {
            writes.push(Write {
                prepared,
                row,
                bump_version,
            });
            notes.extend(note.map(|n| (prepared.at, n)));
        }
    }
}

/// `apply_row` for each entry in the client's order.
async fn apply_each<'c>(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'c>,
    entries: &[SetEntry<'_, 'c, '_, '_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Vec<(Position, ConflictNote)>, SetFailure> {
    let mut ordered = entries.to_vec();
    ordered.sort_by_key(|(p, _)| p.at);
    let first = ordered.first().map(|(p, _)| p.at);
    let mut notes = Vec::new();
    for (prepared, entry) in ordered {
        match apply_row(conn, table, policy, prepared, entry, user_id, client_id).await {
            Ok(RowOutcome::Applied) => {}
            Ok(RowOutcome::Conflict(note)) => notes.push((prepared.at, note)),
            Err(RowFailure::Refused(rejection)) if Some(prepared.at) == first => {
                return Err(SetFailure::Refused(prepared.at, rejection));
            }
            Err(RowFailure::Refused(rejection)) => return Err(SetFailure::RefusedLater(rejection)),
            Err(RowFailure::Db(err)) => return Err(SetFailure::Db(err)),
        }
    }
    Ok(notes)
}

/// An id of a set, as read under lock.
#[derive(Clone)]
struct Locked {
    /// The id as Postgres prints the key (RETURNING gives it so).
    key: String,
    /// The current row as JSON text, if there is one.
    current: Option<String>,
}

/// Reads the rows with `ids` as JSON text, in the order of `ids`, and locks
/// them (in key order) until the transaction ends. `None` when two ids name
/// the same key (say, a uuid in upper and lower case). The statement is
/// unnamed, so it is planned for the ids at hand even in a batch that
/// allows generic plans.
async fn lock_rows(
    conn: &mut PgConnection,
    table: &Table,
    ids: &[&str],
) -> Result<Option<Vec<Locked>>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Some(Vec::new()));
    }
    // The whole array is cast first, so an id the key type refuses fails
    // the statement whether or not the table has rows, as in `lock_current`.
    let keys = format!(
        "unnest(($1::text[])::{}[]) WITH ORDINALITY AS u(id, i)",
        table.id_type
    );
    let found: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
        "WITH l AS (SELECT u.i, to_jsonb(t)::text AS row FROM {keys} \
         JOIN {} AS t ON t.\"id\" = u.id ORDER BY t.\"id\" FOR UPDATE OF t) \
         SELECT u.i, u.id::text, l.row FROM {keys} LEFT JOIN l ON l.i = u.i ORDER BY u.i",
        quote_ident(&table.name),
    ))
    .persistent(false)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut seen = BTreeSet::new();
    if !found.iter().all(|(_, key, _)| seen.insert(key.as_str())) || found.len() != ids.len() {
        return Ok(None);
    }
    Ok(Some(
        found
            .into_iter()
            .map(|(_, key, current)| Locked { key, current })
            .collect(),
    ))
}

/// The columns a statement writes (see `written_columns`) and its rows.
type ColumnSet<'r, 'c, 'a> = (Option<Vec<&'c Column>>, Vec<&'r Row<'c, 'a>>);

/// PUT rows grouped by the columns they write: one statement per column set.
fn by_columns<'r, 'c, 'a>(
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

/// A PUT of an id that had no row.
struct Insert<'p, 'c, 'a, 'b> {
    prepared: &'p Prepared<'c, 'a>,
    entry: &'b Entry<'a>,
    /// The id as Postgres prints the key.
    key: String,
    /// The row as claimed, to check against a row that appears meanwhile.
    claimed: Row<'c, 'a>,
    /// The row to insert.
    row: Row<'c, 'a>,
}

/// Inserts the rows of PUTs of ids that had no row; returns the keys
/// inserted (another transaction may have taken the others meanwhile).
async fn insert_set(
    conn: &mut PgConnection,
    table: &Table,
    inserts: &[Insert<'_, '_, '_, '_>],
) -> Result<BTreeSet<String>, sqlx::Error> {
    let mut inserted = BTreeSet::new();
    for (owned, rows) in by_columns(inserts.iter().map(|i| (i.prepared, &i.row))) {
        let keys = sql::insert_new(table, owned.as_deref(), &rows)
            .fetch_text(conn)
            .await?;
        inserted.extend(keys);
    }
    Ok(inserted)
}

/// Writes decided entries to their existing (locked) rows, as
/// `write_existing` does one by one: deletes, updates, replacing upserts,
/// then the version bumps.
async fn write_set(
    conn: &mut PgConnection,
    table: &Table,
    writes: &[Write<'_, '_, '_>],
) -> Result<(), sqlx::Error> {
    let of = |op: Op| writes.iter().filter(move |w| w.prepared.op == op);
    let deleted: Vec<&str> = of(Op::Delete).map(|w| w.row.id.as_str()).collect();
    if !deleted.is_empty() {
        sql::delete(table, deleted).execute(conn).await?;
    }
    // PATCH {} writes nothing (it would still fire update triggers).
    let patched: Vec<&Row> = of(Op::Patch)
        .map(|w| &w.row)
        .filter(|r| !r.values.is_empty())
        .collect();
    if let Some(statement) = sql::update(table, &patched) {
        statement.execute(conn).await?;
    }
    for (owned, rows) in by_columns(of(Op::Put).map(|w| (w.prepared, &w.row))) {
        sql::upsert(table, owned.as_deref(), &rows)
            .execute(conn)
            .await?;
    }
    let bumped: Vec<&str> = writes
        .iter()
        .filter(|w| w.bump_version.is_some())
        .map(|w| w.row.id.as_str())
        .collect();
    if let Some(column) = writes.iter().find_map(|w| w.bump_version) {
        let c = quote_ident(&column.name);
        sqlx::query(&format!(
            "UPDATE {} AS t SET {c} = t.{c} + 1 WHERE t.\"id\" = ANY(($1::text[])::{}[])",
            quote_ident(&table.name),
            table.id_type
        ))
        .persistent(false)
        .bind(bumped)
        .execute(conn)
        .await?;
    }
    Ok(())
}
