//! Errors the framework raises before or around a handler: extractor
//! rejections (JSON body, query string, path) and bare statuses, all given
//! the JSON error shape with a message the client can act on.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, error as actix_error};

use super::api::ApiError;
use super::code::ErrorCode;

/// Maps actix's JSON extractor failures onto the error shape.
pub fn json_extractor_error(
    err: actix_error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    use actix_error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        ),
        E::Deserialize(inner) if inner.is_data() => ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "request body does not fit: {}",
                plain_serde_message(&inner.to_string())
            ),
        ),
        E::Deserialize(inner) => ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {inner}"),
        ),
        _ => ApiError::new(ErrorCode::InvalidBody, "request body could not be read"),
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
    ApiError::new(ErrorCode::InvalidQuery, message).into()
}

/// Path parameters are ids: the parse error's wording is the framework's
/// (`can not parse "x" to a i64`), so it is not passed on.
pub fn path_extractor_error(err: actix_error::PathError, req: &HttpRequest) -> actix_web::Error {
    tracing::debug!(error = %err, path = req.path(), "path parameter refused");
    ApiError::new(
        ErrorCode::InvalidPath,
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
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => return "error",
    };
    code.as_str()
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
