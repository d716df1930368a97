//! `attachments` on MySQL (see `store::attachments`): the same state
//! machine (pending → uploaded → deleted tombstone), keyed per owner. MySQL
//! has no `RETURNING`: a statement that must answer with the row runs in a
//! transaction (a savepoint inside the caller's) and reads it back.

use sqlx::{Connection, MySqlConnection};

use crate::db::{DbFailure, Own};
use crate::store::attachments::{NewUpload, Record, Row, StaleUpload, State, is_insert_race};

/// `store::attachments::COLUMNS`, read as text (the driver takes binary
/// and `_bin` columns for bytes).
const COLUMNS: &str = "CAST(id AS CHAR), CAST(owner_id AS CHAR), CAST(object_key AS CHAR), \
                       CAST(content_type AS CHAR), size, CAST(sha256 AS CHAR), CAST(state AS CHAR)";

/// Records a pending upload, or refreshes the owner's existing one (the
/// attachment queue retries).
pub async fn upsert_pending(
    conn: &mut MySqlConnection,
    own: &Own,
    new: NewUpload<'_>,
) -> Result<Record, DbFailure> {
    let mut attempt = 1;
    loop {
        match try_upsert_pending(conn, own, &new).await {
            Ok(record) => return Ok(record),
            // Two first requests for one id racing: the loser's insert
            // trips over the winner's key; run again, now updating.
            Err(failure) if attempt < 3 && is_insert_race(&failure) => attempt += 1,
            Err(failure) => return Err(failure),
        }
    }
}

/// An update of the owner's row, else an insert. Not `ON DUPLICATE KEY
/// UPDATE`: that also fires on the object key, another unique key, and
/// would then rewrite whichever row holds it.
async fn try_upsert_pending(
    conn: &mut MySqlConnection,
    own: &Own,
    new: &NewUpload<'_>,
) -> Result<Record, DbFailure> {
    let mut tx = conn.begin().await?;
    let existing: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM {attachments} WHERE owner_id = ? AND id = ? FOR UPDATE",
        attachments = own.attachments
    ))
    .bind(new.owner_id)
    .bind(new.id)
    .fetch_optional(&mut *tx)
    .await?;
    if existing.is_some() {
        sqlx::query(&format!(
            "UPDATE {attachments} SET filename = ?, content_type = ?, size = ?, sha256 = ?, \
             state = 'pending', uploaded_at = NULL, deleted_at = NULL, \
             updated_at = CURRENT_TIMESTAMP(6) \
             WHERE owner_id = ? AND id = ?",
            attachments = own.attachments
        ))
        .bind(new.filename)
        .bind(new.content_type)
        .bind(new.size)
        .bind(new.sha256_hex.as_deref())
        .bind(new.owner_id)
        .bind(new.id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(&format!(
            "INSERT INTO {attachments} \
             (id, owner_id, object_key, filename, content_type, size, sha256, state) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
            attachments = own.attachments
        ))
        .bind(new.id)
        .bind(new.owner_id)
        .bind(new.object_key)
        .bind(new.filename)
        .bind(new.content_type)
        .bind(new.size)
        .bind(new.sha256_hex.as_deref())
        .execute(&mut *tx)
        .await?;
    }
    let record = read(&mut tx, own, new.owner_id, new.id, "").await?;
    tx.commit().await?;
    record
        .ok_or_else(|| DbFailure::Fatal(anyhow::anyhow!("the attachment row just written is gone")))
}

/// `owner`'s attachment `id`, with `lock` appended (`FOR UPDATE` or nothing).
async fn read(
    conn: &mut MySqlConnection,
    own: &Own,
    owner: &str,
    id: &str,
    lock: &str,
) -> Result<Option<Record>, DbFailure> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {attachments} WHERE owner_id = ? AND id = ? {lock}",
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Record::from))
}

/// `owner`'s attachment `id`, locked until the transaction (if any) ends.
pub async fn find_for_update(
    conn: &mut MySqlConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<Option<Record>, DbFailure> {
    read(conn, own, owner, id, "FOR UPDATE").await
}

/// Whether the upload stored under `object_key` still accepts its bytes,
/// share-locking the row until the transaction (if any) ends.
pub async fn lock_open_upload(
    conn: &mut MySqlConnection,
    own: &Own,
    object_key: &str,
) -> Result<bool, DbFailure> {
    let state: Option<String> = sqlx::query_scalar(&format!(
        "SELECT CAST(state AS CHAR) FROM {attachments} WHERE object_key = ? LOCK IN SHARE MODE",
        attachments = own.attachments
    ))
    .bind(object_key)
    .fetch_optional(conn)
    .await?;
    Ok(state.as_deref().map(State::parse) == Some(State::Pending))
}

/// Every user's attachment with this id that is not deleted, oldest first.
pub async fn find_by_id(
    conn: &mut MySqlConnection,
    own: &Own,
    id: &str,
) -> Result<Vec<Record>, DbFailure> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {attachments} WHERE id = ? AND state <> 'deleted' \
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
    conn: &mut MySqlConnection,
    own: &Own,
    owner: &str,
    id: &str,
    size: i64,
) -> Result<Option<Record>, DbFailure> {
    let mut tx = conn.begin().await?;
    let live = find_for_update(&mut tx, own, owner, id)
        .await?
        .filter(|record| record.state != State::Deleted);
    if live.is_none() {
        return Ok(None);
    }
    sqlx::query(&format!(
        "UPDATE {attachments} SET state = 'uploaded', size = ?, \
         uploaded_at = CURRENT_TIMESTAMP(6), updated_at = CURRENT_TIMESTAMP(6) \
         WHERE owner_id = ? AND id = ?",
        attachments = own.attachments
    ))
    .bind(size)
    .bind(owner)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let record = read(&mut tx, own, owner, id, "").await?;
    tx.commit().await?;
    Ok(record)
}

/// Keeps the row as a tombstone.
pub async fn mark_deleted(
    conn: &mut MySqlConnection,
    own: &Own,
    owner: &str,
    id: &str,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {attachments} SET state = 'deleted', deleted_at = CURRENT_TIMESTAMP(6), \
         updated_at = CURRENT_TIMESTAMP(6) WHERE owner_id = ? AND id = ?",
        attachments = own.attachments
    ))
    .bind(owner)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `attachments.read_sql`, a MySQL query whose three `?`s (checked at
/// start-up) are bound in order to the user id, the attachment id and the
/// attachment's owner. NULL and 0 refuse.
pub async fn sql_allows_read(
    conn: &mut MySqlConnection,
    read_sql: &str,
    user_id: &str,
    record: &Record,
) -> Result<bool, DbFailure> {
    let allowed: i64 = sqlx::query_scalar(&format!(
        "SELECT CAST(COALESCE(({}), 0) <> 0 AS SIGNED)",
        read_sql.trim().trim_end_matches(';')
    ))
    .bind(user_id)
    .bind(&record.id)
    .bind(&record.owner_id)
    .fetch_one(conn)
    .await?;
    Ok(allowed != 0)
}

/// Up to `limit` uploads pending for longer than `max_age_secs`, oldest
/// first, locked with `SKIP LOCKED` (MySQL 8, MariaDB 10.6+): replicas
/// split the work.
pub async fn lock_stale_uploads(
    conn: &mut MySqlConnection,
    own: &Own,
    max_age_secs: f64,
    limit: i64,
) -> Result<Vec<StaleUpload>, DbFailure> {
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT CAST(id AS CHAR), CAST(object_key AS CHAR) FROM {attachments} \
         WHERE state = 'pending' AND updated_at < CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND \
         ORDER BY updated_at LIMIT ? FOR UPDATE SKIP LOCKED",
        attachments = own.attachments
    ))
    .bind(micros(max_age_secs))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, object_key)| StaleUpload { id, object_key })
        .collect())
}

/// Seconds as whole microseconds, for `INTERVAL ? MICROSECOND`.
pub(super) fn micros(secs: f64) -> i64 {
    (secs * 1_000_000.0) as i64
}

/// `?, ?, …` for `n` values (at least one: `IN ()` is a syntax error).
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// Removes the rows of these uploads (by object key) that are still pending.
/// One key at a time, on its unique index: a single `IN (…)` statement may
/// be planned over the `state` index instead, and would then wait for the
/// rows another replica's sweep holds while it waits for ours (a deadlock).
pub async fn remove_pending(
    conn: &mut MySqlConnection,
    own: &Own,
    object_keys: &[String],
) -> Result<(), DbFailure> {
    let sql = format!(
        "DELETE FROM {attachments} WHERE object_key = ? AND state = 'pending'",
        attachments = own.attachments
    );
    for key in object_keys {
        sqlx::query(&sql).bind(key).execute(&mut *conn).await?;
    }
    Ok(())
}
