//! `dead_letters` on MySQL (see `store::dead_letters`): stored by the
//! write path, swept by retention, listed, shown, replayed and discarded by
//! operators. Ids are binary here (no PAD SPACE): read back as text.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{MySqlConnection, MySqlPool};

use crate::db::{DbFailure, Own};
use crate::store::dead_letters::{
    DeadLetter, DeadLetterList, NewDeadLetter, PendingUsage, ToReplay, cut_page, fill_entries,
};

/// Every column but the entries (see `store::dead_letters::SUMMARY`).
/// Text is read `CAST(… AS CHAR)`: the driver takes a `_bin` column for
/// bytes.
const SUMMARY: &str = "id, CAST(user_id AS CHAR) AS user_id, CAST(client_id AS CHAR) AS client_id, \
                       tx_id, CAST(code AS CHAR) AS code, CAST(`sqlstate` AS CHAR) AS `sqlstate`, \
                       CAST(constraint_name AS CHAR) AS constraint_name, \
                       CAST(column_name AS CHAR) AS column_name, CAST(message AS CHAR) AS message, \
                       failed_op_id, created_at, replayed_at, \
                       CAST(replay_outcome AS CHAR) AS replay_outcome, size_bytes, \
                       COALESCE(CAST(JSON_LENGTH(entries) AS SIGNED), 0) AS entry_count";

/// Serialises the callers that count and then insert one user's dead
/// letters, until the transaction ends: the user's lock row.
pub async fn lock_user(
    conn: &mut MySqlConnection,
    own: &Own,
    user_id: &str,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "INSERT INTO {dead_letter_users} (user_id) VALUES (?) \
         ON DUPLICATE KEY UPDATE user_id = user_id",
        dead_letter_users = own.dead_letter_users
    ))
    .bind(user_id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// The user's dead letters not yet replayed, counted (and their bytes
/// summed) over at most `max_rows` of them.
pub async fn pending_usage(
    conn: &mut MySqlConnection,
    own: &Own,
    user_id: &str,
    max_rows: u32,
) -> Result<PendingUsage, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT count(*) AS `rows`, CAST(coalesce(sum(size_bytes), 0) AS SIGNED) AS bytes \
         FROM (SELECT size_bytes FROM {dead_letters} \
         WHERE user_id = ? AND replayed_at IS NULL LIMIT ?) AS capped",
        dead_letters = own.dead_letters
    ))
    .bind(user_id)
    .bind(i64::from(max_rows))
    .fetch_one(conn)
    .await
    .map_err(DbFailure::from)
}

pub async fn insert(
    conn: &mut MySqlConnection,
    own: &Own,
    letter: &NewDeadLetter<'_>,
) -> Result<(), DbFailure> {
    sqlx::query(
        &format!("INSERT INTO {dead_letters} \
         (user_id, client_id, tx_id, entries, code, `sqlstate`, constraint_name, column_name, message, failed_op_id, size_bytes) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", dead_letters = own.dead_letters),
    )
    .bind(letter.user_id)
    .bind(letter.client_id)
    .bind(letter.tx_id)
    .bind(letter.entries)
    .bind(letter.code)
    .bind(letter.sqlstate)
    .bind(letter.constraint_name)
    .bind(letter.column_name)
    .bind(letter.message)
    .bind(letter.failed_op_id)
    .bind(letter.size_bytes())
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// Deletes dead letters created more than `retention` ago; returns how many.
pub async fn delete_expired(
    db: &MySqlPool,
    own: &Own,
    retention: Duration,
) -> Result<u64, DbFailure> {
    let result = sqlx::query(&format!(
        "DELETE FROM {dead_letters} \
         WHERE created_at < CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND",
        dead_letters = own.dead_letters
    ))
    .bind(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// Whether the table is there (uplink's migrations ran).
pub async fn table_exists(db: &MySqlPool, own: &Own) -> Result<bool, DbFailure> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'dead_letters'",
    )
    .bind(own.name())
    .fetch_one(db)
    .await?;
    Ok(count > 0)
}

/// Pending dead letters of every user (for the metrics gauge).
pub async fn count_all_pending(db: &MySqlPool, own: &Own) -> Result<i64, DbFailure> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {dead_letters} WHERE replayed_at IS NULL",
        dead_letters = own.dead_letters
    ))
    .fetch_one(db)
    .await
    .map_err(DbFailure::from)
}

/// Up to `limit` dead letters older than `before`, newest first, without
/// their entries; replayed ones only when asked.
pub async fn list(
    db: &MySqlPool,
    own: &Own,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<Vec<DeadLetter>, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY} FROM {dead_letters} \
         WHERE (? OR replayed_at IS NULL) AND (? IS NULL OR id < ?) \
         ORDER BY id DESC LIMIT ?",
        dead_letters = own.dead_letters
    ))
    .bind(include_replayed)
    .bind(before)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(DbFailure::from)
}

/// A listing's page (see `store::dead_letters::list_page`).
pub async fn list_page(
    db: &MySqlPool,
    own: &Own,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<DeadLetterList, DbFailure> {
    let letters = list(db, own, limit, include_replayed, before).await?;
    let (mut page, inline) = cut_page(letters, limit);
    if !inline.is_empty() {
        let placeholders = vec!["?"; inline.len()].join(", ");
        let sql = format!(
            "SELECT id, entries FROM {dead_letters} WHERE id IN ({placeholders})",
            dead_letters = own.dead_letters
        );
        let mut query = sqlx::query_as::<_, (i64, Json<Box<RawValue>>)>(&sql);
        for id in &inline {
            query = query.bind(id);
        }
        fill_entries(&mut page, query.fetch_all(db).await?);
    }
    Ok(page)
}

pub async fn get(db: &MySqlPool, own: &Own, id: i64) -> Result<Option<DeadLetter>, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY}, entries FROM {dead_letters} WHERE id = ?",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map_err(DbFailure::from)
}

/// Deletes a dead letter; false when there was none.
pub async fn discard(db: &MySqlPool, own: &Own, id: i64) -> Result<bool, DbFailure> {
    let result = sqlx::query(&format!(
        "DELETE FROM {dead_letters} WHERE id = ?",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// A dead letter as a replay needs it, locked until the transaction ends.
pub async fn lock_for_replay(
    conn: &mut MySqlConnection,
    own: &Own,
    id: i64,
) -> Result<Option<ToReplay>, DbFailure> {
    type Letter = (String, Option<String>, String, Option<DateTime<Utc>>);
    let row: Option<Letter> = sqlx::query_as(&format!(
        "SELECT CAST(user_id AS CHAR), CAST(client_id AS CHAR), CAST(entries AS CHAR), replayed_at \
         FROM {dead_letters} WHERE id = ? FOR UPDATE",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(user_id, client_id, entries, replayed_at)| ToReplay {
            user_id,
            client_id,
            entries,
            replayed: replayed_at.is_some(),
        }),
    )
}

/// Marks a dead letter replayed: its entries were applied.
pub async fn mark_replayed(
    conn: &mut MySqlConnection,
    own: &Own,
    id: i64,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {dead_letters} SET replayed_at = CURRENT_TIMESTAMP(6), replay_outcome = 'applied' \
         WHERE id = ?",
        dead_letters = own.dead_letters
    ))
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// Notes why a replay was rejected; the dead letter stays pending.
pub async fn note_replay_failure(
    conn: &mut MySqlConnection,
    own: &Own,
    id: i64,
    outcome: &str,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {dead_letters} SET replay_outcome = ? WHERE id = ?",
        dead_letters = own.dead_letters
    ))
    .bind(outcome)
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}
