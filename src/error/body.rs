//! The one error body, `{"error": {"code", "message"}}`, and its OpenAPI
//! schema (the spec's error responses all point here).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::code::ErrorCode;

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    #[schema(value_type = ErrorCode)]
    code: &'a str,
    /// Human-readable; never database text or secrets.
    message: &'a str,
}

/// Renders any status with the JSON error shape.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail { code, message },
    })
}
