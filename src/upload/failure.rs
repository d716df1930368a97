//! The write path's one error type: how a statement, a policy or an
//! attempt at a batch fails, from the database's classification
//! (`db::DbFailure`) up to the response (`Writer::apply`).

use super::prepared::Position;
use super::rejection::Rejection;
use crate::db::DbFailure;
use crate::error::ErrorCode;

pub enum Failure {
    /// The data is refused (constraint, type, permission, policy): the
    /// client transaction is rejected. `at` is the entry at fault where a
    /// policy named it; a refused statement does not say which row failed.
    Refused {
        at: Option<Position>,
        rejection: Box<Rejection>,
    },
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
            DbFailure::Refused(refusal) => Self::refused(Rejection {
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

impl Failure {
    /// A refusal of an entry not (yet) known.
    pub fn refused(rejection: Rejection) -> Self {
        Self::refused_at(None, rejection)
    }

    /// A refusal of the entry at `at`, where known.
    pub fn refused_at(at: Option<Position>, rejection: Rejection) -> Self {
        Self::Refused {
            at,
            rejection: Box::new(rejection),
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
            Failure::refused(Rejection::new(
                ErrorCode::DatabaseError,
                format!("uplink could not apply the entry: {err:#}"),
            ))
        }
        other => other,
    }
}

/// The result of one of uplink's own statements (savepoints, roles,
/// records), classified as it is.
pub fn own_result<T>(result: Result<T, impl Into<DbFailure>>) -> Result<T, Failure> {
    result.map_err(|e| Failure::from(e.into()))
}

/// The result of a statement on the app's rows: a refusal is the entry's.
pub fn app_result<T>(result: Result<T, sqlx::Error>) -> Result<T, Failure> {
    result.map_err(localized)
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
                Failure::Refused { rejection, .. } => rejection.message.clone(),
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
            Failure::Refused { rejection, .. } => {
                anyhow::anyhow!("refused: {}", rejection.message)
            }
            Failure::Retryable(cause) => anyhow::anyhow!("transient conflict ({cause}); try again"),
            Failure::Unavailable(m) => anyhow::anyhow!("database unavailable: {m}"),
            Failure::DeadLetterLimit(m) => anyhow::anyhow!(m),
            Failure::Unexpected(e) => e,
        }
    }
}
