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
            format!(
                "request body does not fit: {}",
                plain_serde_message(&inner.to_string())
            ),
        ),
        E::Deserialize(inner) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {inner}"),
        ),
        _ => ApiError::bad_request("invalid_body", "request body could not be read"),
    };
    api.into()
}

/// The query string's parse error without actix's "Query deserialize
/// error" prefix (serde's own message names the field or the bad value).
pub fn query_extractor_error(
    err: actix_error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_error::QueryPayloadError::Deserialize(inner) => format!(
            "the query string is not valid: {}",
            plain_serde_message(&inner.to_string())
        ),
        _ => "the query string is not valid".to_owned(),
    };
    ApiError::bad_request("invalid_query", message).into()
}

/// Path parameters are ids: the parse error's wording is the framework's
/// (`can not parse "x" to a i64`), so it is not passed on.
pub fn path_extractor_error(err: actix_error::PathError, req: &HttpRequest) -> actix_web::Error {
    tracing::debug!(error = %err, path = req.path(), "path parameter refused");
    ApiError::bad_request(
        "invalid_path",
        "a path parameter has the wrong form (for example, an id that is not a number)",
    )
    .into()
}

/// A serde message in the client's terms: Rust type names (`expected i64`,
/// `expected struct UploadUrlBody with 5 elements`) become JSON ones.
pub fn plain_serde_message(message: &str) -> String {
    const EXPECTED: &str = "expected ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(EXPECTED) {
        let (head, tail) = rest.split_at(at + EXPECTED.len());
        out.push_str(head);
        let word = tail.split([' ', ',']).next().unwrap_or_default();
        let (plain, consumed) = match word {
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64"
            | "u128" | "usize" => ("an integer", word.len()),
            "f32" | "f64" => ("a number", word.len()),
            // `struct Name` or `struct Name with N elements`, up to the position.
            "struct" => ("an object", tail.find(" at line").unwrap_or(tail.len())),
            "a" if tail.starts_with("a borrowed string") => ("a string", "a borrowed string".len()),
            _ => ("", 0),
        };
        out.push_str(plain);
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

/// The message for an error of the framework that reached a client without
/// a body of ours: never its `Debug` or internal text (`Some(Custom { kind:
/// InvalidInput … })`), only what the client can act on.
pub fn framework_error_message(err: &actix_web::Error, status: StatusCode) -> String {
    use actix_web::error::PayloadError as P;
    if let Some(payload) = err.as_error::<P>() {
        return match payload {
            P::Overflow => "request body is larger than the limit".to_owned(),
            P::UnknownLength => "request body length is required (Content-Length)".to_owned(),
            P::EncodingCorrupted => {
                "request body could not be decoded with its Content-Encoding".to_owned()
            }
            _ => "request body could not be read completely or decoded".to_owned(),
        };
    }
    status.canonical_reason().unwrap_or("error").to_lowercase()
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

#[cfg(test)]
mod tests {
    use super::plain_serde_message;

    #[test]
    fn serde_messages_lose_rust_type_names() {
        let cases = [
            (
                "invalid type: string \"x\", expected i64 at line 1 column 22",
                "invalid type: string \"x\", expected an integer at line 1 column 22",
            ),
            (
                "invalid length 0, expected struct UploadUrlBody with 5 elements at line 1 column 2",
                "invalid length 0, expected an object at line 1 column 2",
            ),
            (
                "invalid type: map, expected struct Q",
                "invalid type: map, expected an object",
            ),
            (
                "expected f64, expected a borrowed string",
                "expected a number, expected a string",
            ),
            ("missing field `filename`", "missing field `filename`"),
            (
                "invalid type: map, expected a sequence",
                "invalid type: map, expected a sequence",
            ),
        ];
        for (serde, plain) in cases {
            assert_eq!(plain_serde_message(serde), plain);
        }
    }
}
