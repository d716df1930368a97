//! The object store behind attachments: S3 or a local directory.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What a presigned upload commits the uploader to; each field becomes a
/// signed header that the device must send as is.
#[derive(Debug, Clone)]
pub struct PutConstraints {
    pub content_type: String,
    /// Signed as `Content-Length` when the client declared a size.
    pub content_length: Option<u64>,
    /// Base64 SHA-256 of the body, signed as `x-amz-checksum-sha256`.
    pub checksum_sha256: Option<String>,
    /// Upper bound when no exact length was declared.
    pub max_size: u64,
}

/// A URL plus the headers that must accompany it.
#[derive(Debug, Clone)]
pub struct PresignedRequest {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// What the store knows about a stored object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub size: u64,
    /// `None` when the backend does not keep it (local: it was enforced on upload).
    pub content_type: Option<String>,
    /// Base64 SHA-256 the store verified on upload, when it keeps one.
    pub checksum_sha256: Option<String>,
}

/// The request context a backend may need to build URLs.
#[derive(Debug, Clone, Default)]
pub struct UrlContext {
    /// `scheme://host` of the incoming request, for backends served by uplink.
    pub request_base: Option<String>,
}

#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// `local` or `s3`, for logs and the readiness report.
    fn name(&self) -> &'static str;

    async fn presign_put(
        &self,
        key: &str,
        constraints: &PutConstraints,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest>;

    /// `content_type` is what the download should be served as.
    async fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest>;

    /// Whether a `PUT` whose body does not match its signed
    /// `x-amz-checksum-sha256` is refused before anything becomes visible.
    /// Otherwise `complete` compares the checksum `head` reports.
    fn verifies_checksum_before_storing(&self) -> bool {
        false
    }

    /// `None` when no object is stored under `key`.
    async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>>;

    /// Removes the object; succeeds when there is none.
    async fn delete(&self, key: &str) -> anyhow::Result<()>;

    /// A cheap reachability check for `/health/ready`.
    async fn check(&self) -> anyhow::Result<()>;
}

/// `now + ttl` as the instant a URL stops working.
pub fn expiry(ttl: Duration) -> DateTime<Utc> {
    // ttl is validated to at most 7 days, so the fallback is never used.
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::days(7))
}
