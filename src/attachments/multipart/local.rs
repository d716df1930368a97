//! The local backend's multipart uploads: part `n` of upload `u` is the
//! file `.parts/{u}/{n}.{sha256}` under the attachments directory (its
//! SHA-256 is its ETag), put there whole by the part route; complete joins
//! the parts into a temporary file, streaming, and moves it into place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{MultipartStore, StoredPart};
use crate::attachments::local::LocalStorage;
pub use crate::attachments::local::PARTS_PATH;
use crate::attachments::storage::{PresignedRequest, UrlContext};

const COPY_CHUNK: usize = 64 * 1024;

/// What a part URL's signature covers. `:` never occurs in an object key,
/// so a part's signature is never an object's.
pub fn signed_part_key(upload_id: &str, number: u32) -> String {
    format!("multipart:{upload_id}:{number}")
}

/// Local upload ids are simple UUIDs: safe as a directory name.
pub fn is_upload_id(raw: &str) -> bool {
    raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LocalStorage {
    fn parts_root(&self) -> PathBuf {
        self.root().join(".parts")
    }

    /// The directory of upload `upload_id` (checked with `is_upload_id`).
    pub fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.parts_root().join(upload_id)
    }

    /// Where part `number` with SHA-256 `etag` is kept.
    pub fn part_path(&self, upload_id: &str, number: u32, etag: &str) -> PathBuf {
        self.upload_dir(upload_id).join(format!("{number}.{etag}"))
    }

    /// Removes the other versions of part `number` (an earlier attempt).
    pub async fn remove_other_versions(&self, upload_id: &str, number: u32, keep: &str) {
        if let Ok(Some(parts)) = self.stored_parts(upload_id).await {
            for (n, etag, path) in parts {
                if n == number && etag != keep {
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
        }
    }

    /// Every part file of the upload: (number, etag, path).
    async fn stored_parts(
        &self,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<(u32, String, PathBuf)>>> {
        if !is_upload_id(upload_id) {
            return Ok(None);
        }
        let mut entries = match tokio::fs::read_dir(self.upload_dir(upload_id)).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context("Failed to list the parts of an upload"),
        };
        let mut parts = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .context("Failed to list the parts of an upload")?
        {
            let name = entry.file_name();
            let Some((number, etag)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            if let Ok(number) = number.parse::<u32>() {
                parts.push((number, etag.to_owned(), entry.path()));
            }
        }
        Ok(Some(parts))
    }
}

#[async_trait::async_trait]
impl MultipartStore for LocalStorage {
    async fn create(&self, _key: &str, _content_type: &str) -> anyhow::Result<String> {
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        tokio::fs::create_dir_all(self.upload_dir(&upload_id))
            .await
            .context("Failed to create a multipart upload's directory")?;
        Ok(upload_id)
    }

    async fn presign_part(
        &self,
        _key: &str,
        upload_id: &str,
        number: u32,
        length: u64,
        ttl: Duration,
        ctx: &UrlContext,
    ) -> anyhow::Result<PresignedRequest> {
        let headers = BTreeMap::from([("content-length".to_owned(), length.to_string())]);
        self.presign_upload(
            &format!("{PARTS_PATH}/{upload_id}/{number}"),
            &signed_part_key(upload_id, number),
            headers,
            length,
            ttl,
            ctx,
        )
    }

    async fn list_parts(
        &self,
        _key: &str,
        upload_id: &str,
    ) -> anyhow::Result<Option<Vec<StoredPart>>> {
        let Some(files) = self.stored_parts(upload_id).await? else {
            return Ok(None);
        };
        // Two versions of a part only while a retry replaces one: the newer counts.
        let mut newest: BTreeMap<u32, (std::time::SystemTime, StoredPart)> = BTreeMap::new();
        for (number, etag, path) in files {
            let Ok(meta) = tokio::fs::metadata(&path).await else {
                continue;
            };
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            let part = StoredPart {
                number,
                size: meta.len(),
                etag,
            };
            if newest.get(&number).is_none_or(|(t, _)| *t <= modified) {
                newest.insert(number, (modified, part));
            }
        }
        Ok(Some(newest.into_values().map(|(_, p)| p).collect()))
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Option<[u8; 32]>> {
        let temp = self.temp_path();
        let result = join(self, &temp, upload_id, parts).await;
        let digest = match result {
            Ok(digest) => digest,
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        let target = self.path_of(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .context("Failed to create an attachment directory")?;
        }
        if let Err(err) = tokio::fs::rename(&temp, &target).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err).context("Failed to store a joined upload");
        }
        let _ = tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await;
        Ok(Some(digest))
    }

    async fn abort(&self, _key: &str, upload_id: &str) -> anyhow::Result<()> {
        if !is_upload_id(upload_id) {
            return Ok(());
        }
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).context("Failed to remove a multipart upload's parts"),
        }
    }

    async fn sha256_of(&self, key: &str) -> anyhow::Result<[u8; 32]> {
        let mut file = tokio::fs::File::open(self.path_of(key))
            .await
            .context("Failed to open an attachment")?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; COPY_CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .context("Failed to read an attachment")?;
            if n == 0 {
                return Ok(hasher.finalize().into());
            }
            hasher.update(&buf[..n]);
        }
    }

    async fn list_uploads(
        &self,
        _prefix: &str,
        older_than: Duration,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut entries = match tokio::fs::read_dir(self.parts_root()).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).context("Failed to list multipart uploads"),
        };
        let mut old = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .context("Failed to list multipart uploads")?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > older_than);
            if stale && is_upload_id(&name) {
                old.push((String::new(), name));
            }
        }
        Ok(old)
    }
}

/// Writes the parts one after another into `temp`, hashing on the way;
/// one buffer of memory whatever the size.
async fn join(
    local: &LocalStorage,
    temp: &std::path::Path,
    upload_id: &str,
    parts: &[StoredPart],
) -> anyhow::Result<[u8; 32]> {
    if let Some(dir) = temp.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .context("Failed to create the temporary upload directory")?;
    }
    let mut out = tokio::fs::File::create(temp)
        .await
        .context("Failed to create a temporary upload file")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_CHUNK];
    for part in parts {
        let mut file = tokio::fs::File::open(local.part_path(upload_id, part.number, &part.etag))
            .await
            .context("Failed to open a part")?;
        loop {
            let n = file.read(&mut buf).await.context("Failed to read a part")?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .await
                .context("Failed to write a joined upload")?;
        }
    }
    out.sync_all()
        .await
        .context("Failed to flush a joined upload")?;
    Ok(hasher.finalize().into())
}
