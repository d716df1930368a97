//! `client_progress` on MySQL (see `store::progress`).

use sqlx::{MySqlConnection, MySqlPool};

use crate::db::{DbFailure, Own};

/// Locks the client's progress row (creating it), raises its `last_op_id`
/// to `through` and returns the value it had before, in one statement.
/// The update of a duplicate key reads the locked row; `LAST_INSERT_ID(x)`
/// hands its old `last_op_id` back in the statement's OK packet
/// (assignments apply left to right, so it is read before the raise). A
/// new row reports 0: the table has no AUTO_INCREMENT column.
pub async fn advance(
    conn: &mut MySqlConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
    through: i64,
) -> Result<i64, DbFailure> {
    let done = sqlx::query(&format!(
        "INSERT INTO {progress} (user_id, client_id, last_op_id) VALUES (?, ?, GREATEST(?, 0)) \
         ON DUPLICATE KEY UPDATE \
         last_op_id = GREATEST(LAST_INSERT_ID(last_op_id), VALUES(last_op_id)), \
         updated_at = CURRENT_TIMESTAMP(6)",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .bind(through)
    .execute(conn)
    .await?;
    i64::try_from(done.last_insert_id())
        .map_err(|_| DbFailure::Fatal(anyhow::anyhow!("client_progress.last_op_id out of range")))
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
