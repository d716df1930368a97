//! Periodic removal of uploads that never completed.
//!
//! Safe with several replicas: each batch locks its rows with
//! `FOR UPDATE SKIP LOCKED`, so replicas split the work instead of racing,
//! and a concurrent `complete` waits for the batch and then finds no row.

use anyhow::anyhow;

use super::state::Attachments;
use crate::db::DbFailure;
use crate::store::attachment_records::Session;

const BATCH: i64 = 100;

/// Starts the sweep on `attachments.cleanup.interval` (off when zero).
pub fn spawn(attachments: Attachments) {
    let interval = attachments.settings.cleanup.interval;
    if interval.is_zero() {
        return;
    }
    // First sweep one interval after start, not during start-up.
    crate::sweep::every(
        interval,
        interval,
        "stale pending attachment uploads",
        move || {
            let attachments = attachments.clone();
            async move { attachments.remove_stale_uploads().await }
        },
    );
}

impl Attachments {
    /// Removes uploads that stayed `pending` longer than
    /// `attachments.cleanup.pending_max_age`; returns how many.
    pub async fn remove_stale_uploads(&self) -> anyhow::Result<u64> {
        let max_age = self.settings.cleanup.pending_max_age.as_secs_f64();
        if let Some(local) = &self.local {
            let temp = local
                .remove_stale_temp_files(self.settings.cleanup.pending_max_age)
                .await?;
            if temp > 0 {
                tracing::info!(removed = temp, "removed stale temporary upload files");
            }
        }
        let multipart = self.remove_stale_multipart().await?;
        if multipart > 0 {
            tracing::info!(removed = multipart, "aborted abandoned multipart uploads");
        }
        let mut removed = 0;
        loop {
            let mut tx = Session::begin(&self.db)
                .await
                .map_err(failed("Failed to start the attachment cleanup"))?;
            let stale = tx
                .lock_stale_uploads(max_age, BATCH)
                .await
                .map_err(failed("Failed to select stale attachment uploads"))?;
            let mut gone = Vec::with_capacity(stale.len());
            let mut storage_failed = false;
            for upload in &stale {
                match self.storage.delete(&upload.object_key).await {
                    Ok(()) => gone.push(upload.object_key.clone()),
                    Err(err) => {
                        storage_failed = true;
                        tracing::warn!(attachment_id = %upload.id, error = ?err, "could not delete a stale upload");
                    }
                }
            }
            tx.remove_pending(&gone)
                .await
                .map_err(failed("Failed to delete stale attachment rows"))?;
            tx.commit()
                .await
                .map_err(failed("Failed to commit the attachment cleanup"))?;
            removed += gone.len() as u64;
            // Stop on a short batch, or when storage fails (retry next tick
            // rather than spin on the same rows).
            if (stale.len() as i64) < BATCH || storage_failed {
                return Ok(removed);
            }
        }
    }
}

/// A failed step of the sweep as an error to log, saying which step.
fn failed(step: &'static str) -> impl FnOnce(DbFailure) -> anyhow::Error {
    move |failure| match failure {
        DbFailure::Fatal(cause) => cause.context(step),
        other => anyhow!("{other:?}").context(step),
    }
}
