//! The one place where database errors become outcomes: a permanent rejection
//! of the client transaction, or a transient failure the device retries.

use super::report::Rejection;

pub enum DbFailure {
    /// The data is refused (constraint, type, permission): reject the client transaction.
    Permanent(Rejection),
    /// Retry the whole request internally first (serialization failure, deadlock).
    Retryable(String),
    /// The database is unavailable: answer 503, nothing applied.
    Unavailable(String),
    /// The user's dead letters are full: refuse the batch, nothing applied.
    DeadLetterLimit(String),
    Unexpected(anyhow::Error),
}

pub fn classify(err: sqlx::Error) -> DbFailure {
    let db = match &err {
        sqlx::Error::Database(db) => db,
        sqlx::Error::PoolTimedOut => {
            return DbFailure::Unavailable("timed out waiting for a database connection".into());
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            return DbFailure::Unavailable("the database connection failed".into());
        }
        _ => {
            return DbFailure::Unexpected(
                anyhow::Error::new(err).context("Failed to apply the batch"),
            );
        }
    };
    let column = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.column())
        .map(str::to_owned);
    let sqlstate = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let class = sqlstate.get(..2).unwrap_or("");
    let code = match (class, sqlstate.as_str()) {
        (_, "40001" | "40P01") => return DbFailure::Retryable(sqlstate),
        ("08" | "53" | "57" | "58", _) => {
            return DbFailure::Unavailable(format!("database unavailable (SQLSTATE {sqlstate})"));
        }
        (_, "23502") => "not_null_violation",
        (_, "23503") => "foreign_key_violation",
        (_, "23505") => "unique_violation",
        (_, "23514") => "check_violation",
        (_, "23P01") => "exclusion_violation",
        ("23", _) => "constraint_violation",
        ("22", _) => "invalid_value",
        (_, "42501") | ("44", _) => "forbidden",
        ("42", _) => "schema_mismatch",
        ("P0", _) => "rejected_by_database",
        _ => {
            return DbFailure::Unexpected(
                anyhow::Error::new(err).context("Unexpected database error while applying a batch"),
            );
        }
    };
    let message = match code {
        "not_null_violation" => format!(
            "a value is required for column `{}`",
            column.as_deref().unwrap_or("?")
        ),
        "foreign_key_violation" => format!(
            "a referenced row does not exist ({})",
            db.constraint().unwrap_or("foreign key")
        ),
        "unique_violation" => format!(
            "another row already has this value ({})",
            db.constraint().unwrap_or("unique constraint")
        ),
        "check_violation" => format!(
            "a value breaks the check constraint {}",
            db.constraint().unwrap_or("?")
        ),
        "forbidden" => {
            "the database refused the write (permission or row-level security)".to_owned()
        }
        "invalid_value" => {
            format!("a value cannot be stored in its column's type (SQLSTATE {sqlstate})")
        }
        "schema_mismatch" => "the write does not fit the table's current schema".to_owned(),
        "rejected_by_database" => "a database rule refused the write".to_owned(),
        _ => format!("the database refused the write (SQLSTATE {sqlstate})"),
    };
    DbFailure::Permanent(Rejection {
        code,
        message,
        constraint_name: db.constraint().map(str::to_owned),
        column,
        sqlstate: Some(sqlstate),
    })
}
