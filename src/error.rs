//! One error type for every route, rendered as `{"error": {"code", "message"}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error as actix_error};
use serde::Serialize;

/// Seconds a client is asked to wait after a transient failure.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Seconds a client is asked to wait when a quota needs an operator.
pub const LIMIT_RETRY_AFTER_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Missing or invalid credentials (401, with `WWW-Authenticate`).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The resource is in a state that does not allow the request (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body did not arrive within `server.body_timeout` (408).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A per-user quota is full until an operator acts (429); the client
    /// keeps its data and retries after `LIMIT_RETRY_AFTER_SECS`.
    #[error("{message}")]
    LimitReached { code: &'static str, message: String },
    /// Transient: the client should retry the same request later (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged with its cause chain, never sent.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Conflict { code, .. }
            | Self::LimitReached { code, .. } => code,
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RequestTimeout(_) => "request_timeout",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Unexpected(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Renders any status with the JSON error shape.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail { code, message },
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests { .. } | Self::LimitReached { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "request failed unexpectedly");
        }
        let mut response = json_error(self.status_code(), self.code(), &self.public_message());
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized { code, .. } => {
                let challenge = format!("Bearer realm=\"uplink\", error=\"{code}\"");
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            Self::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::LimitReached { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(LIMIT_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

/// Maps actix's JSON extractor failures onto the error shape.
pub fn json_extractor_error(
    err: actix_error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    use actix_error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".to_owned())
        }
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes"))
        }
        E::Deserialize(inner) if inner.is_data() => ApiError::bad_request(
            "invalid_body",
            format!("request body does not fit: {inner}"),
        ),
        E::Deserialize(inner) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {inner}"),
        ),
        _ => ApiError::bad_request("invalid_body", "request body could not be read"),
    };
    api.into()
}

pub fn query_extractor_error(
    err: actix_error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}

pub fn path_extractor_error(err: actix_error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path", err.to_string()).into()
}

/// The error code used for a bare status that reached the client without a body of ours.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal_error",
        _ => "error",
    }
}
