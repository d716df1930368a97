//! Reading values the policies compare: JSON values as text, timestamps,
//! the entry's data as stored with a conflict.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::value::RawValue;

use super::stored::raw_as_text;
use crate::upload::batch::Entry;
use crate::upload::jsonb::jsonb_safe;
use crate::upload::row::{Row, json_string};

/// Raw JSON as the text it stands for (see `Stored::text`); `None` for
/// null or text that is not JSON.
pub fn raw_text(raw: &str) -> Option<String> {
    serde_json::from_str::<&RawValue>(raw)
        .ok()
        .and_then(raw_as_text)
}

/// A timestamp as clients and Postgres print them; no offset means UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
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

/// The text a row sets `column` to, if it sets it to a value.
pub fn value_of(row: &Row, column: &str) -> Option<String> {
    row.values
        .iter()
        .find(|(c, _)| c.name == column)
        .and_then(|(_, v)| v.as_deref().map(str::to_owned))
}

/// The entry's data as a JSON object text, for `write_conflicts.client_data`.
pub fn client_data(entry: &Entry<'_>) -> String {
    let members: Vec<String> = entry
        .data
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), v.get()))
        .collect();
    jsonb_safe(&format!("{{{}}}", members.join(","))).into_owned()
}
