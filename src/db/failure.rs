//! The one place where database errors are classified (SQLSTATE codes appear
//! nowhere else): every caller decides on a `DbFailure`, never on a code.

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum DbFailure {
    /// The database cannot be reached, is overloaded or is shutting down:
    /// nothing was done; try again later (503).
    #[error("{0}")]
    Transient(String),
    /// A serialization failure, deadlock or lock wait timeout (the SQLSTATE
    /// or MySQL error number): the transaction may succeed when run again.
    #[error("transient conflict ({0})")]
    Conflict(String),
    /// The data is refused: a constraint, a type, a permission, the schema.
    #[error("refused: {} (SQLSTATE {})", .0.message, .0.sqlstate)]
    Refused(Refusal),
    /// Anything else: a bug or an unexpected state, logged with its cause.
    #[error(transparent)]
    Fatal(anyhow::Error),
}

/// What the database refused, in the client's terms.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub constraint: Option<String>,
    pub column: Option<String>,
    pub sqlstate: String,
}

impl From<sqlx::Error> for DbFailure {
    fn from(err: sqlx::Error) -> Self {
        classify(err)
    }
}

/// On uplink's own routes: transient failures and conflicts are 503 (the
/// client retries); a refusal of uplink's own statements is a bug.
impl From<DbFailure> for ApiError {
    fn from(failure: DbFailure) -> Self {
        match failure {
            DbFailure::Transient(cause) | DbFailure::Conflict(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unavailable; retry later",
                )
            }
            DbFailure::Refused(refusal) => ApiError::Unexpected(anyhow::anyhow!(
                "the database refused uplink's statement: {} (SQLSTATE {})",
                refusal.message,
                refusal.sqlstate
            )),
            DbFailure::Fatal(err) => ApiError::Unexpected(err),
        }
    }
}

impl DbFailure {
    /// Whether any cause in an error chain is a transient database failure.
    pub fn is_transient_cause(err: &anyhow::Error) -> bool {
        err.chain().any(|cause| {
            let classified = cause
                .downcast_ref::<DbFailure>()
                .is_some_and(Self::is_transient);
            classified
                || cause.downcast_ref::<sqlx::Error>().is_some_and(|err| {
                    connection_failure(err)
                        .or_else(|| database_failure(err))
                        .is_some_and(|failure| failure.is_transient())
                })
        })
    }

    /// Unavailable or conflicting: the same work may succeed when retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Conflict(_))
    }
}

/// Whether `err` says the connection itself is gone (the socket, or the
/// server ending the session), as opposed to waiting for one.
pub fn connection_lost(err: &sqlx::Error) -> bool {
    let waited = matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed);
    !waited
        && matches!(
            connection_failure(err).or_else(|| database_failure(err)),
            Some(DbFailure::Transient(_))
        )
}

pub fn classify(err: sqlx::Error) -> DbFailure {
    match connection_failure(&err).or_else(|| database_failure(&err)) {
        Some(failure) => failure,
        None => DbFailure::Fatal(anyhow::Error::new(err).context("unexpected database error")),
    }
}

fn connection_failure(err: &sqlx::Error) -> Option<DbFailure> {
    match err {
        sqlx::Error::PoolTimedOut => Some(DbFailure::Transient(
            "timed out waiting for a database connection".into(),
        )),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Some(DbFailure::Transient(
            "the database connection failed".into(),
        )),
        _ => None,
    }
}

/// A refusal by the database server, classified. Only what is known to be
/// transient is `Transient` or `Conflict`; every other error the server
/// reports is a `Refused` (with a precise code where one exists, else
/// `database_error`), which the write path localises to an entry: an error
/// uplink has never seen must not become a 5xx the client retries forever.
pub fn database_failure(err: &sqlx::Error) -> Option<DbFailure> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return Some(mysql_failure(mysql));
    }
    let column = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.column())
        .map(str::to_owned);
    let sqlstate = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let class = sqlstate.get(..2).unwrap_or("");
    let code = match (class, sqlstate.as_str()) {
        (_, "40001" | "40P01" | "55P03") => {
            return Some(DbFailure::Conflict(format!("SQLSTATE {sqlstate}")));
        }
        // Connection exceptions, the rest of class 40 (a transaction the
        // server rolled back), insufficient resources, operator
        // intervention (shutdown, statement timeout), system errors.
        ("08" | "40" | "53" | "57" | "58", _) => {
            return Some(DbFailure::Transient(format!(
                "database unavailable (SQLSTATE {sqlstate})"
            )));
        }
        (_, "23502") => ErrorCode::NotNullViolation,
        (_, "23503") => ErrorCode::ForeignKeyViolation,
        (_, "23505") => ErrorCode::UniqueViolation,
        (_, "23514") => ErrorCode::CheckViolation,
        (_, "23P01") => ErrorCode::ExclusionViolation,
        ("23", _) => ErrorCode::ConstraintViolation,
        ("22", _) => ErrorCode::InvalidValue,
        (_, "42501") | ("44", _) => ErrorCode::Forbidden,
        ("42", _) => ErrorCode::SchemaMismatch,
        ("P0", _) => ErrorCode::RejectedByDatabase,
        _ => ErrorCode::DatabaseError,
    };
    let constraint = db.constraint().map(str::to_owned);
    let said = Said {
        error: format!("SQLSTATE {sqlstate}"),
        text: db.message(),
        rule: pg_rule(code, db.message()),
    };
    Some(refused(code, column, constraint, sqlstate, &said))
}

/// What the database said of a refusal: its error (`SQLSTATE 22P02`,
/// `MySQL error 1366`), its message, and the part of the message an app's
/// rule (a trigger) wrote, if any.
struct Said<'t> {
    error: String,
    text: &'t str,
    rule: Option<&'t str>,
}

/// A Postgres message written by the app (a trigger's RAISE) rather than
/// by Postgres itself for its own constraint.
fn pg_rule(code: ErrorCode, text: &str) -> Option<&str> {
    let own = match code {
        ErrorCode::CheckViolation => text.starts_with("new row "),
        ErrorCode::RejectedByDatabase => false,
        _ => true,
    };
    (!own).then_some(text)
}

/// A refusal with the message clients see for its code.
fn refused(
    code: ErrorCode,
    column: Option<String>,
    constraint: Option<String>,
    sqlstate: String,
    said: &Said<'_>,
) -> DbFailure {
    let error = &said.error;
    let message = match code {
        ErrorCode::NotNullViolation => format!(
            "a value is required for column `{}`",
            column.as_deref().unwrap_or("?")
        ),
        ErrorCode::ForeignKeyViolation => format!(
            "a referenced row does not exist ({})",
            constraint.as_deref().unwrap_or("foreign key")
        ),
        ErrorCode::UniqueViolation => format!(
            "another row already has this value ({})",
            constraint.as_deref().unwrap_or("unique constraint")
        ),
        ErrorCode::CheckViolation => match said.rule {
            Some(rule) => format!(
                "{} (check constraint {})",
                bounded(rule),
                constraint.as_deref().unwrap_or("?")
            ),
            None => format!(
                "a value breaks the check constraint {}",
                constraint.as_deref().unwrap_or("?")
            ),
        },
        ErrorCode::Forbidden => {
            "the database refused the write (permission or row-level security)".to_owned()
        }
        ErrorCode::InvalidValue => match &column {
            Some(column) => format!(
                "column `{column}` cannot take the value: {} ({error})",
                bounded(said.text)
            ),
            None => format!(
                "a value cannot be stored in its column's type: {} ({error})",
                bounded(said.text)
            ),
        },
        ErrorCode::SchemaMismatch => format!(
            "the write does not fit the table's current schema: {} ({error})",
            bounded(said.text)
        ),
        ErrorCode::RejectedByDatabase => match said.rule {
            Some(rule) => format!("a database rule refused the write: {}", bounded(rule)),
            None => "a database rule refused the write".to_owned(),
        },
        _ => format!(
            "the database refused the write: {} ({error})",
            bounded(said.text)
        ),
    };
    DbFailure::Refused(Refusal {
        code,
        message,
        constraint,
        column,
        sqlstate,
    })
}

/// The database's own text, shortened for a report (it may quote the value).
fn bounded(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// MySQL and MariaDB errors, by error number (their SQLSTATEs are too
/// coarse: most refusals share `23000` or `HY000`). As on Postgres, only
/// the numbers known to be transient are.
fn mysql_failure(err: &sqlx::mysql::MySqlDatabaseError) -> DbFailure {
    let number = err.number();
    let sqlstate = err.code().unwrap_or("HY000").to_owned();
    let text = err.message();
    let code = match number {
        // Deadlock; lock wait timeout (InnoDB rolls back the statement only).
        1213 | 1205 => return DbFailure::Conflict(format!("MySQL error {number}")),
        // Too many connections, shutdown, read-only, query interrupted or
        // over its time, out of memory or disk, the server went away.
        1037 | 1038 | 1040 | 1041 | 1053 | 1077 | 1078 | 1079 | 1080 | 1152 | 1153 | 1154
        | 1155 | 1156 | 1157 | 1158 | 1159 | 1160 | 1161 | 1184 | 1203 | 1290 | 1317 | 1836
        | 1969 | 2002 | 2003 | 2006 | 2013 | 3024 | 4031 => {
            return DbFailure::Transient(format!("database unavailable (MySQL error {number})"));
        }
        1048 | 1364 => ErrorCode::NotNullViolation,
        1216 | 1217 | 1451 | 1452 => ErrorCode::ForeignKeyViolation,
        1062 | 1586 => ErrorCode::UniqueViolation,
        // MySQL's CHECK violation; MariaDB's.
        3819 | 4025 => ErrorCode::CheckViolation,
        1264 | 1265 | 1267 | 1270 | 1271 | 1292 | 1300 | 1366 | 1367 | 1406 | 1411 | 1690
        | 3140 | 4078 => ErrorCode::InvalidValue,
        1044 | 1045 | 1142 | 1143 => ErrorCode::Forbidden,
        1054 | 1109 | 1146 => ErrorCode::SchemaMismatch,
        // A trigger's SIGNAL without an error number of its own.
        1644 => ErrorCode::RejectedByDatabase,
        _ => ErrorCode::DatabaseError,
    };
    let column = quoted_after(text, "Column '")
        .or_else(|| quoted_after(text, "Field '"))
        .or_else(|| column_after(text, "for column "));
    let constraint = quoted_after(text, "CONSTRAINT `")
        .or_else(|| quoted_after(text, "for key '"))
        .or_else(|| quoted_after(text, "Check constraint '"));
    let said = Said {
        error: format!("MySQL error {number}"),
        text,
        rule: mysql_rule(number, text),
    };
    refused(code, column, constraint, sqlstate, &said)
}

/// What an app's rule wrote: a SIGNAL's text, or what follows MySQL's own
/// words in a trigger's imitation of a CHECK failure.
fn mysql_rule(number: u16, text: &str) -> Option<&str> {
    match number {
        1644 => Some(text),
        3819 => text
            .split_once(" is violated")
            .map(|(_, rest)| rest.trim_start_matches([':', '.', ' ']))
            .filter(|rest| !rest.is_empty()),
        _ => None,
    }
}

/// The column MySQL names as `` `db`.`table`.`column` `` or `'column'`
/// after `marker` (value errors).
fn column_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let name = rest.split(" at row").next()?.trim();
    let last = name.rsplit('.').next()?;
    Some(last.trim_matches(['`', '\'']).to_owned()).filter(|n| !n.is_empty())
}

/// The text after `marker` up to the next `'` (MySQL quotes names so).
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let end = rest.find(['\'', '`'])?;
    Some(rest[..end].to_owned()).filter(|name| !name.is_empty())
}
