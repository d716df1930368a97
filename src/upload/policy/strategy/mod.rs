//! Conflict strategies, one file each: whether a client's write to an
//! existing row is current. Without one (no `conflict:` setting) the last
//! write wins. A new strategy adds a `ConflictStrategy` setting, its file
//! here and its column check in `resolve`.

pub mod field_timestamps;
mod judgement;
mod timestamp;
mod version;

pub use judgement::Judgement;

use super::resolve::Conflict;
use super::stored::Stored;
use crate::upload::batch::Entry;
use crate::upload::prepared::Prepared;
use crate::upload::row::Row;
use crate::upload::settings::ConflictStrategy;

pub fn judge<'c, 'a>(
    conflict: &Conflict<'c>,
    prepared: &Prepared<'c, 'a>,
    entry: &Entry<'_>,
    row: Row<'c, 'a>,
    server: &Stored<'_>,
) -> Judgement<'c, 'a> {
    match conflict.strategy {
        ConflictStrategy::Version => version::judge(conflict.column, prepared, row, server),
        ConflictStrategy::Timestamp => timestamp::judge(conflict.column, prepared.op, row, server),
        ConflictStrategy::FieldTimestamps => {
            field_timestamps::judge(conflict.column, prepared, entry, row, server)
        }
    }
}
