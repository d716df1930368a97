//! An entry that passed validation, ready to be written: shared by the
//! grouping into statements (`plan`) and the policies (`policy`).

use std::borrow::Cow;

use super::batch::Op;
use super::policy::resolve::Policy;
use super::row::Row;
use super::schema::{Column, Table};

/// (client transaction, entry) position of an entry in its batch.
pub type Position = (usize, usize);

/// An entry that passed validation: its table and coerced values.
#[derive(Debug, Clone)]
pub struct Prepared<'c, 'a> {
    /// (client transaction, entry) position in the batch.
    pub at: Position,
    pub table: &'c Table,
    /// The client-owned columns, when the table declares them.
    pub owned: Option<&'c [&'c Column]>,
    /// Set when the table's policy checks rows.
    pub policy: Option<&'c Policy<'c>>,
    /// The policy is applied one row at a time (`policy::apply_row`), not a
    /// set at a time (`policy::apply_set`).
    pub one_at_a_time: bool,
    pub op: Op,
    pub row: Row<'c, 'a>,
    /// The version the client last saw (`version` strategy), never written.
    pub conflict_value: Option<Cow<'a, str>>,
    /// Read-only columns the client tried to write (dropped from the row).
    pub read_only_hits: Vec<String>,
}
