//! uplink's own tables, one file each: plain values in, `DbFailure` out.

pub mod attachments;
pub mod checkpoints;
pub mod conflicts;
pub mod dead_letters;
pub mod mysql;
pub mod progress;

/// uplink's own tables (and its migrations' record), in the app's
/// database beside the app's tables: never offered by `uplink schema` and
/// never writable through the write path, whatever `write.tables` says.
pub const OWN_TABLES: &[(&str, &str)] = &[
    ("uplink_client_progress", "exactly-once progress"),
    ("uplink_dead_letters", "dead letters"),
    ("uplink_dead_letter_users", "dead-letter bookkeeping"),
    ("write_conflicts", "recorded write conflicts"),
    ("checkpoints", "write checkpoints"),
    ("attachments", "attachment records"),
    ("_sqlx_migrations", "uplink's migrations"),
];

/// What `table` holds, when it is one of uplink's own.
pub fn own_table(table: &str) -> Option<&'static str> {
    OWN_TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, holds)| *holds)
}
