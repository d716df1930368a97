//! The multipart routes: start, show (resume), sign parts, complete, abort.
//! Every one acts on the caller's own attachment only: ids are scoped per
//! owner, so another user's upload cannot even be named.

use actix_web::{HttpRequest, HttpResponse, web};

use super::wire::{
    AbortQuery, PartView, SignBody, SignResponse, SignedPart, StartBody, UploadView, invalid_part,
};
use super::{StoredPart, part_count, part_length, part_size_for};
use crate::attachments::files::upload_closed;
use crate::attachments::key;
use crate::attachments::requests::{UploadRequest, UploadUrlBody};
use crate::attachments::routes::{parse_id, storage_error, stored_size, url_context};
use crate::attachments::state::Attachments;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::store::attachment_records::Session;
use crate::store::attachments::NewUpload;
use crate::store::multipart::Upload;

/// Part URLs one request may ask for.
const MAX_SIGN_BATCH: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/attachments/multipart", web::post().to(start))
        .route("/api/attachments/{id}/multipart", web::get().to(show))
        .route("/api/attachments/{id}/multipart", web::delete().to(abort))
        .route(
            "/api/attachments/{id}/multipart/parts",
            web::post().to(sign_parts),
        )
        .route(
            "/api/attachments/{id}/multipart/complete",
            web::post().to(super::complete::complete),
        );
}

fn no_upload(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("attachment `{id}` has no multipart upload in progress"),
    )
}

fn view(upload: &Upload, parts: Vec<StoredPart>) -> UploadView {
    UploadView {
        id: upload.id.clone(),
        key: upload.object_key.clone(),
        upload_id: upload.upload_id.clone(),
        size: upload.size,
        part_size: upload.part_size,
        part_count: upload.part_count,
        parts: parts
            .into_iter()
            .filter(|p| p.number >= 1 && p.number <= upload.part_count)
            .map(|p| PartView {
                part_number: p.number,
                size: p.size,
                etag: p.etag,
            })
            .collect(),
    }
}

#[utoipa::path(post, path = "/api/attachments/multipart", tag = "attachments",
    operation_id = "start_multipart_upload",
    description = "Starts a multipart upload for a large file (replacing one in progress for the \
                   same id). uplink picks the part size (5 MiB to 5 GiB, at most 10 000 parts). \
                   Then sign parts, upload them, and complete.",
    request_body(content = StartBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upload, with its part size and count", body = UploadView),
        (status = 400, description = "Bad filename, id, content type, size or checksum", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 413, description = "Declared size over attachments.max_size", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON, or a content type attachments.allowed_content_types refuses", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id))]
async fn start(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    body: web::Json<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.size == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidSize,
            "a multipart upload needs a size of at least one byte",
        ));
    }
    let settings = &attachments.settings;
    let request = UploadRequest::parse(
        UploadUrlBody {
            id: body.id,
            filename: body.filename,
            content_type: body.content_type,
            size: Some(body.size),
            checksum_sha256: body.checksum_sha256,
        },
        settings,
    )?;
    tracing::Span::current().record("attachment_id", request.id.as_str());
    let part_size = part_size_for(body.size).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidSize,
            "the size needs more than 10 000 parts of 5 GiB",
        )
    })?;
    let object_key = key::object_key(
        &settings.key_prefix,
        user.user_id(),
        &request.id,
        &request.filename,
    );
    let record = Session::pooled(&attachments.db)
        .await?
        .upsert_pending(NewUpload {
            id: request.id.as_str(),
            owner_id: user.user_id(),
            object_key: &object_key,
            filename: &request.filename,
            content_type: &request.content_type,
            size: Some(stored_size(body.size)?),
            sha256_hex: request.sha256.as_ref().map(|s| s.hex()),
        })
        .await?;
    let upload_id = attachments
        .multipart
        .create(&record.object_key, &record.content_type)
        .await
        .map_err(storage_error)?;
    let upload = Upload {
        owner_id: record.owner_id.clone(),
        id: record.id.clone(),
        upload_id,
        object_key: record.object_key.clone(),
        size: body.size,
        part_size,
        // part_size_for keeps this within 10 000.
        part_count: u32::try_from(part_count(body.size, part_size)).unwrap_or(u32::MAX),
    };
    let previous = Session::pooled(&attachments.db)
        .await?
        .replace_multipart(&upload)
        .await?;
    if let Some(previous) = previous
        && let Err(err) = attachments
            .multipart
            .abort(&previous.object_key, &previous.upload_id)
            .await
    {
        // The cleanup aborts uploads storage holds without a record.
        tracing::warn!(error = ?err, "could not abort the replaced multipart upload");
    }
    Ok(HttpResponse::Ok().json(view(&upload, Vec::new())))
}

#[utoipa::path(get, path = "/api/attachments/{id}/multipart", tag = "attachments",
    operation_id = "show_multipart_upload",
    description = "The multipart upload in progress and the parts storage holds: resume by \
                   uploading the missing ones.",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upload and its stored parts", body = UploadView),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 404, description = "The caller has no multipart upload in progress for this id", body = crate::error::ErrorBody),
        (status = 409, description = "Storage no longer has the upload (`upload_closed`)", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn show(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let upload = current(&attachments, &user, id.as_str()).await?;
    let parts = stored_parts(&attachments, &upload).await?;
    Ok(HttpResponse::Ok().json(view(&upload, parts)))
}

/// The caller's upload in progress for `id`, marked active.
async fn current(attachments: &Attachments, user: &AuthUser, id: &str) -> Result<Upload, ApiError> {
    Session::pooled(&attachments.db)
        .await?
        .touch_multipart(user.user_id(), id)
        .await?
        .ok_or_else(|| no_upload(id))
}

/// The parts storage holds; an upload storage lost is closed for good.
async fn stored_parts(
    attachments: &Attachments,
    upload: &Upload,
) -> Result<Vec<StoredPart>, ApiError> {
    match attachments
        .multipart
        .list_parts(&upload.object_key, &upload.upload_id)
        .await
        .map_err(storage_error)?
    {
        Some(parts) => Ok(parts),
        None => {
            Session::pooled(&attachments.db)
                .await?
                .remove_multipart(&upload.upload_id)
                .await?;
            Err(upload_closed())
        }
    }
}

/// The upload `upload_id` if it is the caller's one in progress for `id`;
/// `404` when none is.
async fn named(
    attachments: &Attachments,
    user: &AuthUser,
    id: &str,
    upload_id: &str,
) -> Result<Upload, ApiError> {
    match current(attachments, user, id).await {
        Ok(upload) if upload.upload_id == upload_id => Ok(upload),
        // Another upload (or none, answered 404) is in progress: this one is over.
        Ok(_) => Err(upload_closed()),
        Err(err) => Err(err),
    }
}

#[utoipa::path(post, path = "/api/attachments/{id}/multipart/parts", tag = "attachments",
    operation_id = "sign_multipart_parts",
    description = "Signed URLs for up to 100 parts. Each takes exactly its `size` bytes; keep the \
                   `ETag` each upload answers for complete.",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    request_body(content = SignBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One signed request per part", body = SignResponse),
        (status = 400, description = "Bad id, or a part number outside 1..=partCount (`invalid_part`)", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 404, description = "The caller has no multipart upload in progress for this id", body = crate::error::ErrorBody),
        (status = 409, description = "Another upload of this id is in progress: this one was completed, aborted or replaced (`upload_closed`)", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn sign_parts(
    req: HttpRequest,
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
    body: web::Json<SignBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let body = body.into_inner();
    if body.part_numbers.is_empty() || body.part_numbers.len() > MAX_SIGN_BATCH {
        return Err(invalid_part(format!(
            "partNumbers must name 1 to {MAX_SIGN_BATCH} parts"
        )));
    }
    let upload = named(&attachments, &user, id.as_str(), &body.upload_id).await?;
    if let Some(bad) = body
        .part_numbers
        .iter()
        .find(|n| **n == 0 || **n > upload.part_count)
    {
        return Err(invalid_part(format!(
            "part {bad} is outside this upload's parts 1 to {}",
            upload.part_count
        )));
    }
    let ctx = url_context(&req, &attachments);
    let mut parts = Vec::with_capacity(body.part_numbers.len());
    for number in body.part_numbers {
        let size = part_length(upload.size, upload.part_size, number);
        let signed = attachments
            .multipart
            .presign_part(
                &upload.object_key,
                &upload.upload_id,
                number,
                size,
                attachments.settings.url_ttl,
                &ctx,
            )
            .await
            .map_err(storage_error)?;
        parts.push(SignedPart {
            part_number: number,
            size,
            url: signed.url,
            method: "PUT",
            headers: signed.headers,
            expires_at: signed
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    if let Some(metrics) = crate::metrics::Metrics::of(&req) {
        metrics.url_signed("upload");
    }
    Ok(HttpResponse::Ok().json(SignResponse {
        upload_id: upload.upload_id,
        parts,
    }))
}

#[utoipa::path(delete, path = "/api/attachments/{id}/multipart", tag = "attachments",
    operation_id = "abort_multipart_upload",
    description = "Aborts the multipart upload in progress and drops its parts; its part URLs \
                   stop working.",
    params(
        ("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$"),
        AbortQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Aborted, or none in progress"),
        (status = 400, description = "Bad id or query", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn abort(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
    query: web::Query<AbortQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    // The record goes first (under its lock, so a local part in flight
    // lands before or is refused after); then storage drops the parts.
    let mut tx = Session::begin(&attachments.db).await?;
    let upload = tx.touch_multipart(user.user_id(), id.as_str()).await?;
    let Some(upload) = upload.filter(|u| {
        query
            .upload_id
            .as_deref()
            .is_none_or(|wanted| wanted == u.upload_id)
    }) else {
        return Ok(HttpResponse::NoContent().finish());
    };
    tx.remove_multipart(&upload.upload_id).await?;
    tx.commit().await?;
    attachments
        .multipart
        .abort(&upload.object_key, &upload.upload_id)
        .await
        .map_err(storage_error)?;
    Ok(HttpResponse::NoContent().finish())
}
