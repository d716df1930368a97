//! The `multipart_uploads` table: the multipart upload in progress for an
//! attachment, at most one per (owner, attachment id). The MySQL twin is
//! `store::mysql::multipart`.

use sqlx::PgConnection;

use crate::db::{DbFailure, Own};

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct Upload {
    pub owner_id: String,
    pub id: String,
    pub upload_id: String,
    pub object_key: String,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u32,
}

pub(crate) type Row = (String, String, String, String, i64, i64, i32);

const COLUMNS: &str = "owner_id, id, upload_id, object_key, size, part_size, part_count";

impl From<Row> for Upload {
    fn from(row: Row) -> Self {
        let (owner_id, id, upload_id, object_key, size, part_size, part_count) = row;
        // The table's checks keep these positive.
        Self {
            owner_id,
            id,
            upload_id,
            object_key,
            size: u64::try_from(size).unwrap_or(0),
            part_size: u64::try_from(part_size).unwrap_or(0),
            part_count: u32::try_from(part_count).unwrap_or(0),
        }
    }
}

/// The qualified table name (quoted for Postgres).
fn table(own: &Own) -> String {
    format!(r#""{}"."multipart_uploads""#, own.name())
}

/// Records `upload` as the attachment's upload in progress, replacing the
/// one before (returned, so its storage can be aborted).
pub async fn replace(
    conn: &mut PgConnection,
    own: &Own,
    upload: &Upload,
) -> Result<Option<Upload>, DbFailure> {
    let previous: Option<Row> = sqlx::query_as(&format!(
        "DELETE FROM {t} WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}",
        t = table(own)
    ))
    .bind(&upload.owner_id)
    .bind(&upload.id)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO {t} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        t = table(own)
    ))
    .bind(&upload.owner_id)
    .bind(&upload.id)
    .bind(&upload.upload_id)
    .bind(&upload.object_key)
    .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
    .bind(i64::try_from(upload.part_size).unwrap_or(i64::MAX))
    .bind(i32::try_from(upload.part_count).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(previous.map(Upload::from))
}

/// `owner`'s upload in progress for attachment `id`, marked as active now
/// (and locked until the transaction, if any, ends).
pub async fn touch(
    conn: &mut PgConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<Option<Upload>, DbFailure> {
    // The attachment's record counts as active too: the cleanup of stale
    // pending attachments must not take an upload that is going on.
    let row: Option<Row> = sqlx::query_as(&format!(
        "WITH touched AS (
             UPDATE {t} SET updated_at = now() WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}
         ), record AS (
             UPDATE {attachments} SET updated_at = now()
             WHERE owner_id = $1 AND id = $2 AND state = 'pending'
               AND EXISTS (SELECT 1 FROM touched)
         )
         SELECT {COLUMNS} FROM touched",
        t = table(own),
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Upload::from))
}

/// Whether the upload `upload_id` is still in progress. Inside a
/// transaction the row stays share-locked until it ends, so a part is put
/// in place before `complete` or `abort` looks, never after.
pub async fn lock_open(
    conn: &mut PgConnection,
    own: &Own,
    upload_id: &str,
) -> Result<Option<Upload>, DbFailure> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t} WHERE upload_id = $1 FOR SHARE",
        t = table(own)
    ))
    .bind(upload_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Upload::from))
}

/// Removes the record of `upload_id`; whether there was one.
pub async fn remove(
    conn: &mut PgConnection,
    own: &Own,
    upload_id: &str,
) -> Result<bool, DbFailure> {
    let done = sqlx::query(&format!(
        "DELETE FROM {t} WHERE upload_id = $1",
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
    conn: &mut PgConnection,
    own: &Own,
    max_age_secs: f64,
    limit: i64,
) -> Result<Vec<Upload>, DbFailure> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {t}
         WHERE updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
        t = table(own)
    ))
    .bind(max_age_secs)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Upload::from).collect())
}

/// Which of `upload_ids` have a record (the rest are storage's orphans).
pub async fn known(
    conn: &mut PgConnection,
    own: &Own,
    upload_ids: &[String],
) -> Result<Vec<String>, DbFailure> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT upload_id FROM {t} WHERE upload_id = ANY($1)",
        t = table(own)
    ))
    .bind(upload_ids)
    .fetch_all(conn)
    .await?)
}
