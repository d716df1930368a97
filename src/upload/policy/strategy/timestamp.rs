//! `timestamp`: a write whose timestamp column is older than the server's
//! is stale. An update that does not say when it was made (the column
//! left out, null, or not a time uplink can compare) could undo any
//! change since: it loses as a stale one does, like an update without a
//! version. Deletes win (the SDK sends no data with a DELETE).

use super::judgement::Judgement;
use crate::error::ErrorCode;
use crate::upload::batch::Op;
use crate::upload::policy::stored::Stored;
use crate::upload::policy::values::{parse_time, value_of};
use crate::upload::row::Row;
use crate::upload::schema::Column;

pub fn judge<'c, 'a>(
    column: &'c Column,
    op: Op,
    row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Judgement<'c, 'a> {
    if op == Op::Delete {
        return Judgement::Current {
            row,
            bump_version: None,
        };
    }
    let Some(client) = value_of(&row, &column.name).and_then(|t| parse_time(&t)) else {
        return Judgement::Stale {
            row,
            code: ErrorCode::TimestampRequired,
            message: format!(
                "send the time of the write in `{}` (RFC 3339, e.g. 2026-01-31T12:00:00Z) with every update",
                column.name
            ),
        };
    };
    let on_server = server.text(&column.name).and_then(|t| parse_time(&t));
    if let Some(on_server) = on_server
        && client < on_server
    {
        return Judgement::Stale {
            row,
            code: ErrorCode::StaleUpdate,
            message: format!("the server's row was modified at {on_server}, after this write"),
        };
    }
    Judgement::Current {
        row,
        bump_version: None,
    }
}
