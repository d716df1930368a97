//! The attachment API: upload URL, complete, download URL, delete.

use actix_web::http::header;
use actix_web::http::uri::Authority;
use actix_web::{HttpRequest, HttpResponse, web};

use super::key;
use super::requests::{
    CompleteResponse, DownloadUrlResponse, Sha256Sum, UploadRequest, UploadUrlBody,
    UploadUrlResponse, normalize_content_type, too_large,
};
use super::settings::ReadPolicy;
use super::state::Attachments;
use super::storage::{PutConstraints, UrlContext};
use crate::auth::AuthUser;
use crate::db::DbFailure;
use crate::error::{ApiError, ErrorCode};
use crate::store::attachment_records::{Decision, Session};
use crate::store::attachments::{NewUpload, Record, State};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/attachments/upload-url", web::post().to(upload_url))
        .route(
            "/api/attachments/download-url/{id}",
            web::get().to(download_url),
        )
        .route(
            "/api/attachments/{id}/download-url",
            web::get().to(download_url),
        )
        .route("/api/attachments/{id}/complete", web::post().to(complete))
        .route("/api/attachments/{id}", web::delete().to(delete));
}

pub(super) fn url_context(req: &HttpRequest, attachments: &Attachments) -> UrlContext {
    UrlContext {
        request_base: Some(request_base(req, attachments.trust_forwarded)),
    }
}

impl Attachments {
    /// Local uploads pass through uplink and check the row: only then is
    /// there a `PUT` to serialise with.
    async fn decision(&self) -> Result<Decision, ApiError> {
        Ok(Decision::begin(&self.db, self.local.is_some()).await?)
    }
}

/// `scheme://host` the request reached uplink at. The forwarded headers are
/// the client's own choice unless a proxy overwrites them, so they count only
/// when trusted: otherwise anyone could have uplink sign URLs for their host.
fn request_base(req: &HttpRequest, trust_forwarded: bool) -> String {
    if trust_forwarded {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let config = req.app_config();
    let scheme = if config.secure() { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .filter(|h| h.parse::<Authority>().is_ok())
        .unwrap_or(config.host());
    format!("{scheme}://{host}")
}

pub(super) fn storage_error(err: anyhow::Error) -> ApiError {
    tracing::warn!(error = ?err, "attachments: storage request failed");
    ApiError::new(
        ErrorCode::Unavailable,
        "attachment storage is unavailable; retry later".to_owned(),
    )
}

/// A size as the `attachments` table stores it (`bigint`).
pub(super) fn stored_size(size: u64) -> Result<i64, ApiError> {
    i64::try_from(size).map_err(|_| ApiError::new(ErrorCode::InvalidSize, "size is out of range"))
}

pub(super) fn parse_id(raw: &str) -> Result<key::AttachmentId, ApiError> {
    key::AttachmentId::parse(raw).map_err(|m| ApiError::new(ErrorCode::InvalidId, m))
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("attachment `{id}` does not exist"),
    )
}

fn not_uploaded(id: &str) -> ApiError {
    ApiError::Refused {
        code: ErrorCode::NotUploaded,
        message: format!("attachment `{id}` has not been uploaded yet"),
    }
}

/// `user`'s own attachment `id` if it exists (not deleted), locked until
/// `conn`'s transaction (if any) ends. Ids are scoped per owner: another
/// user's attachment of the same id is not this one.
pub(super) async fn owned(
    session: &mut Session,
    user: &AuthUser,
    id: &str,
) -> Result<Record, ApiError> {
    session
        .find_for_update(user.user_id(), id)
        .await?
        .filter(|r| r.state != State::Deleted)
        .ok_or_else(|| not_found(id))
}

#[utoipa::path(post, path = "/api/attachments/upload-url", tag = "attachments",
    description = "A signed URL to upload one file to; send the returned `headers` as-is. \
                   Then POST /api/attachments/{id}/complete.",
    request_body(content = UploadUrlBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where and how to upload", body = UploadUrlResponse),
        (status = 400, description = "Bad filename, id, content type, size or checksum", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 413, description = "Declared size over attachments.max_size", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON, or a content type attachments.allowed_content_types refuses", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id))]
async fn upload_url(
    req: HttpRequest,
    user: AuthUser,
    attachments: web::Data<Attachments>,
    body: web::Json<UploadUrlBody>,
) -> Result<HttpResponse, ApiError> {
    let settings = &attachments.settings;
    let request = UploadRequest::parse(body.into_inner(), settings)?;
    tracing::Span::current().record("attachment_id", request.id.as_str());
    let object_key = key::object_key(
        &settings.key_prefix,
        user.user_id(),
        &request.id,
        &request.filename,
    );
    let size = request.size.map(stored_size).transpose()?;
    let record = Session::pooled(&attachments.db)
        .await?
        .upsert_pending(NewUpload {
            id: request.id.as_str(),
            owner_id: user.user_id(),
            object_key: &object_key,
            filename: &request.filename,
            content_type: &request.content_type,
            size,
            sha256_hex: request.sha256.as_ref().map(|s| s.hex()),
        })
        .await?;
    let constraints = PutConstraints {
        content_type: request.content_type,
        content_length: request.size,
        checksum_sha256: request.sha256.map(|s| s.base64()),
        max_size: settings.max_size,
    };
    let signed = attachments
        .storage
        .presign_put(
            &record.object_key,
            &constraints,
            settings.url_ttl,
            &url_context(&req, &attachments),
        )
        .await
        .map_err(storage_error)?;
    if let Some(metrics) = crate::metrics::Metrics::of(&req) {
        metrics.url_signed("upload");
    }
    Ok(HttpResponse::Ok().json(UploadUrlResponse {
        id: record.id,
        key: record.object_key,
        upload_url: signed.url,
        method: "PUT",
        headers: signed.headers,
        expires_at: signed
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

#[utoipa::path(post, path = "/api/attachments/{id}/complete", tag = "attachments",
    description = "Checks the uploaded object (size, type, checksum) and marks it uploaded.",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = CompleteResponse),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 404, description = "The caller has no attachment with this id", body = crate::error::ErrorBody),
        (status = 409, description = "The object is missing or breaks the signed limits", body = crate::error::ErrorBody),
        (status = 413, description = "The object is over attachments.max_size (deleted)", body = crate::error::ErrorBody),
        (status = 415, description = "The object's type is not allowed (deleted)", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn complete(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    // With local storage the row lock keeps a replayed upload URL from
    // replacing the object between these checks and `uploaded`.
    let mut decision = attachments.decision().await?;
    let record = owned(&mut *decision.session().await?, &user, id.as_str()).await?;
    let info = attachments
        .storage
        .head(&record.object_key)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| not_uploaded(id.as_str()))?;
    let checked = check_limits(
        &attachments,
        &record,
        info.size,
        info.content_type.as_deref(),
    )
    .and_then(|()| check_checksum(&attachments, &record, info.checksum_sha256.as_deref()));
    if let Err(violation) = checked {
        // The object breaks the limits it was signed with: it must not stay.
        attachments
            .storage
            .delete(&record.object_key)
            .await
            .map_err(storage_error)?;
        return Err(violation);
    }
    let size = stored_size(info.size)?;
    let record = decision
        .session()
        .await?
        .mark_uploaded(user.user_id(), id.as_str(), size)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    decision.commit().await?;
    Ok(HttpResponse::Ok().json(CompleteResponse {
        id: record.id,
        key: record.object_key,
        size: info.size,
        content_type: record.content_type,
        sha256: record.sha256,
    }))
}

/// Re-checks what the upload URL signed, for stores that could not enforce
/// it (no declared size) and as defence in depth.
pub(super) fn check_limits(
    attachments: &Attachments,
    record: &Record,
    size: u64,
    stored_type: Option<&str>,
) -> Result<(), ApiError> {
    let settings = &attachments.settings;
    if size > settings.max_size {
        return Err(too_large(size, settings.max_size));
    }
    if let Some(declared) = record.size
        && declared != size
    {
        return Err(ApiError::new(
            ErrorCode::SizeMismatch,
            format!("the upload has {size} bytes, {declared} were declared"),
        ));
    }
    let stored_type = stored_type.and_then(normalize_content_type);
    let effective = stored_type.as_deref().unwrap_or(&record.content_type);
    if effective != record.content_type || !settings.allows_content_type(effective) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the upload's content type `{effective}` is not the declared, allowed one"),
        ));
    }
    Ok(())
}

/// For stores that may keep a body that failed its signed checksum: the
/// checksum they report must be the declared one.
fn check_checksum(
    attachments: &Attachments,
    record: &Record,
    stored: Option<&str>,
) -> Result<(), ApiError> {
    let Some(declared) = record.sha256.as_deref().and_then(Sha256Sum::parse) else {
        return Ok(());
    };
    if attachments.storage.verifies_checksum_before_storing() {
        return Ok(());
    }
    match stored.and_then(Sha256Sum::parse) {
        Some(stored) if stored == declared => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::ChecksumMismatch,
            "the stored object does not have the declared SHA-256",
        )),
    }
}

#[utoipa::path(get, path = "/api/attachments/{id}/download-url", tag = "attachments",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A signed download URL", body = DownloadUrlResponse),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 403, description = "attachments.read_policy refuses", body = crate::error::ErrorBody),
        (status = 404, description = "No such attachment", body = crate::error::ErrorBody),
        (status = 409, description = "Not uploaded yet (`not_uploaded`), or several users' attachments with this id are readable (`ambiguous_attachment`)", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn download_url(
    req: HttpRequest,
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let record = readable(&attachments, &user, id.as_str()).await?;
    if record.state != State::Uploaded {
        return Err(not_uploaded(id.as_str()));
    }
    let settings = &attachments.settings;
    let signed = attachments
        .storage
        .presign_get(
            &record.object_key,
            &record.content_type,
            settings.url_ttl,
            &url_context(&req, &attachments),
        )
        .await
        .map_err(storage_error)?;
    if let Some(metrics) = crate::metrics::Metrics::of(&req) {
        metrics.url_signed("download");
    }
    Ok(HttpResponse::Ok().json(DownloadUrlResponse {
        id: record.id,
        download_url: signed.url,
        expires_at: signed
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        content_type: record.content_type,
        size: record.size,
    }))
}

/// The attachment `id` that `user` downloads: their own if they have one;
/// otherwise the one other user's attachment with this id that the read
/// policy lets them read. Ids are scoped per owner, so a user who claims an
/// id another user's row names only makes an attachment of their own, which
/// a `read_sql` binding the row's owner never lets others read.
async fn readable(
    attachments: &Attachments,
    user: &AuthUser,
    id: &str,
) -> Result<Record, ApiError> {
    let candidates = Session::pooled(&attachments.db)
        .await?
        .find_by_id(id)
        .await?;
    if candidates.is_empty() {
        return Err(not_found(id));
    }
    if let Some(own) = candidates.iter().find(|r| r.owner_id == user.user_id()) {
        return Ok(own.clone());
    }
    let mut allowed = Vec::new();
    for record in candidates {
        if may_read(attachments, user, &record).await? {
            allowed.push(record);
        }
    }
    match allowed.len() {
        0 => Err(ApiError::new(
            ErrorCode::Forbidden,
            "you may not download this attachment".to_owned(),
        )),
        1 => Ok(allowed.remove(0)),
        _ => Err(ApiError::Refused {
            code: ErrorCode::AmbiguousAttachment,
            message: format!(
                "several users have an attachment `{id}` you may read; with \
                 attachments.read_policy: sql, bind it to the row's owner ($3, the third ? on \
                 MySQL)"
            ),
        }),
    }
}

async fn may_read(
    attachments: &Attachments,
    user: &AuthUser,
    record: &Record,
) -> Result<bool, ApiError> {
    if record.owner_id == user.user_id() {
        return Ok(true);
    }
    match attachments.settings.read_policy {
        ReadPolicy::Owner => Ok(false),
        ReadPolicy::Authenticated => Ok(true),
        ReadPolicy::Sql => match attachments.settings.read_sql.as_deref() {
            Some(sql) => Session::pooled(&attachments.db)
                .await?
                .sql_allows_read(sql, user.user_id(), record)
                .await
                .map_err(read_sql_failed),
            None => Ok(false),
        },
    }
}

/// A failure of the operator's `attachments.read_sql`: unexpected ones say
/// which query failed in the log.
fn read_sql_failed(failure: DbFailure) -> ApiError {
    match ApiError::from(failure) {
        ApiError::Unexpected(cause) => {
            ApiError::Unexpected(cause.context("attachments.read_sql failed"))
        }
        other => other,
    }
}

#[utoipa::path(delete, path = "/api/attachments/{id}", tag = "attachments", operation_id = "delete_attachment",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, or already gone"),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
async fn delete(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    // Locked like `complete`: a local PUT finishing meanwhile either lands
    // before the object is removed or is refused.
    let mut decision = attachments.decision().await?;
    let record = match owned(&mut *decision.session().await?, &user, id.as_str()).await {
        Ok(record) => record,
        // Already gone: deleting is idempotent.
        Err(err) if err.code() == ErrorCode::NotFound => {
            return Ok(HttpResponse::NoContent().finish());
        }
        Err(other) => return Err(other),
    };
    attachments
        .storage
        .delete(&record.object_key)
        .await
        .map_err(storage_error)?;
    decision
        .session()
        .await?
        .mark_deleted(&record.owner_id, &record.id)
        .await?;
    decision.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
