//! The one place where database errors are classified (SQLSTATE codes appear
//! nowhere else): every caller decides on a `DbFailure`, never on a code.

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum DbFailure {
    /// The database cannot be reached, is overloaded or is shutting down:
    /// nothing was done; try again later (503).
    #[error("{0}")]
    Transient(String),
    /// A serialization failure or deadlock (the SQLSTATE): the transaction
    /// may succeed when run again.
    #[error("transient conflict (SQLSTATE {0})")]
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

pub fn database_failure(err: &sqlx::Error) -> Option<DbFailure> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let column = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.column())
        .map(str::to_owned);
    let sqlstate = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let class = sqlstate.get(..2).unwrap_or("");
    let code = match (class, sqlstate.as_str()) {
        (_, "40001" | "40P01") => return Some(DbFailure::Conflict(sqlstate)),
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
        _ => return None,
    };
    let constraint = db.constraint().map(str::to_owned);
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
        ErrorCode::CheckViolation => format!(
            "a value breaks the check constraint {}",
            constraint.as_deref().unwrap_or("?")
        ),
        ErrorCode::Forbidden => {
            "the database refused the write (permission or row-level security)".to_owned()
        }
        ErrorCode::InvalidValue => {
            format!("a value cannot be stored in its column's type (SQLSTATE {sqlstate})")
        }
        ErrorCode::SchemaMismatch => "the write does not fit the table's current schema".to_owned(),
        ErrorCode::RejectedByDatabase => "a database rule refused the write".to_owned(),
        _ => format!("the database refused the write (SQLSTATE {sqlstate})"),
    };
    Some(DbFailure::Refused(Refusal {
        code,
        message,
        constraint,
        column,
        sqlstate,
    }))
}
