//! `ApiError`: what every handler returns when it refuses or fails.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::body::json_error;
use super::code::ErrorCode;

/// Seconds a client is asked to wait after a transient failure.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Seconds a client is asked to wait when a quota needs an operator.
pub const LIMIT_RETRY_AFTER_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal the client can act on; its code gives the HTTP status.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// Over a rate limit (429 `rate_limited`): retry after this many seconds.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A bug or an unexpected failure: logged with its cause chain, never sent.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unexpected(_) => ErrorCode::InternalError,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Unexpected(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "request failed unexpectedly");
        }
        let code = self.code();
        let mut response = json_error(code.status(), code.as_str(), &self.public_message());
        let retry_after = match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            // A quota that needs an operator: the client keeps its data and
            // asks again much later.
            _ if code == ErrorCode::DeadLetterLimit => Some(LIMIT_RETRY_AFTER_SECS),
            _ if code.status() == StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECS),
            _ => None,
        };
        let headers = response.headers_mut();
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if code.status() == StatusCode::UNAUTHORIZED {
            let challenge = format!("Bearer realm=\"uplink\", error=\"{code}\"");
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
