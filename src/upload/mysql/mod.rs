//! The write path on MySQL and MariaDB: the same batches, semantics and
//! report as on Postgres (the shared steps: `work`, `plan`, `policy`'s
//! checks, `report`, `bookkeeping`), with MySQL's own statements.
//!
//! Differences that matter: MySQL has no `unnest`, so set-based writes are
//! multi-row `INSERT … ON DUPLICATE KEY UPDATE`, `UPDATE … CASE id` and
//! `DELETE … WHERE id IN`; a failed statement does not abort the
//! transaction (the careful mode still uses savepoints, to undo a client
//! transaction's earlier writes); and values MySQL would silently alter are
//! converted or refused first (`values`).

mod apply;
pub mod catalog;
mod found;
mod policy;
mod run;
mod statements;
pub mod values;

pub use apply::apply_in;
