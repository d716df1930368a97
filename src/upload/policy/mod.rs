//! Per-table write policies: ownership, optimistic concurrency, deltas,
//! state machines, insert-only tables.
//!
//! A policy is resolved once against the introspected columns (`resolve`).
//! Each entry then goes through the same steps: guard (checks that need no
//! row), load (the current row, read with `FOR UPDATE` so concurrent
//! writers of one row serialise), check (the rules every policy shares),
//! decide (the conflict strategy, one file each under `strategy/`, and
//! `on_conflict`), write. A new row is inserted without replacing one that
//! appeared meanwhile, so concurrent creators of one id serialise on its key
//! too, and the one that loses is checked against the winner's row.
//! `apply_set` does this for a set of entries on distinct rows in a few
//! statements; `apply_row` one entry at a time, for delta columns and field
//! timestamps (their write depends on the running value) and as the
//! reference. Both run the same step functions.

mod check;
mod decide;
mod guard;
#[doc(hidden)]
pub mod probe;
pub mod resolve;
mod row;
mod set;
mod stored;
mod strategy;
mod values;
mod verdict;
mod write;

pub use resolve::Policy;
pub use row::apply_row;
pub use set::apply_set;
#[doc(hidden)]
pub use stored::Stored;
pub use verdict::{ConflictNote, RowOutcome};
