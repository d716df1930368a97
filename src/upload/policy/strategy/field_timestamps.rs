//! `field_timestamps`: per-field client times in the entry's `_metadata`;
//! only fields newer than the server's are written, and the row keeps the
//! time of each field in a jsonb column.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use super::judgement::Judgement;
use crate::upload::batch::{Entry, Op};
use crate::upload::policy::values::parse_time;
use crate::upload::prepared::Prepared;
use crate::upload::schema::Column;
use crate::upload::sql::Row;

/// A new row carries the entry's field times.
pub fn stamp_new<'c>(column: &'c Column, entry: &Entry<'_>, row: &mut Row<'c, '_>) {
    set_times(column, &field_times(entry.metadata), row);
}

pub fn judge<'c, 'a>(
    column: &'c Column,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
    server: &Value,
) -> Judgement<'c, 'a> {
    if prepared.op == Op::Delete {
        return Judgement::Current {
            row,
            bump_version: None,
        };
    }
    let client_times = field_times(entry.metadata);
    let server_times: BTreeMap<String, DateTime<Utc>> = server
        .get(&column.name)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().and_then(parse_time).map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default();
    let mut merged = server_times.clone();
    let mut kept = Vec::new();
    row.values.retain(|(column, _)| {
        let client_time = client_times.get(&column.name);
        match (client_time, server_times.get(&column.name)) {
            (Some(c), Some(s)) if c <= s => {
                kept.push(column.name.clone());
                false
            }
            (Some(c), _) => {
                merged.insert(column.name.clone(), *c);
                true
            }
            (None, _) => true,
        }
    });
    set_times(column, &merged, &mut row);
    if kept.is_empty() {
        Judgement::Current {
            row,
            bump_version: None,
        }
    } else {
        Judgement::Merged { row, kept }
    }
}

/// Sets the row's field-times column to `times`.
fn set_times<'c>(
    column: &'c Column,
    times: &BTreeMap<String, DateTime<Utc>>,
    row: &mut Row<'c, '_>,
) {
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
