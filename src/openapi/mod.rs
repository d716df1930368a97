//! The OpenAPI 3.1 description of every route, served at `GET /openapi.json`
//! and committed as `openapi.json` (a test fails when they differ; refresh
//! with `uplink openapi > openapi.json`).
//!
//! Nothing is described here: each handler carries its `#[utoipa::path]`
//! and each wire type its `ToSchema`; this file lists the handlers. A route
//! that shares its handler with a described one is added by `aliases`; a
//! rule a type cannot state (exactly one of two members) by `constraints`.

mod aliases;
mod constraints;
pub mod schemas;
mod security;

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use aliases::Aliases;
use constraints::ExactlyOne;
use security::Security;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "uplink",
        description = "Backend for PowerSync apps: the write path for uploadData(), \
                       credentials (tokens and JWKS) and attachments with signed URLs. \
                       Every error has the body {\"error\": {\"code\", \"message\"}}.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::health::live,
        crate::health::ready,
        crate::auth::routes::token,
        crate::auth::routes::jwks,
        crate::auth::routes::me,
        crate::upload::routes::upload,
        crate::upload::routes::single,
        crate::upload::routes::checkpoint,
        crate::attachments::routes::upload_url,
        crate::attachments::routes::download_url,
        crate::attachments::routes::complete,
        crate::attachments::routes::delete,
        crate::attachments::files::put_file,
        crate::attachments::files::get_file,
        crate::attachments::multipart::routes::start,
        crate::attachments::multipart::routes::show,
        crate::attachments::multipart::routes::sign_parts,
        crate::attachments::multipart::complete::complete,
        crate::attachments::multipart::routes::abort,
        crate::attachments::multipart::parts::put_part,
        serve,
        crate::admin::routes::list_dead_letters,
        crate::admin::routes::show_dead_letter,
        crate::admin::routes::replay_dead_letter,
        crate::admin::routes::discard_dead_letter,
        crate::admin::routes::list_conflicts,
        crate::admin::routes::resolve_conflict,
        crate::admin::routes::reload_schema,
    ),
    modifiers(&Security, &Aliases, &ExactlyOne),
    tags(
        (name = "health", description = "Probes"),
        (name = "credentials", description = "Tokens for the PowerSync Service and the keys to verify them"),
        (name = "write", description = "The write path for the SDK's uploadData()"),
        (name = "attachments", description = "Signed URLs for files"),
        (name = "operations", description = "Metrics and this description"),
        (name = "admin", description = "Operator API; needs the admin key (admin.api_key_sha256)"),
    )
)]
pub struct ApiDoc;

/// The description as pretty JSON with a trailing newline (the committed file's form).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// `GET /openapi.json`, rendered once per process.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi_json",
    responses((status = 200, description = "This document", body = Object)))]
async fn serve() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(document).as_str())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}
