//! Converts a client's JSON value into what `jsonb_populate_record` turns into
//! the column's type. Postgres parses everything it can itself (numbers from
//! text, timestamps, uuids, enums, booleans from 0/1); here we only do what it
//! cannot: JSON text into json/jsonb and arrays, integral floats into integers.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::schema::{Column, ValueKind};

/// Converts one value; the error is a message for the `invalid_value` result.
pub fn coerce<'a>(column: &Column, raw: &'a RawValue) -> Result<Cow<'a, str>, String> {
    let text = raw.get();
    if text == "null" {
        return Ok(Cow::Borrowed(text));
    }
    match column.kind {
        ValueKind::Boolean | ValueKind::Integer if is_float_literal(text) => {
            Ok(integral_float(text).map_or(Cow::Borrowed(text), Cow::Owned))
        }
        ValueKind::Json => match json_text(text) {
            Some(inner) => {
                serde_json::from_str::<IgnoredAny>(&inner).map_err(|_| {
                    format!(
                        "column `{}` expects JSON text; the string is not valid JSON",
                        column.name
                    )
                })?;
                Ok(Cow::Owned(inner))
            }
            // Already a JSON object, array, number or boolean.
            None => Ok(Cow::Borrowed(text)),
        },
        ValueKind::Array { text_elements } => {
            let array = match json_text(text) {
                Some(inner) => Cow::Owned(inner),
                None => Cow::Borrowed(text),
            };
            let elements: Vec<&RawValue> = serde_json::from_str(&array)
                .map_err(|_| format!("column `{}` expects a JSON array as text", column.name))?;
            if text_elements
                && elements
                    .iter()
                    .any(|e| !(e.get().starts_with('"') || e.get() == "null"))
            {
                return Err(format!(
                    "column `{}` expects a JSON array of strings",
                    column.name
                ));
            }
            Ok(match array {
                Cow::Owned(inner) => Cow::Owned(inner),
                Cow::Borrowed(_) => Cow::Borrowed(text),
            })
        }
        _ => Ok(Cow::Borrowed(text)),
    }
}

fn is_float_literal(text: &str) -> bool {
    text.as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
        && text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// `25.0` → `25`; `2.5` stays as is so Postgres refuses it (never rounded).
fn integral_float(text: &str) -> Option<String> {
    let value: f64 = text.parse().ok()?;
    // Beyond 2^63 an f64 is not an i64; leave the range error to Postgres.
    (value.is_finite() && value.fract() == 0.0 && value.abs() < 9.2e18)
        .then(|| format!("{}", value as i64))
}

/// The decoded content of a JSON string, or None when the value is not a string.
fn json_text(text: &str) -> Option<String> {
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: ValueKind) -> Column {
        Column {
            name: "c".to_owned(),
            sql_type: "x".to_owned(),
            kind,
            numeric: false,
            not_null: false,
            default: None,
            writable: true,
        }
    }

    fn run(kind: ValueKind, json: &str) -> Result<String, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        coerce(&column(kind), &raw).map(|c| c.into_owned())
    }

    #[test]
    fn integers_from_integral_floats_only() {
        assert_eq!(run(ValueKind::Integer, "25.0").unwrap(), "25");
        assert_eq!(
            run(ValueKind::Integer, "9007199254740990.0").unwrap(),
            "9007199254740990"
        );
        assert_eq!(run(ValueKind::Integer, "1e3").unwrap(), "1000");
        assert_eq!(run(ValueKind::Integer, "2.5").unwrap(), "2.5");
        assert_eq!(
            run(ValueKind::Integer, "9223372036854776000").unwrap(),
            "9223372036854776000"
        );
        assert_eq!(run(ValueKind::Boolean, "1.0").unwrap(), "1");
    }

    #[test]
    fn json_text_becomes_json_with_exact_numbers() {
        assert_eq!(
            run(
                ValueKind::Json,
                r#""{\"big\": 123456789012345678901234567890}""#
            )
            .unwrap(),
            r#"{"big": 123456789012345678901234567890}"#
        );
        assert_eq!(
            run(ValueKind::Json, r#""\"just a string\"""#).unwrap(),
            r#""just a string""#
        );
        assert_eq!(run(ValueKind::Json, r#"{"a":1}"#).unwrap(), r#"{"a":1}"#);
        assert!(run(ValueKind::Json, r#""{not json""#).is_err());
    }

    #[test]
    fn arrays_from_json_text() {
        let text = ValueKind::Array {
            text_elements: true,
        };
        assert_eq!(
            run(text, r#""[\"a\",\"NULL\"]""#).unwrap(),
            r#"["a","NULL"]"#
        );
        assert_eq!(run(text, r#""[]""#).unwrap(), "[]");
        assert!(run(text, r#""[1,2]""#).is_err());
        assert!(run(text, r#""{a,b}""#).is_err());
        assert!(run(text, "7").is_err());
        let ints = ValueKind::Array {
            text_elements: false,
        };
        assert_eq!(run(ints, "[1,2]").unwrap(), "[1,2]");
    }
}
