//! One error type for every route, rendered as `{"error": {"code", "message"}}`
//! from one table of codes.
//!
//! - `code`: the table (`ErrorCode`: code, HTTP status, description);
//! - `api`: `ApiError`, what handlers return;
//! - `body`: the JSON body and its OpenAPI schema;
//! - `framework`: extractor rejections and bare statuses in the same shape.

mod api;
mod body;
mod code;
mod framework;

pub use api::{ApiError, LIMIT_RETRY_AFTER_SECS, RETRY_AFTER_SECS};
pub use body::{ErrorBody, json_error};
pub use code::ErrorCode;
pub use framework::{
    code_for_status, framework_error_message, json_extractor_error, path_extractor_error,
    plain_serde_message, query_extractor_error,
};
