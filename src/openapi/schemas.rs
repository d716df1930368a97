//! The health probes' bodies, built with `json!`: schemas no Rust type
//! carries. Each feature keeps its own such schemas (`upload::schemas`,
//! `auth::schemas`, `admin::schemas`), so no handler imports this layer.

#![allow(dead_code)] // read only by the schema derive

use utoipa::ToSchema;

#[derive(ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    #[schema(example = "ok")]
    pub database: String,
    /// `ok`, or `disabled` when attachments are off (`attachments.enabled`).
    #[schema(example = "ok")]
    pub storage: String,
}
