//! uplink's own tables, one file each: plain values in, `DbFailure` out.
//! Every statement names its table through `db::Own`: they live in a
//! schema (or database) of their own, apart from the app's.

pub mod attachment_records;
pub mod attachments;
pub mod checkpoints;
pub mod conflicts;
pub mod dead_letters;
pub mod either;
pub mod multipart;
pub mod mysql;
pub mod progress;
