//! `version`: the client sends the version it last saw; the write applies
//! only to that version, which it then bumps.

use super::judgement::Judgement;
use crate::error::ErrorCode;
use crate::upload::batch::{Op, truncate_for_message};
use crate::upload::integral::integral_float;
use crate::upload::policy::stored::Stored;
use crate::upload::policy::values::raw_text;
use crate::upload::prepared::Prepared;
use crate::upload::row::Row;
use crate::upload::schema::Column;

pub fn judge<'c, 'a>(
    column: &'c Column,
    prepared: &Prepared<'c, 'a>,
    row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Judgement<'c, 'a> {
    // A row whose version is NULL (written before the policy, or out of
    // band) is at version 0, and a client that saw it as NULL saw that.
    let server_version = server.text(&column.name);
    let seen = prepared.conflict_value.as_deref().and_then(raw_text);
    let stale = match (seen.as_deref(), server_version.as_deref()) {
        (Some(seen), at) if !same_version(seen, at.unwrap_or("0")) => Some((
            ErrorCode::StaleVersion,
            format!(
                "the row is at version {}; the client saw {}",
                at.unwrap_or("NULL"),
                truncate_for_message(seen)
            ),
        )),
        // An update that does not say which version it saw could undo any
        // change since: it loses like a stale one. Deletes win (the SDK
        // sends no data with a DELETE).
        (None, Some(at)) if prepared.op != Op::Delete => Some((
            ErrorCode::VersionRequired,
            format!(
                "the row is at version {at}; send the version the client saw in `{}`",
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

/// Whether the version a client saw (as it sent it: `3`, `"3"`, `3.0`) is
/// the stored one, compared exactly as integers.
fn same_version(seen: &str, stored: &str) -> bool {
    let exact = |text: &str| {
        let text = text.trim();
        text.parse::<i128>()
            .ok()
            .or_else(|| integral_float(text)?.parse().ok())
    };
    matches!((exact(seen), exact(stored)), (Some(a), Some(b)) if a == b)
}
