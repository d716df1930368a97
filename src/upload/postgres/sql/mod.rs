//! Every statement on the app's tables: set-based writes, row locks, the
//! role switch and visibility checks, increments. Identifiers come from the
//! introspected catalogue and are quoted; values are bound.

mod increments;
mod locks;
mod rows;
mod session;
mod statement;

pub use increments::{add_delta, bump_versions};
pub use locks::{lock_in_key_order, lock_rows};
pub use rows::{Combined, combined, delete, insert_new, update, upsert};
pub use session::{assume_role, check_constraints_immediately, hidden_rows, reset_role};
