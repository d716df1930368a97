//! Where uplink keeps its own tables: a schema of the app's database on
//! Postgres, a database beside the app's on MySQL (where a schema is a
//! database). Every statement on them names them through [`Own`], so an
//! app's tables of the same names (`checkpoints`, `attachments`, …) are
//! never read or written by uplink's bookkeeping, and the write path, which
//! only sees the app's schema, never offers uplink's tables to clients.

use std::sync::Arc;

use crate::config::sections::DatabaseKind;

/// The name used when `database.uplink_schema` is not set, on Postgres.
pub const DEFAULT_POSTGRES_SCHEMA: &str = "uplink";

/// The qualified names of uplink's tables, quoted for one kind of database.
#[derive(Clone, Debug)]
pub struct Own {
    name: Arc<str>,
    pub progress: Arc<str>,
    pub dead_letters: Arc<str>,
    pub dead_letter_users: Arc<str>,
    pub conflicts: Arc<str>,
    pub checkpoints: Arc<str>,
    pub attachments: Arc<str>,
}

impl Own {
    /// uplink's tables in schema (or database) `name`, which
    /// [`valid_name`] accepted.
    pub fn new(kind: DatabaseKind, name: &str) -> Self {
        let quote = match kind {
            DatabaseKind::Postgres => '"',
            DatabaseKind::MySql => '`',
        };
        let table = |table: &str| -> Arc<str> {
            format!("{quote}{name}{quote}.{quote}{table}{quote}").into()
        };
        Self {
            name: name.into(),
            progress: table("client_progress"),
            dead_letters: table("dead_letters"),
            dead_letter_users: table("dead_letter_users"),
            conflicts: table("write_conflicts"),
            checkpoints: table("checkpoints"),
            attachments: table("attachments"),
        }
    }

    /// The schema (or database) name, unquoted.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The schema (or database) uplink's tables go to: `configured`, or the
/// default for the kind of database (`app_database` is the MySQL database
/// the URL names).
pub fn schema_name(
    configured: Option<&str>,
    kind: DatabaseKind,
    app_database: Option<&str>,
) -> String {
    match (configured, kind) {
        (Some(name), _) => name.to_owned(),
        (None, DatabaseKind::Postgres) => DEFAULT_POSTGRES_SCHEMA.to_owned(),
        (None, DatabaseKind::MySql) => format!("{}_uplink", app_database.unwrap_or("app")),
    }
}

/// Whether `name` is a plain lowercase identifier both databases accept
/// unchanged (a quoted name would be a second way to spell the same one).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_for_each_database() {
        let pg = Own::new(DatabaseKind::Postgres, "uplink");
        assert_eq!(&*pg.checkpoints, r#""uplink"."checkpoints""#);
        let my = Own::new(DatabaseKind::MySql, "app_uplink");
        assert_eq!(&*my.progress, "`app_uplink`.`client_progress`");
    }

    #[test]
    fn only_plain_lowercase_identifiers_are_valid() {
        for good in ["uplink", "_u", "app_uplink2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "Uplink",
            "1x",
            "a-b",
            "a.b",
            "a\"b",
            "a`b",
            &"x".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn mysql_defaults_beside_the_app_database() {
        assert_eq!(
            schema_name(None, DatabaseKind::MySql, Some("shop")),
            "shop_uplink"
        );
        assert_eq!(schema_name(None, DatabaseKind::Postgres, None), "uplink");
        assert_eq!(
            schema_name(Some("books"), DatabaseKind::MySql, Some("shop")),
            "books"
        );
    }
}
