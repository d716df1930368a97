//! Wire shapes of the attachment routes and their conversion to checked values.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::key::{self, AttachmentId};
use super::settings::AttachmentSettings;
use crate::error::{ApiError, ErrorCode};

/// `POST /api/attachments/upload-url`; fields in camelCase or snake_case.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UploadUrlRequest)]
pub struct UploadUrlBody {
    /// Client-chosen id (letters, digits, `-`, `_`); generated when absent.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")]
    pub id: Option<String>,
    /// Aliases `fileName`, `file_name`; only its extension is used.
    #[serde(alias = "fileName", alias = "file_name")]
    #[schema(pattern = "[A-Za-z0-9]")]
    pub filename: String,
    /// Aliases `content_type`, `mediaType`, `media_type`.
    #[serde(
        rename = "contentType",
        alias = "content_type",
        alias = "mediaType",
        alias = "media_type"
    )]
    #[schema(pattern = "^([A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(;.*)?)?$")]
    pub content_type: Option<String>,
    /// Bytes; signed into the URL when given. Aliases `contentLength`, `content_length`.
    #[serde(alias = "contentLength", alias = "content_length")]
    pub size: Option<u64>,
    /// Base64 or hex SHA-256 of the bytes; signed into the URL when given.
    /// Aliases `checksum_sha256`, `sha256`.
    #[serde(rename = "checksumSha256", alias = "checksum_sha256", alias = "sha256")]
    #[schema(pattern = "^([0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")]
    pub checksum_sha256: Option<String>,
}

/// A checked upload request.
#[derive(Debug)]
pub struct UploadRequest {
    pub id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size: Option<u64>,
    pub sha256: Option<Sha256Sum>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Sum([u8; 32]);

impl Sha256Sum {
    /// Accepts base64 (as S3's `x-amz-checksum-sha256`) or hex.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let bytes = if raw.len() == 64 {
            hex::decode(raw).ok()?
        } else {
            STANDARD.decode(raw).ok()?
        };
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl UploadRequest {
    pub fn parse(body: UploadUrlBody, settings: &AttachmentSettings) -> Result<Self, ApiError> {
        let id = match body.id.as_deref() {
            Some(raw) => {
                AttachmentId::parse(raw).map_err(|m| ApiError::new(ErrorCode::InvalidId, m))?
            }
            None => AttachmentId::generate(),
        };
        let filename = key::clean_filename(&body.filename);
        if filename.trim().is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidFilename,
                "filename must not be empty",
            ));
        }
        let content_type = match body.content_type.as_deref() {
            Some(raw) if !raw.trim().is_empty() => {
                normalize_content_type(raw).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidContentType,
                        "contentType must look like `type/subtype`",
                    )
                })?
            }
            _ => guess_content_type(&key::extension(&filename)).to_owned(),
        };
        if !settings.allows_content_type(&content_type) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("content type `{content_type}` is not allowed for attachments"),
            ));
        }
        if let Some(size) = body.size
            && size > settings.max_size
        {
            return Err(too_large(size, settings.max_size));
        }
        let sha256 = match body.checksum_sha256.as_deref() {
            Some(raw) => Some(Sha256Sum::parse(raw).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidChecksum,
                    "checksumSha256 must be a SHA-256 digest in base64 or hex",
                )
            })?),
            None => None,
        };
        Ok(Self {
            id,
            filename,
            content_type,
            size: body.size,
            sha256,
        })
    }
}

pub fn too_large(size: u64, max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("attachment of {size} bytes is larger than the limit of {max} bytes"),
    )
}

/// `Image/PNG; charset=x` → `image/png`; `None` unless it is `token/token`.
pub fn normalize_content_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (top, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(top) && token(sub)).then_some(essence)
}

/// A content type for the common extensions, when the client sends none.
fn guess_content_type(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadUrlResponse {
    pub id: String,
    pub key: String,
    /// Send the bytes here with `method` and exactly these `headers`.
    pub upload_url: String,
    #[schema(value_type = String, example = "PUT")]
    pub method: &'static str,
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrlResponse {
    pub id: String,
    pub download_url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub content_type: String,
    pub size: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResponse {
    pub id: String,
    pub key: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256, when the upload declared one.
    pub sha256: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> UploadUrlBody {
        serde_json::from_value(json).expect("body")
    }

    #[test]
    fn both_spellings_are_accepted() {
        let settings = AttachmentSettings::default();
        let camel = body(serde_json::json!({
            "id": "a1", "filename": "x.png", "contentType": "IMAGE/PNG", "size": 3,
            "checksumSha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        }));
        let snake = body(serde_json::json!({
            "id": "a1", "filename": "x.png", "content_type": "image/png", "size": 3,
            "checksum_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        }));
        let a = UploadRequest::parse(camel, &settings).expect("camel");
        let b = UploadRequest::parse(snake, &settings).expect("snake");
        assert_eq!(a.content_type, "image/png");
        assert_eq!(a.content_type, b.content_type);
        assert_eq!(a.sha256, b.sha256);
    }

    #[test]
    fn bad_inputs_are_rejected_with_a_code() {
        let settings = AttachmentSettings {
            allowed_content_types: vec!["image/*".into()],
            max_size: 10,
            ..AttachmentSettings::default()
        };
        let cases = [
            (
                serde_json::json!({"filename": "x", "id": "../x"}),
                "invalid_id",
            ),
            (
                serde_json::json!({"filename": "\u{0}\n"}),
                "invalid_filename",
            ),
            (
                serde_json::json!({"filename": "x.png", "contentType": "png"}),
                "invalid_content_type",
            ),
            (
                serde_json::json!({"filename": "x.pdf"}),
                "unsupported_media_type",
            ),
            (
                serde_json::json!({"filename": "x.png", "size": 11}),
                "payload_too_large",
            ),
            (
                serde_json::json!({"filename": "x.png", "checksumSha256": "abc"}),
                "invalid_checksum",
            ),
        ];
        for (json, code) in cases {
            let err = UploadRequest::parse(body(json.clone()), &settings).expect_err(code);
            assert_eq!(err.code().as_str(), code, "{json}");
        }
    }
}
