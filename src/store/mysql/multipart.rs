//! `multipart_uploads` on MySQL (see `store::multipart`). Statements that
//! must answer with a row run in a transaction (a savepoint inside the
//! caller's) and read it back: MySQL has no `RETURNING`.

use sqlx::{Connection, MySqlConnection};

use super::attachments::{micros, placeholders};
use crate::db::{DbFailure, Own};
use crate::store::multipart::{Row, Upload};

/// `store::multipart::COLUMNS`, binary ones read as text.
const COLUMNS: &str = "CAST(owner_id AS CHAR), CAST(id AS CHAR), CAST(upload_id AS CHAR), \
                       CAST(object_key AS CHAR), size, part_size, part_count";

fn table(own: &Own) -> String {
    format!("`{}`.`multipart_uploads`", own.name())
}

/// Records `upload` as the attachment's upload in progress, replacing the
/// one before (returned, so its storage can be aborted).
pub async fn replace(
    conn: &mut MySqlConnection,
    own: &Own,
    upload: &Upload,
) -> Result<Option<Upload>, DbFailure> {
    let mut tx = conn.begin().await?;
    let previous: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t} WHERE owner_id = ? AND id = ? FOR UPDATE",
        t = table(own)
    ))
    .bind(&upload.owner_id)
    .bind(&upload.id)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM {t} WHERE owner_id = ? AND id = ?",
        t = table(own)
    ))
    .bind(&upload.owner_id)
    .bind(&upload.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO {t} (owner_id, id, upload_id, object_key, size, part_size, part_count) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        t = table(own)
    ))
    .bind(&upload.owner_id)
    .bind(&upload.id)
    .bind(&upload.upload_id)
    .bind(&upload.object_key)
    .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
    .bind(i64::try_from(upload.part_size).unwrap_or(i64::MAX))
    .bind(i32::try_from(upload.part_count).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(previous.map(Upload::from))
}

/// `owner`'s upload in progress for attachment `id`, marked as active now
/// (and locked until the transaction, if any, ends).
pub async fn touch(
    conn: &mut MySqlConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<Option<Upload>, DbFailure> {
    let mut tx = conn.begin().await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t} WHERE owner_id = ? AND id = ? FOR UPDATE",
        t = table(own)
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if row.is_some() {
        sqlx::query(&format!(
            "UPDATE {t} SET updated_at = CURRENT_TIMESTAMP(6) WHERE owner_id = ? AND id = ?",
            t = table(own)
        ))
        .bind(owner)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // The attachment's record counts as active too: the cleanup of
        // stale pending attachments must not take an upload going on.
        sqlx::query(&format!(
            "UPDATE {attachments} SET updated_at = CURRENT_TIMESTAMP(6) \
             WHERE owner_id = ? AND id = ? AND state = 'pending'",
            attachments = own.attachments
        ))
        .bind(owner)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(row.map(Upload::from))
}

/// Whether the upload `upload_id` is still in progress, share-locked until
/// the transaction (if any) ends.
pub async fn lock_open(
    conn: &mut MySqlConnection,
    own: &Own,
    upload_id: &str,
) -> Result<Option<Upload>, DbFailure> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t} WHERE upload_id = ? LOCK IN SHARE MODE",
        t = table(own)
    ))
    .bind(upload_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Upload::from))
}

/// Removes the record of `upload_id`; whether there was one.
pub async fn remove(
    conn: &mut MySqlConnection,
    own: &Own,
    upload_id: &str,
) -> Result<bool, DbFailure> {
    let done = sqlx::query(&format!(
        "DELETE FROM {t} WHERE upload_id = ?",
        t = table(own)
    ))
    .bind(upload_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Up to `limit` uploads nobody touched for `max_age_secs`, locked with
/// `SKIP LOCKED` so replicas split the sweep.
pub async fn lock_stale(
    conn: &mut MySqlConnection,
    own: &Own,
    max_age_secs: f64,
    limit: i64,
) -> Result<Vec<Upload>, DbFailure> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t} \
         WHERE updated_at < CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND \
         ORDER BY updated_at LIMIT ? FOR UPDATE SKIP LOCKED",
        t = table(own)
    ))
    .bind(micros(max_age_secs))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Upload::from).collect())
}

/// Which of `upload_ids` have a record (the rest are storage's orphans).
pub async fn known(
    conn: &mut MySqlConnection,
    own: &Own,
    upload_ids: &[String],
) -> Result<Vec<String>, DbFailure> {
    if upload_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT CAST(upload_id AS CHAR) FROM {t} WHERE upload_id IN ({})",
        placeholders(upload_ids.len()),
        t = table(own)
    );
    let mut statement = sqlx::query_scalar(&sql);
    for id in upload_ids {
        statement = statement.bind(id);
    }
    Ok(statement.fetch_all(conn).await?)
}
