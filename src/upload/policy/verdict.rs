//! What the policy steps decide for an entry, and how they refuse one.

use crate::error::ErrorCode;
use crate::upload::rejection::Rejection;
use crate::upload::row::{Row, json_string};
use crate::upload::schema::{Column, Table};

/// An entry that was resolved in the server's favour.
#[derive(Debug, Clone)]
pub struct ConflictNote {
    pub code: ErrorCode,
    pub message: String,
    /// Write both versions to `write_conflicts`.
    pub record: Option<RecordedConflict>,
}

#[derive(Debug, Clone)]
pub struct RecordedConflict {
    pub table: String,
    pub row_id: String,
    pub client_data: String,
    pub server_data: Option<String>,
}

/// What the per-row path decided for one entry.
pub enum RowOutcome {
    Applied,
    Conflict(ConflictNote),
}

pub fn refused(code: ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message)
}

/// A PUT of an id taken by a row this user cannot read (row-level security).
pub fn taken(table: &Table, id: &str) -> Rejection {
    refused(
        ErrorCode::Forbidden,
        format!(
            "row {} of `{}` belongs to another user",
            json_string(id),
            table.name
        ),
    )
}

/// A decided write to an existing (locked) row: everything the write step
/// needs, so it judges nothing again.
#[derive(Debug)]
pub struct Write<'c, 'a> {
    /// The values to set (delta columns excluded).
    pub row: Row<'c, 'a>,
    /// Add one to this version column afterwards.
    pub bump_version: Option<&'c Column>,
    /// Delta columns of a PATCH, added to the running value.
    pub deltas: Vec<Delta<'c>>,
}

/// A PATCH of a delta column: the client's change is `new − previous`.
#[derive(Debug)]
pub struct Delta<'c> {
    pub column: &'c Column,
    pub new: String,
    pub previous: String,
}

/// What a policy decided for an entry on an existing row.
pub enum Verdict<'c, 'a> {
    /// Write; the note names values the server kept (field timestamps).
    Write(Write<'c, 'a>, Option<ConflictNote>),
    /// The server's row stays as it is.
    Keep(ConflictNote),
}
