//! `checkpoints` on MySQL (see `store::checkpoints`).

use sqlx::MySqlPool;

use crate::db::{DbFailure, Own};

/// Increments the client's checkpoint (starting it) and returns it.
pub async fn increment(
    db: &MySqlPool,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<i64, DbFailure> {
    let mut tx = db.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO {checkpoints} (user_id, client_id) VALUES (?, ?) \
         ON DUPLICATE KEY UPDATE checkpoint = checkpoint + 1",
        checkpoints = own.checkpoints
    ))
    .bind(user_id)
    .bind(client_id)
    .execute(&mut *tx)
    .await?;
    let checkpoint = sqlx::query_scalar(&format!(
        "SELECT checkpoint FROM {checkpoints} WHERE user_id = ? AND client_id = ?",
        checkpoints = own.checkpoints
    ))
    .bind(user_id)
    .bind(client_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(checkpoint)
}
