//! `dead_letters` on MySQL (see `store::dead_letters`): stored by the
//! write path and swept by retention; listing and replay are Postgres-only.

use std::time::Duration;

use sqlx::{MySqlConnection, MySqlPool};

use crate::db::{DbFailure, Own};
use crate::store::dead_letters::{NewDeadLetter, PendingUsage};

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
