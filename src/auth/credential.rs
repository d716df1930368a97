//! The credential a request presents in its `Authorization` header.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::{ApiError, ErrorCode};

/// The credential of `Authorization: Bearer <t>` or `Authorization: Token <t>`
/// (the schemes the PowerSync Service accepts).
pub fn credential(req: &HttpRequest) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorCode::MissingToken,
            "send Authorization: Bearer <token>",
        ));
    };
    let value = value.to_str().map_err(|_| malformed_header())?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return Err(malformed_header());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MissingToken,
            "the Authorization header holds no token",
        ));
    }
    Ok(token)
}

fn malformed_header() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the Authorization header must be `Bearer <token>` or `Token <token>`",
    )
}
