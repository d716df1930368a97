//! `client_progress` (in uplink's schema): the highest applied `op_id` per (user, client),
//! kept in the same database transaction as the writes it covers. The row
//! lock taken by `advance` serialises concurrent requests of one client, on
//! any replica.

use sqlx::{PgConnection, PgPool};

use crate::db::{DbFailure, Own};

/// Locks the client's progress row (creating it), raises its `last_op_id`
/// to `through` (never lowers it) and returns the `last_op_id` it had
/// before: one write per batch. The value before is taken from the locked
/// row inside `DO UPDATE` (`previous_op_id`), so a second request of the
/// client that waited for the lock sees the first one's progress.
pub async fn advance(
    conn: &mut PgConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
    through: i64,
) -> Result<i64, DbFailure> {
    sqlx::query_scalar(&format!(
        "INSERT INTO {progress} AS p (user_id, client_id, last_op_id, previous_op_id) \
         VALUES ($1, $2, GREATEST($3, 0), 0) \
         ON CONFLICT (user_id, client_id) DO UPDATE \
         SET previous_op_id = p.last_op_id, \
             last_op_id = GREATEST(p.last_op_id, EXCLUDED.last_op_id), updated_at = now() \
         RETURNING p.previous_op_id",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .bind(through)
    .fetch_one(conn)
    .await
    .map_err(DbFailure::from)
}

/// The client's `last_op_id`, read without a lock; `None` for a client
/// never seen.
pub async fn last_op_id(
    db: &PgPool,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<Option<i64>, DbFailure> {
    sqlx::query_scalar(&format!(
        "SELECT last_op_id FROM {progress} WHERE user_id = $1 AND client_id = $2",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .fetch_optional(db)
    .await
    .map_err(DbFailure::from)
}
