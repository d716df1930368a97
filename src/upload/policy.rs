//! Per-table write policies: ownership, optimistic concurrency, deltas,
//! state machines, insert-only tables.
//!
//! Tables with such a policy take a per-row path: the current row is read
//! with `FOR UPDATE` (so concurrent writers of one row serialise), the policy
//! is checked against it, then the row is written. A new row is inserted
//! without replacing one that appeared meanwhile, so concurrent creators of
//! one id serialise on its key too. Tables without a policy stay on the
//! set-based fast path.

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

    /// Whether entries of this table need the per-row path.
    pub fn per_row(&self) -> bool {
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

/// Applies one entry of a policy table. `client_id` is the batch's client id
/// (delta columns need exactly-once delivery).
pub async fn apply_row(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'_>,
    prepared: &Prepared<'_, '_>,
    entry: &Entry<'_>,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<RowOutcome, RowFailure> {
    let mut row: Row = prepared.row.clone();
    let value_of = |row: &Row, column: &str| -> Option<String> {
        row.values
            .iter()
            .find(|(c, _)| c.name == column)
            .and_then(|(_, v)| v.as_deref().map(str::to_owned))
    };

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
            // The id is taken by a row this user cannot read (row-level security).
            return Err(refused(
                "forbidden",
                format!(
                    "row {} of `{}` belongs to another user",
                    json_string(&row.id),
                    table.name
                ),
            ));
        }
        if insert_new_row(conn, table, policy, prepared, entry, row.clone()).await? {
            return Ok(RowOutcome::Applied);
        }
        // Another transaction inserted the id since the read: check against its row.
        lost_race = true;
    };
    let Ok(server) = serde_json::from_str::<Value>(&current) else {
        return Err(RowFailure::Db(sqlx::Error::Decode(
            format!("the current row of `{}` is not JSON", table.name).into(),
        )));
    };

    let server_text = |column: &Column| server.get(&column.name).and_then(as_text);
    if let Some(owner) = policy.owner
        && server_text(owner).as_deref() != Some(user_id)
    {
        return Err(refused(
            "forbidden",
            format!(
                "row {} of `{}` belongs to another user",
                json_string(&row.id),
                table.name
            ),
        ));
    }
    if policy.insert_only {
        // The row exists: an insert-only table never changes it.
        return Ok(RowOutcome::Conflict(ConflictNote {
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
                                server_data: Some(current.clone()),
                            }
                        }),
                    };
                    if conflict.on_conflict == OnConflict::Reject {
                        return Err(refused("stale_field", note.message));
                    }
                    write_existing(conn, table, policy, prepared, entry, &row, None).await?;
                    return Ok(RowOutcome::Conflict(note));
                }
            }
            ConflictStrategy::FieldTimestamps => {}
        }
    }
    if let (Some((code, message)), Some(conflict)) = (stale, policy.conflict) {
        return match conflict.on_conflict {
            OnConflict::Reject => Err(refused(code, message)),
            on_conflict => Ok(RowOutcome::Conflict(ConflictNote {
                code,
                message,
                record: (on_conflict == OnConflict::Record).then(|| RecordedConflict {
                    table: table.name.clone(),
                    row_id: row.id.clone(),
                    client_data: client_data(entry),
                    server_data: Some(current.clone()),
                }),
            })),
        };
    }
    write_existing(conn, table, policy, prepared, entry, &row, bump_version).await?;
    Ok(RowOutcome::Applied)
}

/// Reads the row with `id` as JSON text and locks it until the transaction ends.
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
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Inserts the row of a PUT of an id that did not exist; false when another
/// transaction inserted the id first (nothing was written).
async fn insert_new_row(
    conn: &mut PgConnection,
    table: &Table,
    policy: &Policy<'_>,
    prepared: &Prepared<'_, '_>,
    entry: &Entry<'_>,
    mut row: Row<'_, '_>,
) -> Result<bool, RowFailure> {
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
    let owned = written_columns(prepared, &row);
    let inserted = sql::insert_new(table, owned.as_deref(), &[&row])
        .fetch_text(conn)
        .await?;
    Ok(!inserted.is_empty())
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
