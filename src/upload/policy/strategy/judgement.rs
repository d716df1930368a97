//! What a conflict strategy says about an entry.

use crate::error::ErrorCode;
use crate::upload::row::Row;
use crate::upload::schema::Column;

/// A strategy's judgement of an entry against the server's row.
pub enum Judgement<'c, 'a> {
    /// The write is current: write `row`, then bump the version column.
    Current {
        row: Row<'c, 'a>,
        bump_version: Option<&'c Column>,
    },
    /// The server's row is newer; `on_conflict` decides what happens.
    Stale {
        row: Row<'c, 'a>,
        code: ErrorCode,
        message: String,
    },
    /// Some fields are stale: `row` keeps the newer ones; `kept` names the
    /// server's.
    Merged { row: Row<'c, 'a>, kept: Vec<String> },
}
