//! `POST /api/attachments/{id}/multipart/complete`: every part checked
//! against what storage holds, the parts joined, the object checked like a
//! single upload.

use actix_web::{HttpResponse, web};

use super::wire::{CompleteBody, invalid_part, part_mismatch};
use super::{StoredPart, part_length};
use crate::attachments::files::upload_closed;
use crate::attachments::requests::{CompleteResponse, Sha256Sum};
use crate::attachments::routes::{
    check_limits, not_found, owned, parse_id, storage_error, stored_size,
};
use crate::attachments::state::Attachments;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::store::attachment_records::Decision;
use crate::store::attachments::State;
use crate::store::multipart::Upload;

#[utoipa::path(post, path = "/api/attachments/{id}/multipart/complete", tag = "attachments",
    operation_id = "complete_multipart_upload",
    description = "Checks every part against storage (number, ETag, size), joins them, checks \
                   the object like a single upload (size, type, SHA-256) and marks it uploaded.",
    params(("id" = String, Path, description = "Attachment id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")),
    request_body(content = CompleteBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = CompleteResponse),
        (status = 400, description = "Bad id, parts not ascending (`invalid_part`), checksum mismatch (`checksum_mismatch`)", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid token", body = crate::error::ErrorBody),
        (status = 404, description = "The caller has no attachment with this id", body = crate::error::ErrorBody),
        (status = 409, description = "A part is missing or differs from the stored one (`part_mismatch`), or the upload was completed, aborted or replaced (`upload_closed`)", body = crate::error::ErrorBody),
        (status = 413, description = "The object is over attachments.max_size (deleted)", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON, or the object's type is not allowed (deleted)", body = crate::error::ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id(), attachment_id = %path.as_str()))]
pub(super) async fn complete(
    user: AuthUser,
    attachments: web::Data<Attachments>,
    path: web::Path<String>,
    body: web::Json<CompleteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let body = body.into_inner();
    let late_sum = body
        .checksum_sha256
        .as_deref()
        .map(|raw| {
            Sha256Sum::parse(raw).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidChecksum,
                    "checksumSha256 must be a SHA-256 digest in base64 or hex",
                )
            })
        })
        .transpose()?;
    // With local storage the row locks keep a part from landing between
    // these checks and the join (the part route share-locks the upload).
    let mut decision = Decision::begin(&attachments.db, attachments.local.is_some()).await?;
    let record = owned(&mut *decision.session().await?, &user, id.as_str()).await?;
    let upload = decision
        .session()
        .await?
        .touch_multipart(user.user_id(), id.as_str())
        .await?;
    let upload = match upload {
        Some(upload) if upload.upload_id == body.upload_id => upload,
        // A retry whose first answer was lost: the upload is done.
        None if record.state == State::Uploaded => {
            return Ok(HttpResponse::Ok().json(CompleteResponse {
                id: record.id,
                key: record.object_key,
                size: record.size.unwrap_or(0),
                content_type: record.content_type,
                sha256: record.sha256,
            }));
        }
        _ => return Err(upload_closed()),
    };
    // Checked once the upload is known, so that a list for an upload that
    // is over answers that first.
    let given = parse_listed(&body)?;
    let declared = record.sha256.as_deref().and_then(Sha256Sum::parse);
    if let (Some(declared), Some(late)) = (&declared, &late_sum)
        && declared != late
    {
        return Err(ApiError::new(
            ErrorCode::ChecksumMismatch,
            "checksumSha256 differs from the one declared when the upload started",
        ));
    }
    let stored = attachments
        .multipart
        .list_parts(&upload.object_key, &upload.upload_id)
        .await
        .map_err(storage_error)?;
    let Some(stored) = stored else {
        // Storage lost the upload (aborted behind uplink's back): it is over.
        decision
            .session()
            .await?
            .remove_multipart(&upload.upload_id)
            .await?;
        decision.commit().await?;
        return Err(upload_closed());
    };
    let parts = check_parts(&upload, &given, &stored)?;
    let joined = attachments
        .multipart
        .complete(&upload.object_key, &upload.upload_id, &parts)
        .await
        .map_err(storage_error)?;
    // From here the parts are spent: a refused object goes, and so does the upload.
    decision
        .session()
        .await?
        .remove_multipart(&upload.upload_id)
        .await?;
    let info = attachments
        .storage
        .head(&upload.object_key)
        .await
        .map_err(storage_error)?
        .ok_or_else(upload_closed)?;
    let mut checked = check_limits(
        &attachments,
        &record,
        info.size,
        info.content_type.as_deref(),
    );
    if checked.is_ok()
        && let Some(expected) = declared.or(late_sum)
    {
        let actual = match joined {
            Some(digest) => digest,
            None => attachments
                .multipart
                .sha256_of(&upload.object_key)
                .await
                .map_err(storage_error)?,
        };
        if Sha256Sum::from_bytes(actual) != expected {
            checked = Err(ApiError::new(
                ErrorCode::ChecksumMismatch,
                "the joined object does not have the declared SHA-256",
            ));
        }
    }
    if let Err(violation) = checked {
        attachments
            .storage
            .delete(&upload.object_key)
            .await
            .map_err(storage_error)?;
        decision.commit().await?;
        return Err(violation);
    }
    let record = decision
        .session()
        .await?
        .mark_uploaded(user.user_id(), id.as_str(), stored_size(info.size)?)
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

/// The client's list: part numbers strictly ascending from 1.
fn parse_listed(body: &CompleteBody) -> Result<Vec<(u32, String)>, ApiError> {
    if body.parts.is_empty() {
        return Err(invalid_part("parts must list every part"));
    }
    let mut previous = 0;
    let mut listed = Vec::with_capacity(body.parts.len());
    for part in &body.parts {
        if part.part_number <= previous {
            return Err(invalid_part(format!(
                "parts must be listed once each in ascending order; part {} follows part {previous}",
                part.part_number
            )));
        }
        previous = part.part_number;
        listed.push((
            part.part_number,
            part.etag.trim().trim_matches('"').to_owned(),
        ));
    }
    Ok(listed)
}

/// Every part 1..=partCount, each listed with the ETag and the size storage
/// has for it: the parts to join.
fn check_parts(
    upload: &Upload,
    given: &[(u32, String)],
    stored: &[StoredPart],
) -> Result<Vec<StoredPart>, ApiError> {
    let mut parts = Vec::with_capacity(given.len());
    for number in 1..=upload.part_count {
        let Some((_, etag)) = given.iter().find(|(n, _)| *n == number) else {
            return Err(part_mismatch(format!(
                "part {number} of {} is not listed",
                upload.part_count
            )));
        };
        let Some(part) = stored.iter().find(|p| p.number == number) else {
            return Err(part_mismatch(format!(
                "part {number} has not been uploaded"
            )));
        };
        if !part.etag.eq_ignore_ascii_case(etag) {
            return Err(part_mismatch(format!(
                "part {number}'s ETag is not the stored part's"
            )));
        }
        let expected = part_length(upload.size, upload.part_size, number);
        if part.size != expected {
            return Err(part_mismatch(format!(
                "part {number} has {} bytes; it must have {expected}",
                part.size
            )));
        }
        parts.push(part.clone());
    }
    if let Some((extra, _)) = given.iter().find(|(n, _)| *n > upload.part_count) {
        return Err(invalid_part(format!(
            "part {extra} is outside this upload's parts 1 to {}",
            upload.part_count
        )));
    }
    Ok(parts)
}
