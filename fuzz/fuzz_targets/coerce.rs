//! A client's JSON value coerced into every kind of column uplink knows,
//! on Postgres and on MySQL: no panic, no NUL character ever reaches the
//! database, a string for a plain text column is exactly its decoded text,
//! JSON columns get valid JSON, integer columns no fraction, and MySQL's
//! binary uuids 32 hex digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use uplink::upload::coerce;
use uplink::upload::schema::{Column, MySqlKind, ValueKind};

fn column(kind: ValueKind, numeric: bool) -> Column {
    Column {
        name: "c".to_owned(),
        sql_type: "text".to_owned(),
        cast_type: "text".to_owned(),
        kind,
        numeric,
        not_null: false,
        default: None,
        writable: true,
    }
}

fn columns() -> Vec<Column> {
    let mut columns = vec![
        column(ValueKind::Boolean, false),
        column(ValueKind::Integer, true),
        column(ValueKind::Json, false),
        column(
            ValueKind::Array {
                text_elements: true,
            },
            false,
        ),
        column(
            ValueKind::Array {
                text_elements: false,
            },
            false,
        ),
        column(ValueKind::Other, true),
        column(ValueKind::Other, false),
    ];
    for kind in [
        MySqlKind::Boolean,
        MySqlKind::Integer,
        MySqlKind::DateTime,
        MySqlKind::BinaryUuid,
    ] {
        columns.push(column(ValueKind::MySql(kind), kind == MySqlKind::Integer));
    }
    columns
}

fn is_float_literal(text: &str) -> bool {
    text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) && text.contains(['.', 'e', 'E'])
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<Box<RawValue>>(data) else {
        return;
    };
    let text = raw.get();
    for column in &columns() {
        let coerced = coerce(column, &raw);
        let value = match &coerced {
            Ok(Some(value)) => value.as_ref(),
            Ok(None) => {
                assert_eq!(text, "null", "only null is NULL");
                continue;
            }
            Err(message) => {
                assert!(!message.is_empty(), "a refusal says why");
                continue;
            }
        };
        assert!(text != "null", "null is NULL in every column");
        assert!(
            !value.contains('\0'),
            "{:?}: a NUL reaches the database",
            column.kind
        );
        match column.kind {
            ValueKind::Json => {
                serde_json::from_str::<serde::de::IgnoredAny>(value)
                    .expect("a JSON column gets valid JSON");
            }
            ValueKind::Integer if is_float_literal(text) => {
                assert!(
                    !value.contains(['.', 'e', 'E']),
                    "an integer column gets an integer: {text} -> {value}"
                );
            }
            ValueKind::Array { .. } => {
                assert!(value.starts_with('{') && value.ends_with('}'), "{value}");
            }
            ValueKind::MySql(MySqlKind::BinaryUuid) => {
                assert!(
                    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()),
                    "a binary uuid is 32 hex digits: {value}"
                );
            }
            _ => {}
        }
    }
    // A string for a plain text column: its decoded text exactly, refused
    // only when the database could not store it.
    if text.starts_with('"') {
        let plain = coerce(&column(ValueKind::Other, false), &raw);
        match serde_json::from_str::<String>(text) {
            Ok(decoded) if !decoded.contains('\0') => {
                assert_eq!(
                    plain.expect("storable text").as_deref(),
                    Some(decoded.as_str())
                );
            }
            _ => assert!(plain.is_err(), "unstorable text is refused: {text}"),
        }
    }
});
