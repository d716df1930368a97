//! What each kind of database offers uplink, declared in one place. Start-up
//! refuses, by key and with the reason, a setting that needs what the
//! configured database lacks (`settings::Settings::validate`): a setting
//! that silently did nothing would be a security hole (row-level security)
//! or a query the database would misread (`attachments.read_sql`).

use crate::config::sections::DatabaseKind;

pub struct Capabilities {
    /// How the database is named in refusals.
    pub name: &'static str,
    /// Row-level security: `database.rls`.
    pub row_level_security: bool,
    /// Schemas inside a database: `write.schema` other than `public`.
    pub schemas: bool,
    /// The deepest request body (`limits.max_json_depth`) whose entries
    /// uplink can still keep as JSON in its own tables (dead letters,
    /// conflicts): beyond it a rejected entry could not be dead-lettered.
    pub max_json_depth: usize,
    /// How a query's parameters are written (`attachments.read_sql`).
    pub parameters: ParameterStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterStyle {
    /// `$1`, `$2`, …: each names its value, and may repeat.
    Numbered,
    /// `?`: bound to the values in the order they appear.
    Positional,
}

const POSTGRES: Capabilities = Capabilities {
    name: "Postgres",
    row_level_security: true,
    schemas: true,
    max_json_depth: usize::MAX,
    parameters: ParameterStyle::Numbered,
};

const MYSQL: Capabilities = Capabilities {
    name: "MySQL",
    row_level_security: false,
    schemas: false,
    // MariaDB's JSON_VALID (the check on the JSON columns) refuses a document
    // nested 32 levels deep; a body of 32 levels stores its entries at 31.
    max_json_depth: 32,
    parameters: ParameterStyle::Positional,
};

/// What `kind` offers.
pub fn of(kind: DatabaseKind) -> &'static Capabilities {
    match kind {
        DatabaseKind::Postgres => &POSTGRES,
        DatabaseKind::MySql => &MYSQL,
    }
}
