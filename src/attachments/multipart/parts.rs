//! `PUT /api/attachments/parts/{upload id}/{part number}`: the local
//! backend takes a part on a URL signed by the part-signing route. Like a
//! single local upload, it streams into a temporary file within
//! `attachments.local.upload_timeout` and at most the part's signed size,
//! and is put in place only while the upload is in progress.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::local::{PARTS_PATH, is_upload_id, signed_part_key};
use crate::attachments::files::{header_str, io_error, receive_to_temp, refusal, upload_closed};
use crate::attachments::local::SignedQuery;
use crate::attachments::state::Attachments;
use crate::error::{ApiError, ErrorCode};
use crate::store::attachment_records::Session;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        &format!("{PARTS_PATH}/{{upload_id}}/{{part_number}}"),
        web::put().to(put_part),
    );
}

#[utoipa::path(put, path = "/api/attachments/parts/{upload_id}/{part_number}", tag = "attachments",
    description = "Local storage only: a part URL returned by the part-signing route \
                   (HMAC-signed, expiring). The body is exactly the part's bytes; the answer's \
                   `ETag` goes into complete.",
    params(
        ("upload_id" = String, Path, description = "The multipart upload, as signed"),
        ("part_number" = u32, Path, description = "The part, as signed", minimum = 1, maximum = 10000),
        ("expires" = i64, Query, description = "Signed expiry (Unix seconds)"),
        ("max" = Option<u64>, Query, description = "Signed size limit"),
        ("headers" = Option<String>, Query, description = "Signed header names"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored",
            headers(("ETag" = String, description = "The part's ETag (quoted hex SHA-256)"))),
        (status = 400, description = "Bad URL or body", body = crate::error::ErrorBody),
        (status = 403, description = "Expired URL or bad signature", body = crate::error::ErrorBody),
        (status = 404, description = "Local storage is not enabled", body = crate::error::ErrorBody),
        (status = 408, description = "The part did not arrive within attachments.local.upload_timeout", body = crate::error::ErrorBody),
        (status = 409, description = "The upload was completed, aborted or replaced (`upload_closed`)", body = crate::error::ErrorBody),
        (status = 413, description = "Over the part's signed size", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all)]
async fn put_part(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<SignedQuery>,
    attachments: web::Data<Attachments>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (upload_id, number) = path.into_inner();
    let local = attachments.local.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "local attachment storage is not enabled".to_owned(),
        )
    })?;
    let number: u32 = number
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidPath, "not a part number"))?;
    local
        .verify(
            "PUT",
            &signed_part_key(&upload_id, number),
            &query,
            |name| req.headers().get(name).and_then(|v| v.to_str().ok()),
        )
        .map_err(refusal)?;
    // Only ids uplink signed reach here; re-check before touching the disk.
    if !is_upload_id(&upload_id) {
        return Err(ApiError::new(ErrorCode::InvalidPath, "not an upload id"));
    }
    let mut session = Session::pooled(&attachments.db).await?;
    if session.lock_open_multipart(&upload_id).await?.is_none() {
        return Err(upload_closed());
    }
    drop(session);
    // The signature covers max and Content-Length: the part's exact size.
    let limit = query.max.unwrap_or(0);
    let expected: Option<u64> = header_str(&req, "content-length").and_then(|v| v.parse().ok());

    let timeout = attachments.settings.local.upload_timeout;
    let (temp, file, written, digest) =
        receive_to_temp(local.temp_path(), &mut body, limit, timeout, "part").await?;
    let temp_path = temp.0.clone().unwrap_or_default();
    if expected != Some(written) || written != limit {
        return Err(ApiError::new(
            ErrorCode::IncompleteBody,
            format!("received {written} of the part's {limit} bytes"),
        ));
    }
    file.sync_all()
        .await
        .map_err(|e| io_error(e, "flush a part"))?;
    drop(file);
    let etag = hex::encode(digest);
    let mut tx = Session::begin(&attachments.db).await?;
    if tx.lock_open_multipart(&upload_id).await?.is_none() {
        return Err(upload_closed());
    }
    tokio::fs::rename(&temp_path, local.part_path(&upload_id, number, &etag))
        .await
        .map_err(|e| io_error(e, "store a part"))?;
    let mut temp = temp;
    temp.0 = None;
    local.remove_other_versions(&upload_id, number, &etag).await;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{etag}\"")))
        .finish())
}
