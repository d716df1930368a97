//! `PUT`/`GET /api/attachments/files/{key}`: the local backend's object
//! store, reached only through signed URLs (no bearer token: the URL is the
//! credential, as with S3).

use std::path::{Path, PathBuf};

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::key;
use super::local::{FILES_PATH, LocalStorage, Refusal, SignedQuery};
use super::requests::Sha256Sum;
use super::serving;
use super::state::Attachments;
use crate::error::{ApiError, ErrorCode};
use crate::store::attachment_records::Session;

const READ_CHUNK: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(&format!("{FILES_PATH}/{{key:.*}}"), web::put().to(put_file))
        .route(&format!("{FILES_PATH}/{{key:.*}}"), web::get().to(get_file));
}

pub(super) fn refusal(refusal: Refusal) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        match refusal {
            Refusal::Expired => "this URL has expired",
            Refusal::BadSignature => "the URL's signature does not match the request",
        }
        .to_owned(),
    )
}

pub(super) fn upload_closed() -> ApiError {
    ApiError::Refused {
        code: ErrorCode::UploadClosed,
        message: "this upload URL no longer accepts a body: the upload was completed, deleted \
                  or abandoned; ask for a new upload URL"
            .to_owned(),
    }
}

/// The local backend and the checked key of a signed request.
fn authorize<'a>(
    attachments: &'a Attachments,
    req: &HttpRequest,
    key: &str,
    query: &SignedQuery,
) -> Result<&'a LocalStorage, ApiError> {
    let local = attachments.local.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "local attachment storage is not enabled".to_owned(),
        )
    })?;
    local
        .verify(req.method().as_str(), key, query, |name| {
            req.headers().get(name).and_then(|v| v.to_str().ok())
        })
        .map_err(refusal)?;
    // Only keys uplink signed reach here; re-check the shape before
    // touching the file system anyway.
    if !key::is_object_key(&attachments.settings.key_prefix, key) {
        return Err(ApiError::new(
            ErrorCode::InvalidKey,
            "not an attachment key",
        ));
    }
    Ok(local)
}

/// Removes a temporary file unless the upload succeeded.
pub(super) struct TempFile(pub(super) Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[utoipa::path(put, path = "/api/attachments/files/{key}", tag = "attachments",
    description = "Local storage only: the upload URL returned by upload-url (HMAC-signed, expiring). \
                   The body is the file's bytes.",
    params(
        ("key" = String, Path, description = "Object key, as signed"),
        ("expires" = i64, Query, description = "Signed expiry (Unix seconds)"),
        ("max" = Option<u64>, Query, description = "Signed size limit"),
        ("headers" = Option<String>, Query, description = "Signed header names"),
        ("signature" = String, Query, description = "HMAC-SHA256 signature"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Bad URL or body", body = crate::error::ErrorBody),
        (status = 403, description = "Expired URL or bad signature", body = crate::error::ErrorBody),
        (status = 404, description = "Local storage is not enabled", body = crate::error::ErrorBody),
        (status = 409, description = "The upload was completed, deleted or abandoned since the URL was issued (`upload_closed`)", body = crate::error::ErrorBody),
        (status = 413, description = "Over the signed size", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all)]
async fn put_file(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SignedQuery>,
    attachments: web::Data<Attachments>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let local = authorize(&attachments, &req, &key, &query)?;
    // A signed URL stays valid until it expires; only a pending upload may
    // use it (checked again, under a lock, before the object is replaced).
    let mut session = Session::pooled(&attachments.db).await?;
    if !session.lock_open_upload(&key).await? {
        return Err(upload_closed());
    }
    drop(session);
    let limit = query.max.unwrap_or(attachments.settings.max_size);
    let expected_length: Option<u64> = query
        .headers
        .split(';')
        .any(|n| n == "content-length")
        .then(|| header_str(&req, "content-length").and_then(|v| v.parse().ok()))
        .flatten();
    let expected_sum = query
        .headers
        .split(';')
        .any(|n| n == "x-amz-checksum-sha256")
        .then(|| header_str(&req, "x-amz-checksum-sha256").and_then(Sha256Sum::parse))
        .flatten();

    let timeout = attachments.settings.local.upload_timeout;
    let (temp, file, written, digest) =
        receive_to_temp(local.temp_path(), &mut body, limit, timeout, "upload").await?;
    let temp_path = temp.0.clone().unwrap_or_default();
    if let Some(expected) = expected_length
        && expected != written
    {
        return Err(ApiError::new(
            ErrorCode::IncompleteBody,
            format!("received {written} of {expected} bytes"),
        ));
    }
    if let Some(expected) = expected_sum {
        let actual = Sha256Sum::from_bytes(digest);
        if actual != expected {
            return Err(ApiError::new(
                ErrorCode::BadDigest,
                "the body does not match x-amz-checksum-sha256",
            ));
        }
    }
    file.sync_all()
        .await
        .map_err(|e| io_error(e, "flush an upload"))?;
    drop(file);
    let mut tx = Session::begin(&attachments.db).await?;
    if !tx.lock_open_upload(&key).await? {
        return Err(upload_closed());
    }
    publish(&temp_path, &local.path_of(&key)).await?;
    tx.commit().await?;
    let mut temp = temp;
    temp.0 = None;
    Ok(HttpResponse::Ok().finish())
}

/// Streams a request body into a new temporary file at `path`, at most
/// `limit` bytes, all within `timeout` (`attachments.local.upload_timeout`):
/// a sender dripping a byte now and then must not hold a connection and a
/// file for as long as it likes. Returns the file (removed on drop unless
/// kept, so a refusal leaves nothing), its handle, the bytes written and
/// their SHA-256; `what` names the body in errors (`upload`, `part`).
pub(super) async fn receive_to_temp(
    path: PathBuf,
    body: &mut web::Payload,
    limit: u64,
    timeout: std::time::Duration,
    what: &str,
) -> Result<(TempFile, tokio::fs::File, u64, [u8; 32]), ApiError> {
    let temp = TempFile(Some(path.clone()));
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(e, "create the temporary upload directory"))?;
    }
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| io_error(e, &format!("create a temporary {what} file")))?;
    let (written, digest) = tokio::time::timeout(timeout, receive(body, &mut file, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the {what} did not arrive within {} (attachments.local.upload_timeout)",
                    humantime::format_duration(timeout)
                ),
            )
        })??;
    Ok((temp, file, written, digest))
}

/// Streams the body into `file` up to `limit` bytes; returns its length
/// and SHA-256.
pub(super) async fn receive(
    body: &mut web::Payload,
    file: &mut tokio::fs::File,
    limit: u64,
) -> Result<(u64, [u8; 32]), ApiError> {
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                ErrorCode::IncompleteBody,
                "the upload body could not be read",
            )
        })?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the upload is larger than the {limit} bytes this URL allows"),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(e, "write an upload"))?;
    }
    Ok((written, hasher.finalize().into()))
}

pub(super) fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Moves a finished upload into place atomically: readers see the old
/// object or the new one, never a part.
async fn publish(temp: &Path, target: &Path) -> Result<(), ApiError> {
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error(e, "create an attachment directory"))?;
    }
    tokio::fs::rename(temp, target)
        .await
        .map_err(|e| io_error(e, "store an upload"))
}

pub(super) fn io_error(err: std::io::Error, what: &str) -> ApiError {
    ApiError::Unexpected(anyhow::Error::new(err).context(format!("Failed to {what}")))
}

#[utoipa::path(get, path = "/api/attachments/files/{key}", tag = "attachments",
    description = "Local storage only: the download URL returned by download-url.",
    params(
        ("key" = String, Path, description = "Object key, as signed"),
        ("expires" = i64, Query, description = "Signed expiry (Unix seconds)"),
        ("ct" = Option<String>, Query, description = "Signed content type"),
        ("signature" = String, Query, description = "HMAC-SHA256 signature"),
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>,
            headers(
                ("Content-Disposition" = String, description = "`attachment` unless the type is a raster image, audio or video (`inline`)"),
                ("X-Content-Type-Options" = String, description = "`nosniff`"),
                ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`"),
            )),
        (status = 400, description = "Bad URL", body = crate::error::ErrorBody),
        (status = 403, description = "Expired URL or bad signature", body = crate::error::ErrorBody),
        (status = 404, description = "No such object, or local storage is not enabled", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all)]
async fn get_file(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SignedQuery>,
    attachments: web::Data<Attachments>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let local = authorize(&attachments, &req, &key, &query)?;
    let file = match tokio::fs::File::open(local.path_of(&key)).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no such object".to_owned(),
            ));
        }
        Err(err) => return Err(io_error(err, "open an attachment")),
    };
    let length = file
        .metadata()
        .await
        .map_err(|e| io_error(e, "stat an attachment"))?
        .len();
    let content_type = query
        .ct
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; READ_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    });
    let disposition = serving::content_disposition(content_type.to_str().unwrap_or_default());
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            serving::CONTENT_SECURITY_POLICY,
        ))
        .insert_header((header::CACHE_CONTROL, "private, max-age=0"))
        .no_chunking(length)
        .streaming(stream))
}
