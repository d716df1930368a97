//! `version`: the client sends the version it last saw; the write applies
//! only to that version, which it then bumps.

use serde_json::Value;

use super::judgement::Judgement;
use crate::error::ErrorCode;
use crate::upload::batch::Op;
use crate::upload::policy::values::raw_text;
use crate::upload::prepared::Prepared;
use crate::upload::schema::Column;
use crate::upload::sql::Row;

pub fn judge<'c, 'a>(
    column: &'c Column,
    prepared: &Prepared<'c, 'a>,
    row: Row<'c, 'a>,
    server: &Value,
) -> Judgement<'c, 'a> {
    let server_version = server.get(&column.name).and_then(Value::as_i64);
    let seen = prepared
        .conflict_value
        .as_deref()
        .and_then(raw_text)
        .and_then(|v| v.parse::<f64>().ok());
    let stale = match (seen, server_version) {
        (Some(seen), Some(server_version)) if seen != server_version as f64 => Some((
            ErrorCode::StaleVersion,
            format!("the row is at version {server_version}; the client saw {seen}"),
        )),
        // An update that does not say which version it saw could undo any
        // change since: it loses like a stale one. Deletes win (the SDK
        // sends no data with a DELETE).
        (None, Some(server_version)) if prepared.op != Op::Delete => Some((
            ErrorCode::VersionRequired,
            format!(
                "the row is at version {server_version}; send the version the client saw in `{}`",
                column.name
            ),
        )),
        _ => None,
    };
    if let Some((code, message)) = stale {
        return Judgement::Stale { row, code, message };
    }
    Judgement::Current {
        row,
        bump_version: (prepared.op != Op::Delete).then_some(column),
    }
}
