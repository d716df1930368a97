//! uplink's own tables on MySQL (`migrations/mysql`): the same functions as
//! their Postgres namesakes in `store`, one file each.

pub mod attachments;
pub mod checkpoints;
pub mod conflicts;
pub mod dead_letters;
pub mod multipart;
pub mod progress;
