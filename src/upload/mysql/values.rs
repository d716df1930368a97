//! The client's values for the MySQL columns whose text input MySQL would
//! take differently from what the client meant: booleans as words, a
//! fraction in an integer column (MySQL rounds it), timestamps with an
//! offset (MySQL drops or refuses it), uuids kept as 16 bytes.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::upload::coerce::not_integral;
use crate::upload::integral::{integral_float, is_float_literal};
use crate::upload::schema::{Column, MySqlKind};

/// `text` is the value's text (a JSON string already decoded).
pub fn convert<'a>(
    column: &Column,
    kind: MySqlKind,
    text: Cow<'a, str>,
) -> Result<Cow<'a, str>, String> {
    match kind {
        MySqlKind::Boolean => Ok(match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "on" => Cow::Borrowed("1"),
            "false" | "f" | "no" | "off" => Cow::Borrowed("0"),
            _ => integer(column, text)?,
        }),
        MySqlKind::Integer => integer(column, text),
        MySqlKind::DateTime => Ok(utc(&text).map_or(text, Cow::Owned)),
        MySqlKind::BinaryUuid => uuid::Uuid::parse_str(text.trim())
            .map(|id| Cow::Owned(id.simple().to_string()))
            .map_err(|_| format!("column `{}` expects a uuid", column.name)),
    }
}

/// An integer's text: `25.0` → `25`; `2.5` refused rather than rounded.
fn integer<'a>(column: &Column, text: Cow<'a, str>) -> Result<Cow<'a, str>, String> {
    let trimmed = text.trim();
    if !is_float_literal(trimmed) {
        return Ok(text);
    }
    integral_float(trimmed)
        .map(Cow::Owned)
        .ok_or_else(|| not_integral(column, trimmed))
}

/// A timestamp as MySQL's DATETIME text in UTC, microseconds kept; `None`
/// when it is not one (MySQL then refuses it, or parses a date).
fn utc(text: &str) -> Option<String> {
    let at: DateTime<Utc> = if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        t.with_timezone(&Utc)
    } else {
        let text = text.trim();
        let with_offset = ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
            .iter()
            .find_map(|f| DateTime::parse_from_str(text, f).ok())
            .map(|t| t.with_timezone(&Utc));
        let naive = || {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|t| t.and_utc())
        };
        with_offset.or_else(naive)?
    };
    Some(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::schema::ValueKind;

    fn column(kind: MySqlKind) -> Column {
        Column {
            name: "c".into(),
            sql_type: String::new(),
            cast_type: String::new(),
            kind: ValueKind::MySql(kind),
            numeric: false,
            not_null: false,
            default: None,
            writable: true,
        }
    }

    fn convert_text(kind: MySqlKind, text: &str) -> Result<String, String> {
        convert(&column(kind), kind, Cow::Borrowed(text)).map(Cow::into_owned)
    }

    #[test]
    fn mysql_values_are_what_mysql_stores_without_rounding_or_offsets() {
        assert_eq!(convert_text(MySqlKind::Boolean, "true").unwrap(), "1");
        assert_eq!(convert_text(MySqlKind::Boolean, "false").unwrap(), "0");
        assert_eq!(convert_text(MySqlKind::Boolean, "1").unwrap(), "1");
        assert_eq!(convert_text(MySqlKind::Integer, "25.0").unwrap(), "25");
        assert_eq!(convert_text(MySqlKind::Integer, "1e3").unwrap(), "1000");
        assert_eq!(
            convert_text(MySqlKind::Integer, "9223372036854775807").unwrap(),
            "9223372036854775807"
        );
        assert!(convert_text(MySqlKind::Integer, "2.5").is_err());
        assert_eq!(
            convert_text(MySqlKind::DateTime, "2024-05-01T09:00:00+02:00").unwrap(),
            "2024-05-01 07:00:00.000000"
        );
        assert_eq!(
            convert_text(MySqlKind::DateTime, "2024-05-01T09:00:00.123Z").unwrap(),
            "2024-05-01 09:00:00.123000"
        );
        assert_eq!(
            convert_text(MySqlKind::DateTime, "2024-05-01 09:00:00").unwrap(),
            "2024-05-01 09:00:00.000000"
        );
        // A date alone is left to MySQL, which reads it as midnight.
        assert_eq!(
            convert_text(MySqlKind::DateTime, "2024-05-01").unwrap(),
            "2024-05-01"
        );
        assert_eq!(
            convert_text(
                MySqlKind::BinaryUuid,
                "0B1C6C6E-58F4-4B7F-9D5A-0A8C7E1F2D3B"
            )
            .unwrap(),
            "0b1c6c6e58f44b7f9d5a0a8c7e1f2d3b"
        );
        assert!(convert_text(MySqlKind::BinaryUuid, "nope").is_err());
    }
}
