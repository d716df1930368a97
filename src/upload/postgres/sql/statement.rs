//! A statement over the app's tables and its bound parameters. Every
//! identifier comes from the introspected catalogue and is quoted here;
//! every value is bound.

use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection};

/// A statement and its parameters, in placeholder order.
pub struct Statement<'p> {
    pub sql: String,
    params: Vec<Param<'p>>,
    /// Whether the connection keeps the statement prepared, so Postgres may
    /// reuse a generic plan for it: only for an insert, whose plan probes
    /// the key whatever the data. A statement that looks rows up is sent
    /// unnamed and planned for its rows every time (docs/architecture.md,
    /// the generic-plan trap).
    kept: bool,
}

enum Param<'p> {
    Text(Vec<Option<&'p str>>),
    Flags(Vec<bool>),
}

impl Statement<'_> {
    pub async fn execute(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query_with(&self.sql, self.arguments()?)
            .persistent(self.kept)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Runs the statement; the text of its one column, per returned row.
    pub async fn fetch_text(&self, conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar_with(&self.sql, self.arguments()?)
            .persistent(self.kept)
            .fetch_all(conn)
            .await
    }

    fn arguments(&self) -> Result<PgArguments, sqlx::Error> {
        let mut arguments = PgArguments::default();
        for param in &self.params {
            match param {
                Param::Text(values) => arguments.add(values),
                Param::Flags(values) => arguments.add(values),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(arguments)
    }
}

/// Collects parameters while a statement's text is written.
#[derive(Default)]
pub(super) struct Binds<'p> {
    params: Vec<Param<'p>>,
}

impl<'p> Binds<'p> {
    /// Binds a text array; returns its placeholder.
    pub(super) fn text(&mut self, values: Vec<Option<&'p str>>) -> String {
        self.params.push(Param::Text(values));
        format!("${}::text[]", self.params.len())
    }

    pub(super) fn flags(&mut self, values: Vec<bool>) -> String {
        self.params.push(Param::Flags(values));
        format!("${}::bool[]", self.params.len())
    }

    /// An insert: kept prepared, its plan reused.
    pub(super) fn insert(self, sql: String) -> Statement<'p> {
        Statement {
            sql,
            params: self.params,
            kept: true,
        }
    }

    /// A statement that looks rows up: planned for its rows each time.
    pub(super) fn lookup(self, sql: String) -> Statement<'p> {
        Statement {
            sql,
            params: self.params,
            kept: false,
        }
    }
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
