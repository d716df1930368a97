//! S3 multipart uploads: devices send parts on presigned `UploadPart`
//! URLs; uplink starts, lists, completes and aborts.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};

use super::{MultipartStore, StoredPart};
use crate::attachments::s3::{S3Storage, presigned};
use crate::attachments::storage::{PresignedRequest, UrlContext};

/// S3 answers at most this many parts per `ListParts` page.
const PAGE: i32 = 1000;

fn unquoted(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

fn is_no_such_upload<E: std::fmt::Debug>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    err.raw_response()
        .is_some_and(|r| r.status().as_u16() == 404)
}

#[async_trait::async_trait]
impl MultipartStore for S3Storage {
    async fn create(&self, key: &str, content_type: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .context("Failed to start an S3 multipart upload")?;
        out.upload_id()
            .map(str::to_owned)
            .context("S3 started a multipart upload without an upload id")
    }

    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        length: u64,
        ttl: Duration,
        _ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let config = PresigningConfig::expires_in(ttl).context("Failed to configure presigning")?;
        let signed = self
            .presigner
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(i32::try_from(number).context("part number out of range")?)
            .content_length(i64::try_from(length).context("part size out of range")?)
            .presigned(config)
            .await
            .context("Failed to presign an S3 part upload")?;
        Ok(presigned(signed, ttl))
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<StoredPart>>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let result = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .max_parts(PAGE)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(err) if is_no_such_upload(&err) => return Ok(None),
                Err(err) => {
                    return Err(anyhow::Error::new(err).context("Failed to list an upload's parts"));
                }
            };
            for part in out.parts() {
                let (Some(number), Some(size)) = (part.part_number(), part.size()) else {
                    continue;
                };
                parts.push(StoredPart {
                    number: u32::try_from(number).unwrap_or(0),
                    size: u64::try_from(size).unwrap_or(0),
                    etag: part.e_tag().map(unquoted).unwrap_or_default(),
                });
            }
            match out.next_part_number_marker() {
                Some(next) if out.is_truncated() == Some(true) => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(Some(parts))
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Option<[u8; 32]>> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(i32::try_from(p.number).unwrap_or(i32::MAX))
                    .e_tag(format!("\"{}\"", p.etag))
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .context("Failed to complete an S3 multipart upload")?;
        Ok(None)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> anyhow::Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_no_such_upload(&err) => Ok(()),
            Err(err) => {
                Err(anyhow::Error::new(err).context("Failed to abort an S3 multipart upload"))
            }
        }
    }

    async fn sha256_of(&self, key: &str) -> anyhow::Result<[u8; 32]> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .context("Failed to read an S3 object")?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .context("Failed to read an S3 object")?
        {
            hasher.update(&chunk);
        }
        Ok(hasher.finalize().into())
    }

    async fn list_uploads(
        &self,
        prefix: &str,
        older_than: Duration,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let cutoff = chrono::Utc::now().timestamp()
            - i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
        // One page per sweep: what is left waits for the next.
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(format!("{prefix}/"))
            .send()
            .await
            .context("Failed to list S3 multipart uploads")?;
        Ok(out
            .uploads()
            .iter()
            .filter(|u| u.initiated().is_some_and(|t| t.secs() < cutoff))
            .filter_map(|u| Some((u.key()?.to_owned(), u.upload_id()?.to_owned())))
            .collect())
    }
}
