//! `checkpoints`: the custom write checkpoint of each (user, client).

use sqlx::PgPool;

use crate::db::{DbFailure, Own};

/// Increments the client's checkpoint (starting it) and returns it.
pub async fn increment(
    db: &PgPool,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<i64, DbFailure> {
    sqlx::query_scalar(&format!(
        "INSERT INTO {checkpoints} AS c (user_id, client_id) VALUES ($1, $2) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET checkpoint = c.checkpoint + 1 \
         RETURNING c.checkpoint",
        checkpoints = own.checkpoints
    ))
    .bind(user_id)
    .bind(client_id)
    .fetch_one(db)
    .await
    .map_err(DbFailure::from)
}
