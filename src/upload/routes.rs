//! HTTP routes of the write path.

use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::Writer;
use super::apply::Actor;
use super::client_id;
use super::envelope::{Batch, EnvelopeError, Op, Shape};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::store::either;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/data/checkpoint").route(web::put().to(checkpoint)))
        .service(
            web::resource("/api/data")
                .route(web::post().to(upload))
                .route(web::put().to(single))
                .route(web::patch().to(single))
                .route(web::delete().to(single)),
        )
        .service(web::resource("/api/upload").route(web::post().to(upload)));
}

const CLIENT_ID_HEADER: &str = "powersync-client-id";

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json".to_owned(),
        ))
    }
}

fn envelope_error(err: EnvelopeError) -> ApiError {
    ApiError::new(err.code(), err.to_string())
}

async fn apply(
    req: &HttpRequest,
    writer: &Writer,
    user: &AuthUser,
    batch: Batch<'_>,
) -> Result<HttpResponse, ApiError> {
    crate::limits::check_upload_user(req, user.user_id())?;
    let max = writer.settings().max_entries_per_batch;
    if batch.entry_count() > max {
        return Err(ApiError::new(
            ErrorCode::TooManyEntries,
            format!("a batch may hold at most {max} entries; send smaller batches"),
        ));
    }
    let _slot = crate::limits::upload_slot(req, user.user_id()).await?;
    let report = writer
        .apply(
            Actor {
                user_id: user.user_id(),
                claims: user.claims(),
            },
            &batch,
        )
        .await?;
    if let Some(metrics) = Metrics::of(req) {
        metrics.record_batch(
            &report.outcomes(&batch, writer.settings()),
            report.rejected_transactions(),
            report.connection_wait,
        );
    }
    Ok(match batch.shape {
        Shape::Batch => HttpResponse::Ok().json(report),
        Shape::Transactions => HttpResponse::Ok().json(report.per_transaction()),
    })
}

/// `POST /api/data`: a batch from the SDK's `uploadData()`.
#[utoipa::path(post, path = "/api/data", tag = "write", operation_id = "upload_batch",
    description = "Applies a batch from the SDK's `uploadData()` in one database transaction, \
                   exactly once per (user, client_id). Conflicts and rejected entries are reported \
                   with 200 (a 4xx would block the device's queue); each rejected client \
                   transaction is rolled back alone and kept as a dead letter.",
    params(("PowerSync-Client-Id" = Option<String>, Header, description = "The client id, when not in the body")),
    request_body(content = super::envelope::WireBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Processed; per-entry outcomes in `results`, or for the \
            `transactions` shape one result per transaction in `results` and per-entry outcomes in `entries`",
            body = crate::upload::schemas::UploadReport),
        (status = 400, description = "Malformed envelope, too many entries (write.max_entries_per_batch) or JSON nested deeper than limits.max_json_depth", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 413, description = "Body over server.max_body_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 429, description = "Over limits.upload_per_user (`rate_limited`), or a client transaction was rejected while the user already has write.dead_letters.max_per_user dead letters (`dead_letter_limit`); nothing was applied, retry after Retry-After", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Transient; nothing was applied, retry the same batch", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(name = "upload", skip_all)]
async fn upload(
    user: AuthUser,
    req: HttpRequest,
    body: web::Bytes,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let header_client_id = req
        .headers()
        .get(CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let batch = Batch::parse(&body, header_client_id).map_err(envelope_error)?;
    apply(&req, &writer, &user, batch).await
}

/// The Node demo's `PUT|PATCH|DELETE /api/data` with `{"table", "data": {"id", …}}`.
#[utoipa::path(put, path = "/api/data", tag = "write", operation_id = "single_put",
    description = "The Node demo's single PUT (insert or replace).",
    request_body(content = crate::upload::schemas::SingleOperation, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Processed", body = super::report::Report),
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 413, description = "Body too large", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Transient; retry", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn single(
    user: AuthUser,
    req: HttpRequest,
    body: web::Bytes,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let op = match *req.method() {
        Method::PUT => Op::Put,
        Method::PATCH => Op::Patch,
        _ => Op::Delete,
    };
    let batch = Batch::parse_single(&body, op).map_err(envelope_error)?;
    apply(&req, &writer, &user, batch).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CheckpointRequest)]
struct CheckpointBody {
    /// Alias `clientId`; or the `PowerSync-Client-Id` header.
    #[serde(default, alias = "clientId")]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f\\s]([^\\x00-\\x1f\\x7f]*[^\\x00-\\x1f\\x7f\\s])?$")]
    client_id: Option<String>,
}

/// `PUT /api/data/checkpoint`: increments the custom write checkpoint of the
/// authenticated user's client and returns it.
#[utoipa::path(put, path = "/api/data/checkpoint", tag = "write",
    description = "Increments and returns the custom write checkpoint of (user, client_id).",
    params(("PowerSync-Client-Id" = Option<String>, Header, description = "The client id, when not in the body")),
    request_body(content = CheckpointBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new checkpoint", body = crate::upload::schemas::Checkpoint),
        (status = 400, description = "No client id (`invalid_body`), or one over 256 bytes or with control characters (`invalid_client_id`)", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 429, description = "Over limits.upload_per_user, shared with uploads", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Transient; retry", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(name = "checkpoint", skip_all)]
async fn checkpoint(
    user: AuthUser,
    req: HttpRequest,
    body: web::Bytes,
    writer: web::Data<Writer>,
) -> Result<HttpResponse, ApiError> {
    // A checkpoint is a write: the same per-user budget as uploads.
    crate::limits::check_upload_user(&req, user.user_id())?;
    let from_body = if body.is_empty() {
        None
    } else {
        require_json(&req)?;
        serde_json::from_slice::<CheckpointBody>(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))?
            .client_id
    };
    let client_id = from_body
        .or_else(|| {
            req.headers()
                .get(CLIENT_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "`client_id` is required"))?;
    client_id::check(&client_id).map_err(|m| ApiError::new(ErrorCode::InvalidClientId, m))?;
    let checkpoint = either::increment_checkpoint(writer.db(), user.user_id(), &client_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "checkpoint": checkpoint.to_string() })))
}
