//! Attachments: signed upload/download URLs on S3-compatible storage, or on
//! a local directory served by uplink itself.
//!
//! Devices ask for an upload URL, send the bytes straight to storage with the
//! returned headers, then call `complete`; downloads get a short-lived URL.
//! The `attachments` table records which object belongs to whom and whether
//! its upload finished.

mod cleanup;
mod dev_secret;
pub(crate) mod files;
pub mod key;
pub mod local;
pub(crate) mod multipart;
mod requests;
pub(crate) mod routes;
#[cfg(feature = "s3")]
pub mod s3;
mod serving;
pub mod settings;
mod state;
pub mod storage;

use actix_web::web;

use crate::db::pool::Database;

pub use settings::{
    AttachmentSettings, CleanupSettings, LocalSettings, MAX_URL_TTL, ReadPolicy, S3Settings,
    StorageKind,
};
pub use state::Attachments;

// Here rather than in `state`: the cleanup works on an `Attachments`, so
// `state` cannot start it without a circle.
impl Attachments {
    /// Builds the backend and starts the periodic cleanup of stale uploads.
    pub async fn build(
        config: &AttachmentSettings,
        data_dir: &std::path::Path,
        trust_forwarded: bool,
        db: &Database,
    ) -> anyhow::Result<Self> {
        let attachments = Self::new(config, data_dir, trust_forwarded, db).await?;
        cleanup::spawn(attachments.clone());
        Ok(attachments)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
    multipart::routes::configure(cfg);
    files::configure(cfg);
    multipart::parts::configure(cfg);
}
