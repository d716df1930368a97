//! `client_progress` on MySQL (see `store::progress`).

use sqlx::{MySqlConnection, MySqlPool};

use crate::db::{DbFailure, Own};

/// Locks the client's progress row (creating it) and returns its `last_op_id`.
pub async fn lock(
    conn: &mut MySqlConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<i64, DbFailure> {
    // The no-op update takes the row's exclusive lock whether the row is
    // new or not; the read after it sees the locked row.
    sqlx::query(&format!(
        "INSERT INTO {progress} (user_id, client_id, last_op_id) VALUES (?, ?, 0) \
         ON DUPLICATE KEY UPDATE last_op_id = last_op_id",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar(&format!(
        "SELECT last_op_id FROM {progress} WHERE user_id = ? AND client_id = ? FOR UPDATE",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .fetch_one(conn)
    .await
    .map_err(DbFailure::from)
}

/// Raises the client's `last_op_id` to `last_op_id` (never lowers it).
pub async fn advance(
    conn: &mut MySqlConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
    last_op_id: i64,
) -> Result<(), DbFailure> {
    sqlx::query(&format!(
        "UPDATE {progress} \
         SET last_op_id = GREATEST(last_op_id, ?), updated_at = CURRENT_TIMESTAMP(6) \
         WHERE user_id = ? AND client_id = ?",
        progress = own.progress
    ))
    .bind(last_op_id)
    .bind(user_id)
    .bind(client_id)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(DbFailure::from)
}

/// The client's `last_op_id`, read without a lock; `None` for a client
/// never seen.
pub async fn last_op_id(
    db: &MySqlPool,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<Option<i64>, DbFailure> {
    sqlx::query_scalar(&format!(
        "SELECT last_op_id FROM {progress} WHERE user_id = ? AND client_id = ?",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .fetch_optional(db)
    .await
    .map_err(DbFailure::from)
}
