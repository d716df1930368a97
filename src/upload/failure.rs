//! How a failed attempt at a batch ends: the database's classification
//! (`db::DbFailure`) in the write path's terms.

use super::rejection::Rejection;
use crate::db::DbFailure;
use crate::error::ErrorCode;

pub enum Failure {
    /// The data is refused (constraint, type, permission): reject the client transaction.
    Permanent(Rejection),
    /// Retry the whole request internally first (serialization failure,
    /// deadlock, lock wait timeout), with the database's reason.
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
            DbFailure::Conflict(cause) => Self::Retryable(cause),
            DbFailure::Refused(refusal) => Self::Permanent(Rejection {
                code: refusal.code,
                message: refusal.message,
                sqlstate: Some(refusal.sqlstate),
                constraint_name: refusal.constraint,
                column: refusal.column,
            }),
            DbFailure::Fatal(err) => Self::Unexpected(err.context("Failed to apply the batch")),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        DbFailure::from(err).into()
    }
}

/// A failure while applying a client's entries: anything but a transient
/// failure is the entry's refusal, for the careful mode to localise and
/// dead-letter. An error uplink cannot classify (a value it cannot read
/// back, say) is logged loudly but never fails the whole batch: a 5xx
/// would make the device retry it forever.
pub fn localized(err: sqlx::Error) -> Failure {
    match Failure::from(err) {
        Failure::Unexpected(err) => {
            tracing::error!(error = %format!("{err:#}"), "an entry failed in a way uplink does not classify; it is rejected");
            Failure::Permanent(Rejection::new(
                ErrorCode::DatabaseError,
                format!("uplink could not apply the entry: {err:#}"),
            ))
        }
        other => other,
    }
}

/// Not getting a connection at all (refused, auth, database gone) is
/// transient for the device, whatever the SQLSTATE.
pub fn unavailable(err: sqlx::Error) -> Failure {
    match Failure::from(err) {
        Failure::Unavailable(message) => Failure::Unavailable(message),
        Failure::Retryable(cause) => Failure::Retryable(cause),
        other => {
            let detail = match other {
                Failure::Unexpected(e) => format!("{e:#}"),
                Failure::Permanent(r) => r.message,
                _ => String::new(),
            };
            tracing::warn!(error = %detail, "cannot open a database transaction");
            Failure::Unavailable("the database is unavailable".to_owned())
        }
    }
}

impl From<Failure> for anyhow::Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Permanent(r) => anyhow::anyhow!("refused: {}", r.message),
            Failure::Retryable(cause) => anyhow::anyhow!("transient conflict ({cause}); try again"),
            Failure::Unavailable(m) => anyhow::anyhow!("database unavailable: {m}"),
            Failure::DeadLetterLimit(m) => anyhow::anyhow!(m),
            Failure::Unexpected(e) => e,
        }
    }
}
