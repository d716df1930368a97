//! The database seam: the pool, uplink's migrations, and the one place where
//! database errors are classified.

pub mod capabilities;
pub mod failure;
pub mod migrate;
pub mod own;
pub mod pool;

pub use failure::{DbFailure, Refusal};
pub use own::Own;
