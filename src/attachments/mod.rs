//! Attachments: signed upload/download URLs on S3-compatible storage, or on
//! a local directory served by uplink itself.
//!
//! Devices ask for an upload URL, send the bytes straight to storage with the
//! returned headers, then call `complete`; downloads get a short-lived URL.
//! The `attachments` table records which object belongs to whom and whether
//! its upload finished.

mod cleanup;
mod files;
pub mod key;
pub mod local;
mod records;
mod requests;
mod routes;
#[cfg(feature = "s3")]
pub mod s3;
mod serving;
mod settings;
pub mod storage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web;
use anyhow::Context;
use sqlx::PgPool;

pub use settings::{
    AttachmentSettings, CleanupSettings, LocalSettings, MAX_URL_TTL, ReadPolicy, S3Settings,
    StorageKind,
};

use crate::config::{Secret, Settings};
use local::LocalStorage;
use storage::Storage;

/// File under `server.data_dir` holding the generated development HMAC secret.
const GENERATED_SECRET_FILE: &str = "attachments-hmac-secret";

/// Shared attachment state: settings, the storage backend, the pool.
#[derive(Clone)]
pub struct Attachments {
    settings: Arc<AttachmentSettings>,
    storage: Arc<dyn Storage>,
    /// Set when the backend is `local`, for the routes that serve its files.
    local: Option<Arc<LocalStorage>>,
    /// `limits.trust_forwarded_for`: whether `Forwarded` / `X-Forwarded-Host`
    /// / `X-Forwarded-Proto` may name the host in local URLs.
    trust_forwarded: bool,
    db: PgPool,
}

impl Attachments {
    /// Builds the backend and starts the periodic cleanup of stale uploads.
    pub async fn build(settings: &Settings, db: &PgPool) -> anyhow::Result<Self> {
        let attachments = Self::new(settings, db).await?;
        cleanup::spawn(attachments.clone());
        Ok(attachments)
    }

    /// Builds the backend without starting background work.
    pub async fn new(settings: &Settings, db: &PgPool) -> anyhow::Result<Self> {
        let config = &settings.attachments;
        let (storage, local): (Arc<dyn Storage>, _) = match config.storage {
            StorageKind::Local => {
                let root = config
                    .local
                    .dir
                    .clone()
                    .unwrap_or_else(|| settings.server.data_dir.join("attachments"));
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
                    None => generated_secret(&settings.server.data_dir).await?,
                };
                let local = Arc::new(LocalStorage::new(
                    root,
                    secret,
                    config.local.public_url.clone(),
                ));
                (local.clone(), Some(local))
            }
            #[cfg(feature = "s3")]
            StorageKind::S3 => (Arc::new(s3::S3Storage::build(&config.s3).await?), None),
            #[cfg(not(feature = "s3"))]
            StorageKind::S3 => anyhow::bail!(
                "storage.backend is `s3`, but this uplink was built without S3 support (the `s3` feature)"
            ),
        };
        tracing::info!(storage = storage.name(), "attachments storage ready");
        Ok(Self {
            settings: Arc::new(config.clone()),
            storage,
            local,
            trust_forwarded: settings.limits.trust_forwarded_for,
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

    /// Removes uploads that stayed `pending` longer than
    /// `attachments.cleanup.pending_max_age`; returns how many.
    pub async fn remove_stale_uploads(&self) -> anyhow::Result<u64> {
        cleanup::remove_stale_uploads(self).await
    }
}

/// Reads the development HMAC secret, creating it on first use so restarts
/// keep issued URLs valid.
async fn generated_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    let path: PathBuf = data_dir.join(GENERATED_SECRET_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(Secret::new(secret.trim())),
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 characters; delete it to generate a new one",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("Failed to read {}", path.display()));
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("Failed to generate an HMAC secret")?;
    let secret = hex::encode(bytes);
    tokio::fs::create_dir_all(data_dir)
        .await
        .with_context(|| format!("Failed to create {}", data_dir.display()))?;
    write_private(&path, &secret)
        .await
        .with_context(|| format!("Failed to write {}", path.display()))?;
    tracing::warn!(
        file = %path.display(),
        "generated a development HMAC secret for local attachments; set attachments.local.hmac_secret in production"
    );
    // Another process may have won the race to create it: use what is on disk.
    let stored = tokio::fs::read_to_string(&path).await?;
    Ok(Secret::new(stored.trim()))
}

async fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(mut file) => {
            file.write_all(contents.as_bytes()).await?;
            file.sync_all().await
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
    files::configure(cfg);
}
