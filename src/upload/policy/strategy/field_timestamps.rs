//! `field_timestamps`: per-field client times in the entry's `_metadata`;
//! only fields newer than the server's are written, and the row keeps the
//! time of each field in a jsonb column.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::judgement::Judgement;
use crate::upload::batch::{Entry, Op};
use crate::upload::policy::stored::Stored;
use crate::upload::policy::values::parse_time;
use crate::upload::prepared::Prepared;
use crate::upload::row::Row;
use crate::upload::schema::Column;

/// A new row carries the entry's field times.
pub fn stamp_new<'c>(column: &'c Column, entry: &Entry<'_>, row: &mut Row<'c, '_>) {
    set_times(column, &field_times(entry.metadata), row);
}

pub fn judge<'c, 'a>(
    column: &'c Column,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    mut row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Judgement<'c, 'a> {
    if prepared.op == Op::Delete {
        return Judgement::Current {
            row,
            bump_version: None,
        };
    }
    let client_times = field_times(entry.metadata);
    let server_times = server
        .raw(&column.name)
        .map(|raw| times_in(raw.get()))
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
    let decoded;
    let text = match raw.get() {
        quoted if quoted.starts_with('"') => {
            decoded = serde_json::from_str::<String>(quoted).unwrap_or_default();
            decoded.as_str()
        }
        object => object,
    };
    let Some(metadata) = Stored::parse(text) else {
        return BTreeMap::new();
    };
    match metadata
        .raw("field_timestamps")
        .or_else(|| metadata.raw("fieldTimestamps"))
    {
        Some(inner) => times_in(inner.get()),
        None => times_in(text),
    }
}

/// The times of a JSON object of `{"column": time}` (what is not a time is
/// left out).
fn times_in(object: &str) -> BTreeMap<String, DateTime<Utc>> {
    let Some(times) = Stored::parse(object) else {
        return BTreeMap::new();
    };
    times
        .names()
        .filter_map(|name| {
            let time = times.text(name).and_then(|t| parse_time(&t))?;
            Some((name.to_owned(), time))
        })
        .collect()
}
