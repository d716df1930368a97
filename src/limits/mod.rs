//! Protections in front of the handlers, one file each: the CORS
//! allow-list, per-user and per-IP rate limits, and the JSON nesting-depth
//! scan (applied by `crate::body`); `settings` is their configuration.

pub mod cors;
pub mod in_flight;
pub mod json_depth;
pub mod rate_limit;
pub mod settings;

pub use cors::cors;
pub use rate_limit::{Limits, check_token_ip, check_token_user, check_upload_user, upload_slot};
pub use settings::LimitSettings;
