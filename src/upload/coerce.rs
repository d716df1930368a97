//! Converts a client's JSON value into the text the column type's input
//! function parses (what Postgres does for `'…'::type`), or `None` for SQL
//! NULL. Postgres parses everything it can itself (numbers from text,
//! timestamps, uuids, enums, booleans from 0/1); here we only do what it
//! cannot: decode JSON strings, turn JSON text into json/jsonb, JSON arrays
//! into array literals, integral floats into integers — and refuse text
//! Postgres cannot store (NUL characters, unpaired surrogates) before it
//! reaches the database.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::integral::{integral_float, is_float_literal};
use super::schema::{Column, ValueKind};

/// Converts one value; the error is a message for the `invalid_value` result.
pub fn coerce<'a>(column: &Column, raw: &'a RawValue) -> Result<Option<Cow<'a, str>>, String> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let value = match column.kind {
        ValueKind::MySql(kind) => {
            let text = if text.starts_with('"') {
                decode(column, text)?
            } else {
                Cow::Borrowed(text)
            };
            super::mysql::values::convert(column, kind, text)?
        }
        ValueKind::Integer if is_float_literal(text) => {
            Cow::Owned(integral_float(text).ok_or_else(|| not_integral(column, text))?)
        }
        // Postgres reads `1` and `0` as booleans, not `1.0`.
        ValueKind::Boolean if is_float_literal(text) => {
            integral_float(text).map_or(Cow::Borrowed(text), Cow::Owned)
        }
        ValueKind::Json if text.starts_with('"') => {
            let inner = decode(column, text)?;
            serde_json::from_str::<IgnoredAny>(&inner).map_err(|_| {
                format!(
                    "column `{}` expects JSON text; the string is not valid JSON",
                    column.name
                )
            })?;
            inner
        }
        // Already a JSON object, array, number or boolean.
        ValueKind::Json => Cow::Borrowed(text),
        ValueKind::Array { text_elements } => {
            let array = if text.starts_with('"') {
                decode(column, text)?
            } else {
                Cow::Borrowed(text)
            };
            let not_array = || format!("column `{}` expects a JSON array as text", column.name);
            let elements: Vec<&RawValue> = serde_json::from_str(&array).map_err(|_| not_array())?;
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
            let mut literal = String::with_capacity(array.len() + 2);
            array_literal(column, &elements, &mut literal)?;
            Cow::Owned(literal)
        }
        _ if text.starts_with('"') => decode(column, text)?,
        // Numbers and booleans are their own text; objects reach the
        // type's input function as JSON text.
        _ => Cow::Borrowed(text),
    };
    if (column.numeric
        || matches!(
            column.kind,
            ValueKind::Json | ValueKind::Boolean | ValueKind::Integer
        ))
        && let Some(number) = unstorable_numbers(&value).next()
    {
        return Err(format!(
            "column `{}`: the number {} is beyond the range of Postgres numbers",
            column.name,
            super::batch::truncate_for_message(&value[number])
        ));
    }
    Ok(Some(value))
}

/// Why a number with a fraction is not stored in an integer column (it is
/// never rounded).
pub fn not_integral(column: &Column, number: &str) -> String {
    format!(
        "column `{}` expects an integer; the number {} is not one",
        column.name,
        super::batch::truncate_for_message(number)
    )
}

/// The byte ranges of the numbers in JSON text `json` that Postgres's
/// `numeric` (and so `jsonb`) cannot hold: more than 131072 digits before
/// the decimal point or 16383 after, exponent applied. serde_json reads such
/// a number without complaint (uplink keeps values as raw text).
pub fn unstorable_numbers(json: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let bytes = json.as_bytes();
    // Only an exponent or a very long literal can be out of range.
    let possible = json.len() > 16_000
        || bytes
            .windows(2)
            .any(|w| (w[0].is_ascii_digit() || w[0] == b'.') && matches!(w[1], b'e' | b'E'));
    let mut i = if possible { 0 } else { bytes.len() };
    std::iter::from_fn(move || {
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < bytes.len()
                        && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        i += 1;
                    }
                    if !numeric_fits(&json[start..i]) {
                        return Some(start..i);
                    }
                }
                _ => i += 1,
            }
        }
        None
    })
}

/// Whether Postgres's `numeric` input accepts the JSON number `number`.
fn numeric_fits(number: &str) -> bool {
    const MAX_WEIGHT: i64 = 131_071; // the highest power of ten of a digit
    const MAX_SCALE: i64 = 16_383; // digits after the decimal point
    let unsigned = number.strip_prefix('-').unwrap_or(number);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return false;
    };
    if exponent.abs() > i64::from(i32::MAX / 2) {
        return false;
    }
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if frac.len() as i64 - exponent > MAX_SCALE {
        return false;
    }
    let int = int.trim_start_matches('0');
    let weight = if !int.is_empty() {
        int.len() as i64 - 1
    } else {
        match frac.find(|c| c != '0') {
            Some(zeros) => -(zeros as i64) - 1,
            None => return true, // zero
        }
    };
    weight + exponent <= MAX_WEIGHT
}

/// A JSON string's content: borrowed when it has no escapes.
fn decode<'a>(column: &Column, json: &'a str) -> Result<Cow<'a, str>, String> {
    let text = match json.get(1..json.len() - 1) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        _ => Cow::Owned(serde_json::from_str::<String>(json).map_err(|_| {
            format!(
                "column `{}`: the text is not valid Unicode (an unpaired surrogate escape)",
                column.name
            )
        })?),
    };
    if text.contains('\0') {
        return Err(format!(
            "column `{}`: text with NUL characters (\\u0000) cannot be stored",
            column.name
        ));
    }
    Ok(text)
}

/// Appends the Postgres array literal of JSON array `elements`: every
/// element quoted (the element type parses it), `null` as NULL, nested
/// arrays as nested braces.
fn array_literal(column: &Column, elements: &[&RawValue], out: &mut String) -> Result<(), String> {
    out.push('{');
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let json = element.get();
        if json == "null" {
            out.push_str("NULL");
        } else if json.starts_with('[') {
            let nested: Vec<&RawValue> = serde_json::from_str(json)
                .map_err(|_| format!("column `{}` expects a JSON array", column.name))?;
            array_literal(column, &nested, out)?;
        } else {
            let text = if json.starts_with('"') {
                decode(column, json)?
            } else {
                Cow::Borrowed(json)
            };
            out.push('"');
            for c in text.chars() {
                if matches!(c, '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: ValueKind) -> Column {
        Column {
            name: "c".to_owned(),
            sql_type: "x".to_owned(),
            cast_type: "x".to_owned(),
            kind,
            numeric: false,
            not_null: false,
            default: None,
            writable: true,
        }
    }

    /// The input text, `NULL` for SQL NULL.
    fn run(kind: ValueKind, json: &str) -> Result<String, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        coerce(&column(kind), &raw).map(|c| c.map_or("NULL".to_owned(), Cow::into_owned))
    }

    #[test]
    fn numbers_beyond_postgres_numeric_are_found() {
        // Limits checked against Postgres 16: `SELECT '<n>'::jsonb`.
        for fits in [
            "1e131071",
            "9.9e131071",
            "1e-16383",
            "0e99999999",
            "-12.5",
            "0",
            "1E+5",
        ] {
            assert!(numeric_fits(fits), "{fits}");
        }
        for not in [
            "1e131072",
            "1e-16384",
            "0.5e-16383",
            "123e-16385",
            "1e99999999",
            "1e2147483647",
            "1e99999999999999999999",
        ] {
            assert!(!numeric_fits(not), "{not}");
        }
        let json = r#"{"a":"1e99999999","b":[1,2e99999999],"c":1e5}"#;
        let found: Vec<&str> = unstorable_numbers(json).map(|r| &json[r]).collect();
        assert_eq!(found, ["2e99999999"]);
        let err = run(ValueKind::Integer, "1e99999999").unwrap_err();
        assert!(
            err.contains("column `c`") && err.contains("1e99999999"),
            "{err}"
        );
        assert!(run(ValueKind::Json, r#""{\"x\": 1e99999999}""#).is_err());
    }

    #[test]
    fn strings_are_decoded_and_other_scalars_kept_as_text() {
        assert_eq!(run(ValueKind::Other, r#""plain""#).unwrap(), "plain");
        assert_eq!(
            run(ValueKind::Other, r#""say \"hi\"\n\u00e9""#).unwrap(),
            "say \"hi\"\né"
        );
        assert_eq!(run(ValueKind::Other, "12.50").unwrap(), "12.50");
        assert_eq!(run(ValueKind::Boolean, "true").unwrap(), "true");
        assert_eq!(run(ValueKind::Boolean, "0").unwrap(), "0");
        assert_eq!(run(ValueKind::Other, "null").unwrap(), "NULL");
        assert_eq!(run(ValueKind::Other, r#""null""#).unwrap(), "null");
    }

    #[test]
    fn text_postgres_cannot_store_is_refused() {
        assert!(run(ValueKind::Other, r#""a\u0000b""#).is_err());
        assert!(run(ValueKind::Other, r#""\ud800""#).is_err());
        assert!(
            run(
                ValueKind::Array {
                    text_elements: true
                },
                r#"["\u0000"]"#
            )
            .is_err()
        );
        assert_eq!(
            run(ValueKind::Other, r#""\ud83d\ude00""#).unwrap(),
            "\u{1F600}"
        );
    }

    #[test]
    fn integers_from_integral_floats_only() {
        assert_eq!(run(ValueKind::Integer, "25.0").unwrap(), "25");
        assert_eq!(
            run(ValueKind::Integer, "9007199254740990.0").unwrap(),
            "9007199254740990"
        );
        assert_eq!(run(ValueKind::Integer, "1e3").unwrap(), "1000");
        assert!(run(ValueKind::Integer, "2.5").is_err());
        assert!(run(ValueKind::Integer, "12345678901234567.5").is_err());
        assert!(run(ValueKind::Integer, "1.0000000000000001").is_err());
        assert_eq!(
            run(ValueKind::Integer, "12345678901234567.0").unwrap(),
            "12345678901234567"
        );
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
    fn arrays_become_array_literals() {
        let text = ValueKind::Array {
            text_elements: true,
        };
        assert_eq!(
            run(text, r#""[\"a\",\"NULL\",null,\"q\\\"b\\\\s\",\"x,{y}\"]""#).unwrap(),
            r#"{"a","NULL",NULL,"q\"b\\s","x,{y}"}"#
        );
        assert_eq!(run(text, r#""[]""#).unwrap(), "{}");
        assert!(run(text, r#""[1,2]""#).is_err());
        assert!(run(text, r#""{a,b}""#).is_err());
        assert!(run(text, "7").is_err());
        let ints = ValueKind::Array {
            text_elements: false,
        };
        assert_eq!(run(ints, "[1,2]").unwrap(), r#"{"1","2"}"#);
        assert_eq!(
            run(ints, "[[1,2],[3,null]]").unwrap(),
            r#"{{"1","2"},{"3",NULL}}"#
        );
        assert_eq!(run(ints, r#"[{"a":[1]}]"#).unwrap(), r#"{"{\"a\":[1]}"}"#);
    }
}
