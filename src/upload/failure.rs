//! How a failed attempt at a batch ends: the database's classification
//! (`db::DbFailure`) in the write path's terms.

use super::report::Rejection;
use crate::db::DbFailure;

pub enum Failure {
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

impl From<DbFailure> for Failure {
    fn from(failure: DbFailure) -> Self {
        match failure {
            DbFailure::Transient(message) => Self::Unavailable(message),
            DbFailure::Conflict(sqlstate) => Self::Retryable(sqlstate),
            DbFailure::Refused(refusal) => Self::Permanent(Rejection {
                code: refusal.code.as_str(),
                message: refusal.message,
                sqlstate: Some(refusal.sqlstate),
                constraint_name: refusal.constraint,
                column: refusal.column,
            }),
            DbFailure::Fatal(err) => Self::Unexpected(err.context("Failed to apply the batch")),
        }
    }
}

pub fn classify(err: sqlx::Error) -> Failure {
    crate::db::failure::classify(err).into()
}
