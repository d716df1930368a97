//! Periodic removal of uploads that never completed.
//!
//! Safe with several replicas: each batch locks its rows with
//! `FOR UPDATE SKIP LOCKED`, so replicas split the work instead of racing,
//! and a concurrent `complete` waits for the batch and then finds no row.

use anyhow::Context;

use super::Attachments;

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
            async move { remove_stale_uploads(&attachments).await }
        },
    );
}

pub async fn remove_stale_uploads(attachments: &Attachments) -> anyhow::Result<u64> {
    let max_age = attachments.settings.cleanup.pending_max_age.as_secs_f64();
    if let Some(local) = &attachments.local {
        let temp = local
            .remove_stale_temp_files(attachments.settings.cleanup.pending_max_age)
            .await?;
        if temp > 0 {
            tracing::info!(removed = temp, "removed stale temporary upload files");
        }
    }
    let mut removed = 0;
    loop {
        let mut tx = attachments
            .db
            .begin()
            .await
            .context("Failed to start the attachment cleanup")?;
        let stale: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, object_key FROM attachments
             WHERE state = 'pending' AND updated_at < now() - make_interval(secs => $1)
             ORDER BY updated_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(max_age)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to select stale attachment uploads")?;
        let mut gone = Vec::with_capacity(stale.len());
        let mut failed = false;
        for (id, key) in &stale {
            match attachments.storage.delete(key).await {
                Ok(()) => gone.push(id.clone()),
                Err(err) => {
                    failed = true;
                    tracing::warn!(attachment_id = %id, error = ?err, "could not delete a stale upload");
                }
            }
        }
        sqlx::query("DELETE FROM attachments WHERE id = ANY($1) AND state = 'pending'")
            .bind(&gone)
            .execute(&mut *tx)
            .await
            .context("Failed to delete stale attachment rows")?;
        tx.commit()
            .await
            .context("Failed to commit the attachment cleanup")?;
        removed += gone.len() as u64;
        // Stop on a short batch, or when storage fails (retry next tick
        // rather than spin on the same rows).
        if (stale.len() as i64) < BATCH || failed {
            return Ok(removed);
        }
    }
}
