//! Abandoned multipart uploads: ones nobody touched for
//! `attachments.cleanup.pending_max_age` are aborted with their record, and
//! uploads storage holds without a record (a crash between the two steps
//! of start or abort) once they are as old.

use crate::attachments::state::Attachments;
use crate::db::DbFailure;
use crate::store::attachment_records::Session;

const BATCH: i64 = 100;

fn failed(step: &'static str) -> impl FnOnce(DbFailure) -> anyhow::Error {
    move |failure| match failure {
        DbFailure::Fatal(cause) => cause.context(step),
        other => anyhow::anyhow!("{other:?}").context(step),
    }
}

impl Attachments {
    /// Aborts abandoned multipart uploads; returns how many.
    pub(crate) async fn remove_stale_multipart(&self) -> anyhow::Result<u64> {
        let max_age = self.settings.cleanup.pending_max_age;
        let mut removed = 0;
        loop {
            let mut tx = Session::begin(&self.db)
                .await
                .map_err(failed("Failed to start the multipart cleanup"))?;
            let stale = tx
                .lock_stale_multipart(max_age.as_secs_f64(), BATCH)
                .await
                .map_err(failed("Failed to select stale multipart uploads"))?;
            let mut storage_failed = false;
            for upload in &stale {
                match self
                    .multipart
                    .abort(&upload.object_key, &upload.upload_id)
                    .await
                {
                    Ok(()) => {
                        tx.remove_multipart(&upload.upload_id)
                            .await
                            .map_err(failed("Failed to delete a stale multipart upload"))?;
                        removed += 1;
                    }
                    Err(err) => {
                        storage_failed = true;
                        tracing::warn!(attachment_id = %upload.id, error = ?err, "could not abort a stale multipart upload");
                    }
                }
            }
            tx.commit()
                .await
                .map_err(failed("Failed to commit the multipart cleanup"))?;
            if (stale.len() as i64) < BATCH || storage_failed {
                break;
            }
        }
        // A store that cannot list uploads (some S3-compatible ones) leaves
        // orphans to a bucket lifecycle rule (docs/operations.md).
        let held = match self
            .multipart
            .list_uploads(&self.settings.key_prefix, max_age)
            .await
        {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(error = ?err, "could not list multipart uploads in storage");
                Vec::new()
            }
        };
        if !held.is_empty() {
            let ids: Vec<String> = held.iter().map(|(_, id)| id.clone()).collect();
            let mut session = Session::pooled(&self.db)
                .await
                .map_err(failed("Failed to look up multipart uploads"))?;
            let known = session
                .known_multipart(&ids)
                .await
                .map_err(failed("Failed to look up multipart uploads"))?;
            drop(session);
            for (key, upload_id) in held.iter().filter(|(_, id)| !known.contains(id)) {
                self.multipart.abort(key, upload_id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
