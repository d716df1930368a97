//! `Attachments`: the state the attachment routes share (settings, the
//! storage backend, the database), and building the backend.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::dev_secret;
use super::local::LocalStorage;
use super::multipart::MultipartStore;
#[cfg(feature = "s3")]
use super::s3::S3Storage;
use super::settings::{AttachmentSettings, StorageKind};
use super::storage::Storage;
use crate::db::pool::Database;

/// Shared attachment state: settings, the storage backend, the database.
#[derive(Clone)]
pub struct Attachments {
    pub(super) settings: Arc<AttachmentSettings>,
    pub(super) storage: Arc<dyn Storage>,
    /// The same backend, for multipart uploads.
    pub(super) multipart: Arc<dyn MultipartStore>,
    /// Set when the backend is `local`, for the routes that serve its files.
    pub(super) local: Option<Arc<LocalStorage>>,
    /// `limits.trust_forwarded_for`: whether `Forwarded` / `X-Forwarded-Host`
    /// / `X-Forwarded-Proto` may name the host in local URLs.
    pub(super) trust_forwarded: bool,
    /// The database holding uplink's attachment records.
    pub(super) db: Database,
}

impl Attachments {
    /// Builds the backend without starting background work.
    /// `data_dir` holds local files and the development secret;
    /// `trust_forwarded` is `limits.trust_forwarded_for`.
    pub async fn new(
        config: &AttachmentSettings,
        data_dir: &Path,
        trust_forwarded: bool,
        db: &Database,
    ) -> anyhow::Result<Self> {
        let (storage, multipart, local): (Arc<dyn Storage>, Arc<dyn MultipartStore>, _) =
            match config.storage {
                StorageKind::Local => {
                    let root = config
                        .local
                        .dir
                        .clone()
                        .unwrap_or_else(|| data_dir.join("attachments"));
                    tokio::fs::create_dir_all(root.join(".tmp"))
                    .await
                    .with_context(|| {
                        format!(
                            "Failed to create the attachments directory {} (attachments.local.dir)",
                            root.display()
                        )
                    })?;
                    let secret = match &config.local.hmac_secret {
                        Some(secret) => secret.clone(),
                        None => dev_secret::load_or_create(data_dir).await?,
                    };
                    let local = Arc::new(LocalStorage::new(
                        root,
                        secret,
                        config.local.public_url.clone(),
                    ));
                    (local.clone(), local.clone(), Some(local))
                }
                #[cfg(feature = "s3")]
                StorageKind::S3 => {
                    let s3 = Arc::new(S3Storage::build(&config.s3).await?);
                    (s3.clone(), s3, None)
                }
                #[cfg(not(feature = "s3"))]
                StorageKind::S3 => anyhow::bail!(
                    "attachments.storage is `s3`, but this uplink was built without S3 support (the `s3` feature)"
                ),
            };
        tracing::info!(storage = storage.name(), "attachments storage ready");
        Ok(Self {
            settings: Arc::new(config.clone()),
            storage,
            multipart,
            local,
            trust_forwarded,
            db: db.clone(),
        })
    }

    /// Whether the storage answers, for `/health/ready`.
    pub async fn check_storage(&self) -> anyhow::Result<()> {
        self.storage.check().await
    }

    pub fn storage_name(&self) -> &'static str {
        self.storage.name()
    }
}
