//! Multipart, resumable uploads: a large file goes to storage in parts, each
//! on its own signed URL, so a dropped connection costs one part, not the
//! file. The device starts an upload (uplink records it and picks the part
//! size), asks for part URLs, lists the parts storage holds to resume, then
//! completes (uplink checks every part against storage, assembles the
//! object and checks it like a single upload) or aborts.
//!
//! On S3 the parts go straight to the bucket (`UploadPart` URLs); with
//! local storage uplink takes them on its own signed URLs, keeps them in a
//! directory per upload and joins them on complete, streaming.

mod cleanup;
pub(crate) mod complete;
mod local;
pub(crate) mod parts;
pub(crate) mod routes;
#[cfg(feature = "s3")]
mod s3;
mod wire;

use std::time::Duration;

use super::storage::{PresignedRequest, UrlContext};

/// S3's limits, which uplink keeps on both backends.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;
const MIB: u64 = 1024 * 1024;

/// A part as storage holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
}

/// The part size for a file of `size` bytes: the smallest whole number of
/// MiB, at least 5 MiB, that needs at most 10 000 parts; `None` when even
/// 5 GiB parts would need more.
pub fn part_size_for(size: u64) -> Option<u64> {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    let part = needed.max(MIN_PART_SIZE);
    (part <= MAX_PART_SIZE).then_some(part)
}

/// How many parts a file of `size` bytes has in parts of `part_size`.
pub fn part_count(size: u64, part_size: u64) -> u64 {
    size.div_ceil(part_size).max(1)
}

/// The length part `number` (1-based) must have.
pub fn part_length(size: u64, part_size: u64, number: u32) -> u64 {
    let count = part_count(size, part_size);
    if u64::from(number) < count {
        part_size
    } else {
        size - part_size * (count - 1)
    }
}

/// A storage that takes multipart uploads.
#[async_trait::async_trait]
pub trait MultipartStore: Send + Sync {
    /// Starts an upload for `key`; returns storage's upload id.
    async fn create(&self, key: &str, content_type: &str) -> anyhow::Result<String>;

    /// A URL that takes exactly `length` bytes as part `number`.
    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        length: u64,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest>;

    /// The parts stored so far, by number; `None` when storage has no
    /// such upload (completed or aborted).
    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<StoredPart>>>;

    /// Joins `parts` (all of them, ascending) into the object `key`.
    /// Returns the object's SHA-256 when joining computed it.
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Option<[u8; 32]>>;

    /// Drops the upload and its parts; succeeds when there is none.
    async fn abort(&self, key: &str, upload_id: &str) -> anyhow::Result<()>;

    /// The SHA-256 of the stored object `key`, read as a stream.
    async fn sha256_of(&self, key: &str) -> anyhow::Result<[u8; 32]>;

    /// Uploads storage holds under `prefix` that started more than
    /// `older_than` ago, as (key, upload id): the cleanup aborts those
    /// uplink has no record of.
    async fn list_uploads(
        &self,
        prefix: &str,
        older_than: Duration,
    ) -> anyhow::Result<Vec<(String, String)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_stay_within_s3_limits() {
        assert_eq!(part_size_for(1), Some(MIN_PART_SIZE));
        assert_eq!(part_size_for(256 * MIB), Some(MIN_PART_SIZE));
        // 10 000 parts of 5 MiB hold 50 000 MiB; one byte more needs 6 MiB parts.
        assert_eq!(part_size_for(50_000 * MIB), Some(5 * MIB));
        assert_eq!(part_size_for(50_000 * MIB + 1), Some(6 * MIB));
        assert_eq!(
            part_size_for(MAX_PARTS * MAX_PART_SIZE),
            Some(MAX_PART_SIZE)
        );
        assert_eq!(part_size_for(MAX_PARTS * MAX_PART_SIZE + 1), None);
        for size in [1, 5 * MIB, 5 * MIB + 1, 123_456_789, 50_000 * MIB + 1] {
            let part = part_size_for(size).expect("a part size");
            let count = part_count(size, part);
            assert!(count <= MAX_PARTS, "{size}");
            let total: u64 = (1..=count as u32).map(|n| part_length(size, part, n)).sum();
            assert_eq!(total, size);
            assert!(part_length(size, part, count as u32) > 0);
        }
    }
}
