//! The `attachments` table: one row per (owner, attachment id), recording
//! which object belongs to whom and whether its upload finished. Ids are
//! scoped per owner: one user's id never names another user's file, so
//! nobody can claim an id first that another user's row names.
//!
//! Plain values in, `DbFailure` out: the attachment routes decide what a
//! failure means for the client. The MySQL twin is
//! `store::mysql::attachments`; `store::attachment_records` picks one.

use sqlx::PgConnection;

use crate::db::{DbFailure, Own};
use crate::error::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Uploaded,
    Deleted,
}

impl State {
    pub(crate) fn parse(raw: &str) -> Self {
        match raw {
            "uploaded" => Self::Uploaded,
            "deleted" => Self::Deleted,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub owner_id: String,
    pub object_key: String,
    pub content_type: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub state: State,
}

pub(crate) type Row = (
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    String,
);

const COLUMNS: &str = "id, owner_id, object_key, content_type, size, sha256, state";

impl From<Row> for Record {
    fn from(row: Row) -> Self {
        let (id, owner_id, object_key, content_type, size, sha256, state) = row;
        Self {
            id,
            owner_id,
            object_key,
            content_type,
            size: size.and_then(|s| u64::try_from(s).ok()),
            sha256,
            state: State::parse(&state),
        }
    }
}

pub struct NewUpload<'a> {
    pub id: &'a str,
    pub owner_id: &'a str,
    pub object_key: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: Option<i64>,
    pub sha256_hex: Option<String>,
}

/// Records a pending upload, or refreshes the owner's existing one (the
/// attachment queue retries).
pub async fn upsert_pending(
    conn: &mut PgConnection,
    own: &Own,
    new: NewUpload<'_>,
) -> Result<Record, DbFailure> {
    let mut attempt = 1;
    loop {
        let result: Result<Row, sqlx::Error> = sqlx::query_as(&format!(
            "INSERT INTO {attachments} (id, owner_id, object_key, filename, content_type, size, sha256, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')
             ON CONFLICT (owner_id, id) DO UPDATE SET
                 filename = EXCLUDED.filename,
                 content_type = EXCLUDED.content_type,
                 size = EXCLUDED.size,
                 sha256 = EXCLUDED.sha256,
                 state = 'pending',
                 uploaded_at = NULL,
                 deleted_at = NULL,
                 updated_at = now()
             RETURNING {COLUMNS}"
        , attachments = own.attachments))
        .bind(new.id)
        .bind(new.owner_id)
        .bind(new.object_key)
        .bind(new.filename)
        .bind(new.content_type)
        .bind(new.size)
        .bind(new.sha256_hex.as_deref())
        .fetch_one(&mut *conn)
        .await;
        match result.map_err(DbFailure::from) {
            Ok(row) => return Ok(Record::from(row)),
            // Two first requests for one id racing: the loser can trip over
            // the winner's object_key (not the ON CONFLICT target) or a
            // deadlock; run again, now on the conflict path.
            Err(failure) if attempt < 3 && is_insert_race(&failure) => attempt += 1,
            Err(failure) => return Err(failure),
        }
    }
}

pub(crate) fn is_insert_race(failure: &DbFailure) -> bool {
    match failure {
        DbFailure::Conflict(_) => true,
        DbFailure::Refused(refusal) => refusal.code == ErrorCode::UniqueViolation,
        _ => false,
    }
}

/// `owner`'s attachment `id`, locked until the transaction (if any) ends.
pub async fn find_for_update(
    conn: &mut PgConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<Option<Record>, DbFailure> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {attachments} WHERE owner_id = $1 AND id = $2 FOR UPDATE",
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Record::from))
}

/// Whether the upload stored under `object_key` still accepts its bytes
/// (`pending`). Inside a transaction the row stays share-locked until it
/// ends, so the object can be put in place before `complete` or `delete`
/// looks at it, never after.
pub async fn lock_open_upload(
    conn: &mut PgConnection,
    own: &Own,
    object_key: &str,
) -> Result<bool, DbFailure> {
    let state: Option<String> = sqlx::query_scalar(&format!(
        "SELECT state FROM {attachments} WHERE object_key = $1 FOR SHARE",
        attachments = own.attachments
    ))
    .bind(object_key)
    .fetch_optional(conn)
    .await?;
    Ok(state.as_deref().map(State::parse) == Some(State::Pending))
}

/// Every user's attachment with this id that is not deleted, oldest first
/// (a download picks among them by owner and read policy).
pub async fn find_by_id(
    conn: &mut PgConnection,
    own: &Own,
    id: &str,
) -> Result<Vec<Record>, DbFailure> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {attachments} WHERE id = $1 AND state <> 'deleted' \
         ORDER BY created_at, owner_id",
        attachments = own.attachments
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Record::from).collect())
}

/// Marks a (not deleted) attachment uploaded; `None` when it was deleted
/// meanwhile (possible only outside a locked `Decision`).
pub async fn mark_uploaded(
    conn: &mut PgConnection,
    own: &Own,
    owner: &str,
    id: &str,
    size: i64,
) -> Result<Option<Record>, DbFailure> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "UPDATE {attachments}
         SET state = 'uploaded', size = $3, uploaded_at = now(), updated_at = now()
         WHERE owner_id = $1 AND id = $2 AND state <> 'deleted'
         RETURNING {COLUMNS}",
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .bind(size)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Record::from))
}

/// Keeps the row as a tombstone: downloads of the id answer 404, and a
/// replayed upload URL finds no pending upload.
pub async fn mark_deleted(
    conn: &mut PgConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {attachments}
         SET state = 'deleted', deleted_at = now(), updated_at = now()
         WHERE owner_id = $1 AND id = $2",
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `attachments.read_sql` with `$1` = user id, `$2` = attachment id and
/// `$3` = the attachment's owner. Wrapped so that a query leaving one out
/// still gets all three typed.
pub async fn sql_allows_read(
    conn: &mut PgConnection,
    read_sql: &str,
    user_id: &str,
    record: &Record,
) -> Result<bool, DbFailure> {
    let query = format!(
        "SELECT COALESCE(({})::boolean, false) \
         FROM (SELECT $1::text, $2::text, $3::text) AS uplink_params",
        read_sql.trim().trim_end_matches(';')
    );
    let allowed: bool = sqlx::query_scalar(&query)
        .bind(user_id)
        .bind(&record.id)
        .bind(&record.owner_id)
        .fetch_one(conn)
        .await?;
    Ok(allowed)
}

/// A pending upload the cleanup removes.
pub struct StaleUpload {
    pub id: String,
    pub object_key: String,
}

/// Up to `limit` uploads pending for longer than `max_age_secs`, oldest
/// first, locked with `SKIP LOCKED`: several replicas split the work
/// instead of racing, and a concurrent `complete` waits for the batch.
pub async fn lock_stale_uploads(
    conn: &mut PgConnection,
    own: &Own,
    max_age_secs: f64,
    limit: i64,
) -> Result<Vec<StaleUpload>, DbFailure> {
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT id, object_key FROM {attachments}
         WHERE state = 'pending' AND updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
        attachments = own.attachments
    ))
    .bind(max_age_secs)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, object_key)| StaleUpload { id, object_key })
        .collect())
}

/// Removes the rows of these uploads (by object key) that are still pending.
pub async fn remove_pending(
    conn: &mut PgConnection,
    own: &Own,
    object_keys: &[String],
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "DELETE FROM {attachments} WHERE object_key = ANY($1) AND state = 'pending'",
        attachments = own.attachments
    ))
    .bind(object_keys)
    .execute(conn)
    .await?;
    Ok(())
}
