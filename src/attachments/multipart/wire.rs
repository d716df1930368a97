//! Wire shapes of the multipart routes.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, ErrorCode};

/// `POST /api/attachments/multipart`; fields as for `upload-url`, but the
/// size is required (it fixes the part size).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MultipartStartRequest)]
pub struct StartBody {
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
    /// The whole file's bytes. Aliases `contentLength`, `content_length`.
    #[serde(alias = "contentLength", alias = "content_length")]
    #[schema(minimum = 1)]
    pub size: u64,
    /// Base64 or hex SHA-256 of the whole file, checked on complete.
    /// Aliases `checksum_sha256`, `sha256`.
    #[serde(rename = "checksumSha256", alias = "checksum_sha256", alias = "sha256")]
    #[schema(pattern = "^([0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")]
    pub checksum_sha256: Option<String>,
}

/// The upload in progress: what `start` answers and what `GET …/multipart`
/// shows (with the parts stored so far).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MultipartUpload)]
pub struct UploadView {
    pub id: String,
    pub key: String,
    pub upload_id: String,
    pub size: u64,
    /// Every part but the last has exactly this many bytes.
    pub part_size: u64,
    pub part_count: u32,
    /// The parts storage holds (empty right after start).
    pub parts: Vec<PartView>,
}

/// A stored part.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MultipartStoredPart)]
pub struct PartView {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
}

/// `POST /api/attachments/{id}/multipart/parts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = MultipartSignRequest)]
pub struct SignBody {
    /// The upload the parts belong to, as `start` returned it.
    #[schema(min_length = 1, max_length = 1024)]
    pub upload_id: String,
    /// 1 to 100 part numbers, each within 1..=partCount.
    #[schema(min_items = 1, max_items = 100)]
    #[serde(deserialize_with = "part_numbers")]
    pub part_numbers: Vec<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MultipartSignResponse)]
pub struct SignResponse {
    pub upload_id: String,
    pub parts: Vec<SignedPart>,
}

/// Send exactly `size` bytes of the file from `(partNumber - 1) * partSize`
/// with `method` and these `headers`; keep the response's `ETag`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MultipartSignedPart)]
pub struct SignedPart {
    pub part_number: u32,
    pub size: u64,
    pub url: String,
    #[schema(value_type = String, example = "PUT")]
    pub method: &'static str,
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `POST /api/attachments/{id}/multipart/complete`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = MultipartCompleteRequest)]
pub struct CompleteBody {
    #[schema(min_length = 1, max_length = 1024)]
    pub upload_id: String,
    /// Every part, ascending, with the `ETag` its upload answered.
    #[schema(min_items = 1, max_items = 10000)]
    pub parts: Vec<CompletedPart>,
    /// Base64 or hex SHA-256 of the whole file, when not declared on start
    /// (if both are given they must agree).
    #[serde(alias = "checksum_sha256", alias = "sha256")]
    #[schema(pattern = "^([0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")]
    pub checksum_sha256: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = MultipartCompletedPart)]
pub struct CompletedPart {
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(deserialize_with = "part_number")]
    pub part_number: u32,
    /// With or without the quotes storage sent.
    #[schema(min_length = 1, max_length = 1024)]
    pub etag: String,
}

/// `DELETE /api/attachments/{id}/multipart`: the upload to abort.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AbortQuery {
    /// Aborts this upload only; without it, whichever is in progress.
    #[param(min_length = 1, max_length = 1024)]
    pub upload_id: Option<String>,
}

pub(super) fn invalid_part(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidPart, message)
}

pub(super) fn part_mismatch(message: String) -> ApiError {
    ApiError::Refused {
        code: ErrorCode::PartMismatch,
        message,
    }
}

/// A part number as JSON Schema counts integers: `3` or `3.0`.
fn whole(n: &serde_json::Number) -> Option<u32> {
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                .map(|f| f as u64)
        })
        .and_then(|v| u32::try_from(v).ok())
}

fn part_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole(&n).ok_or_else(|| D::Error::custom(format!("{n} is not a part number")))
}

fn part_numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    Vec::<serde_json::Number>::deserialize(d)?
        .iter()
        .map(|n| whole(n).ok_or_else(|| D::Error::custom(format!("{n} is not a part number"))))
        .collect()
}
