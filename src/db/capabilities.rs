//! What each kind of database offers uplink, declared in one place. Start-up
//! refuses, by key and with the reason, a setting that needs what the
//! configured database lacks (`settings::Settings::validate`): a setting
//! that silently did nothing would be a security hole (row-level security)
//! or lost data (attachments without records).

use crate::config::sections::DatabaseKind;

pub struct Capabilities {
    /// How the database is named in refusals.
    pub name: &'static str,
    /// Row-level security: `database.rls`.
    pub row_level_security: bool,
    /// Schemas inside a database: `write.schema` other than `public`.
    pub schemas: bool,
    /// uplink's attachment records: `attachments.enabled`.
    pub attachment_records: bool,
    /// The deepest request body (`limits.max_json_depth`) whose entries
    /// uplink can still keep as JSON in its own tables (dead letters,
    /// conflicts): beyond it a rejected entry could not be dead-lettered.
    pub max_json_depth: usize,
}

const POSTGRES: Capabilities = Capabilities {
    name: "Postgres",
    row_level_security: true,
    schemas: true,
    attachment_records: true,
    max_json_depth: usize::MAX,
};

const MYSQL: Capabilities = Capabilities {
    name: "MySQL",
    row_level_security: false,
    schemas: false,
    attachment_records: false,
    // MariaDB's JSON_VALID (the check on the JSON columns) refuses a document
    // nested 32 levels deep; a body of 32 levels stores its entries at 31.
    max_json_depth: 32,
};

/// What `kind` offers.
pub fn of(kind: DatabaseKind) -> &'static Capabilities {
    match kind {
        DatabaseKind::Postgres => &POSTGRES,
        DatabaseKind::MySql => &MYSQL,
    }
}
