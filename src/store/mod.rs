//! uplink's own tables, one file each: plain values in, `DbFailure` out.

pub mod attachments;
pub mod checkpoints;
pub mod conflicts;
pub mod dead_letters;
pub mod mysql;
pub mod progress;
