//! The OpenAPI 3.1 description of every route, served at `GET /openapi.json`
//! and committed as `openapi.json` (a test fails when they differ; refresh
//! with `uplink openapi > openapi.json`).
//!
//! Admin handlers carry their own annotations. The other capabilities'
//! routes are described here, next to their wire shapes in `schemas`, so
//! the description lives in one place while those handlers evolve.

pub mod schemas;

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use schemas::*;

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
        live, ready,
        token_get, token_post, jwks, auth_keys, me,
        upload_batch, upload_alias, single_put, single_patch, single_delete, checkpoint,
        upload_url, download_url, download_url_alias, complete, delete_attachment,
        put_file, get_file,
        metrics, openapi_json,
        crate::admin::routes::list_dead_letters,
        crate::admin::routes::show_dead_letter,
        crate::admin::routes::replay_dead_letter,
        crate::admin::routes::discard_dead_letter,
        crate::admin::routes::list_conflicts,
        crate::admin::routes::resolve_conflict,
        crate::admin::routes::reload_schema,
    ),
    modifiers(&Security),
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

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token from GET /api/auth/token (or the identity provider's, with auth.accept_upstream_tokens)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Admin-Key",
                "The admin key whose SHA-256 is admin.api_key_sha256 (Authorization: Bearer works too)",
            ))),
        );
    }
}

/// The description as pretty JSON with a trailing newline (the committed file's form).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// `GET /openapi.json`, rendered once per process.
async fn serve() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(document).as_str())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

// The functions below only carry path descriptions; the handlers live in
// their capability's module.

#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process serves requests", body = Live)))]
#[allow(dead_code)]
fn live() {}

#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Database and attachment storage reachable", body = Ready),
        (status = 503, description = "Database or storage unreachable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn ready() {}

#[utoipa::path(get, path = "/api/auth/token", tag = "credentials",
    description = "A PowerSync token for `fetchCredentials()`. Who may get one is `auth.identity.mode`: \
                   `dev` (anyone, `?user_id=`), `jwt` (Bearer token of the identity provider), \
                   `api_key` (Bearer API key).",
    params(
        ("user_id" = Option<String>, Query, description = "dev mode: the user (default auth.identity.dev.default_user_id)"),
        ("parameters" = Option<String>, Query, description = "dev mode: a JSON object, as text, for the token's `parameters` claim"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "Bad user id or parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid credential (jwt, api_key modes)", body = ErrorBody),
        (status = 403, description = "The credential may not get a token", body = ErrorBody),
        (status = 429, description = "Rate limited (limits.token_per_ip, limits.token_per_user)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The identity provider's keys are unreachable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn token_get() {}

#[utoipa::path(post, path = "/api/auth/token", tag = "credentials",
    description = "As GET, with the request in a JSON body.",
    params(
        ("user_id" = Option<String>, Query, description = "dev mode: the user"),
        ("parameters" = Option<String>, Query, description = "dev mode: a JSON object, as text"),
    ),
    request_body(content = Option<TokenRequest>, content_type = "application/json"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "Bad body, user id or parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid credential (jwt, api_key modes)", body = ErrorBody),
        (status = 403, description = "The credential may not get a token", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The identity provider's keys are unreachable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn token_post() {}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "credentials",
    description = "Public keys for the PowerSync Service (`client_auth.jwks_uri`). Cached 5 minutes.",
    responses((status = 200, description = "Every configured key, signing or not", body = Jwks)))]
#[allow(dead_code)]
fn jwks() {}

#[utoipa::path(get, path = "/api/auth/keys", tag = "credentials",
    description = "The same document as /.well-known/jwks.json.",
    responses((status = 200, description = "Every configured key", body = Jwks)))]
#[allow(dead_code)]
fn auth_keys() {}

#[utoipa::path(get, path = "/api/auth/me", tag = "credentials",
    description = "Who the presented token belongs to (to check a client or provider setup).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's user and claims", body = Me),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 503, description = "The identity provider's keys are unreachable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn me() {}

#[utoipa::path(post, path = "/api/data", tag = "write",
    description = "Applies a batch from the SDK's `uploadData()` in one database transaction, \
                   exactly once per (user, client_id). Conflicts and rejected entries are reported \
                   with 200 (a 4xx would block the device's queue); each rejected client \
                   transaction is rolled back alone and kept as a dead letter.",
    params(("PowerSync-Client-Id" = Option<String>, Header, description = "The client id, when not in the body")),
    request_body(content = UploadBatch, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Processed; per-entry outcomes in `results`, or for the \
            `transactions` shape one result per transaction in `results` and per-entry outcomes in `entries`", body = UploadReport),
        (status = 400, description = "Malformed envelope, too many entries (write.max_entries_per_batch) or JSON nested deeper than limits.max_json_depth", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 429, description = "Over limits.upload_per_user (`rate_limited`), or a client transaction was rejected while the user already has write.dead_letters.max_per_user dead letters (`dead_letter_limit`); nothing was applied, retry after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Transient; nothing was applied, retry the same batch", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn upload_batch() {}

#[utoipa::path(post, path = "/api/upload", tag = "write",
    description = "Alias of POST /api/data.",
    params(("PowerSync-Client-Id" = Option<String>, Header, description = "The client id, when not in the body")),
    request_body(content = UploadBatch, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Processed", body = UploadReport),
        (status = 400, description = "Malformed envelope", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Transient; retry", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn upload_alias() {}

macro_rules! single_operation {
    ($name:ident, $method:ident, $what:literal) => {
        #[utoipa::path($method, path = "/api/data", tag = "write",
                    description = $what,
                    request_body(content = SingleOperation, content_type = "application/json"),
                    security(("bearer" = [])),
                    responses(
                        (status = 200, description = "Processed", body = Report),
                        (status = 400, description = "Malformed body", body = ErrorBody),
                        (status = 401, description = "Missing or invalid token", body = ErrorBody),
                        (status = 413, description = "Body too large", body = ErrorBody),
                        (status = 415, description = "Not JSON", body = ErrorBody),
                        (status = 429, description = "Rate limited", body = ErrorBody,
                            headers(("Retry-After" = u64, description = "Seconds to wait"))),
                        (status = 503, description = "Transient; retry", body = ErrorBody,
                            headers(("Retry-After" = u64, description = "Seconds to wait"))),
                    ))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

single_operation!(
    single_put,
    put,
    "The Node demo's single PUT (insert or replace)."
);
single_operation!(single_patch, patch, "The Node demo's single PATCH.");
single_operation!(single_delete, delete, "The Node demo's single DELETE.");

#[utoipa::path(put, path = "/api/data/checkpoint", tag = "write",
    description = "Increments and returns the custom write checkpoint of (user, client_id).",
    params(("PowerSync-Client-Id" = Option<String>, Header, description = "The client id, when not in the body")),
    request_body(content = Option<CheckpointRequest>, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new checkpoint", body = Checkpoint),
        (status = 400, description = "No client id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "Transient; retry", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn checkpoint() {}

#[utoipa::path(post, path = "/api/attachments/upload-url", tag = "attachments",
    description = "A signed URL to upload one file to; send the returned `headers` as-is. \
                   Then POST /api/attachments/{id}/complete.",
    request_body(content = UploadUrlRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where and how to upload", body = UploadUrlResponse),
        (status = 400, description = "Bad filename, id, content type, size or checksum", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The id belongs to another user", body = ErrorBody),
        (status = 413, description = "Declared size over attachments.max_size", body = ErrorBody),
        (status = 415, description = "Not JSON, or a content type attachments.allowed_content_types refuses", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn upload_url() {}

#[utoipa::path(get, path = "/api/attachments/{id}/download-url", tag = "attachments",
    params(("id" = String, Path, description = "Attachment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A signed download URL", body = DownloadUrlResponse),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "attachments.read_policy refuses", body = ErrorBody),
        (status = 404, description = "No such attachment", body = ErrorBody),
        (status = 409, description = "Not uploaded yet (`not_uploaded`)", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn download_url() {}

#[utoipa::path(get, path = "/api/attachments/download-url/{id}", tag = "attachments",
    description = "Alias of GET /api/attachments/{id}/download-url.",
    params(("id" = String, Path, description = "Attachment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A signed download URL", body = DownloadUrlResponse),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "attachments.read_policy refuses", body = ErrorBody),
        (status = 404, description = "No such attachment", body = ErrorBody),
        (status = 409, description = "Not uploaded yet", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn download_url_alias() {}

#[utoipa::path(post, path = "/api/attachments/{id}/complete", tag = "attachments",
    description = "Checks the uploaded object (size, type, checksum) and marks it uploaded.",
    params(("id" = String, Path, description = "Attachment id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = CompleteResponse),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such attachment", body = ErrorBody),
        (status = 409, description = "The object is missing or breaks the signed limits", body = ErrorBody),
        (status = 413, description = "The object is over attachments.max_size (deleted)", body = ErrorBody),
        (status = 415, description = "The object's type is not allowed (deleted)", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn complete() {}

#[utoipa::path(delete, path = "/api/attachments/{id}", tag = "attachments",
    params(("id" = String, Path, description = "Attachment id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, or already gone"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn delete_attachment() {}

#[utoipa::path(put, path = "/api/attachments/files/{key}", tag = "attachments",
    description = "Local storage only: the upload URL returned by upload-url (HMAC-signed, expiring). \
                   The body is the file's bytes.",
    params(
        ("key" = String, Path, description = "Object key, as signed"),
        ("expires" = Option<i64>, Query, description = "Signed expiry (Unix seconds)"),
        ("max" = Option<u64>, Query, description = "Signed size limit"),
        ("headers" = Option<String>, Query, description = "Signed header names"),
        ("signature" = Option<String>, Query, description = "HMAC-SHA256 signature"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Bad URL or body", body = ErrorBody),
        (status = 403, description = "Expired URL or bad signature", body = ErrorBody),
        (status = 404, description = "Local storage is not enabled", body = ErrorBody),
        (status = 409, description = "The upload was completed, deleted or abandoned since the URL was issued (`upload_closed`)", body = ErrorBody),
        (status = 413, description = "Over the signed size", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn put_file() {}

#[utoipa::path(get, path = "/api/attachments/files/{key}", tag = "attachments",
    description = "Local storage only: the download URL returned by download-url.",
    params(
        ("key" = String, Path, description = "Object key, as signed"),
        ("expires" = Option<i64>, Query, description = "Signed expiry (Unix seconds)"),
        ("ct" = Option<String>, Query, description = "Signed content type"),
        ("signature" = Option<String>, Query, description = "HMAC-SHA256 signature"),
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>,
            headers(
                ("Content-Disposition" = String, description = "`attachment` unless the type is a raster image, audio or video (`inline`)"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`"),
            )),
        (status = 400, description = "Bad URL", body = ErrorBody),
        (status = 403, description = "Expired URL or bad signature", body = ErrorBody),
        (status = 404, description = "No such object, or local storage is not enabled", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[allow(dead_code)]
fn get_file() {}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    description = "Prometheus text format. Absent (404) when metrics.enabled is false or metrics.port \
                   moves it to its own port.",
    responses(
        (status = 200, description = "Metrics", content_type = "text/plain", body = String),
        (status = 404, description = "Served elsewhere or disabled", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}
