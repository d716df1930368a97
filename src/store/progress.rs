//! `client_progress` (in uplink's schema): the highest applied `op_id` per (user, client),
//! kept in the same database transaction as the writes it covers. The row
//! lock taken by `lock` serialises concurrent requests of one client, on any
//! replica.

use sqlx::{PgConnection, PgPool};

use crate::db::{DbFailure, Own};

/// Locks the client's progress row (creating it) and returns its `last_op_id`.
pub async fn lock(
    conn: &mut PgConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
) -> Result<i64, DbFailure> {
    sqlx::query_scalar(&format!(
        "INSERT INTO {progress} AS p (user_id, client_id, last_op_id) VALUES ($1, $2, 0) \
         ON CONFLICT (user_id, client_id) DO UPDATE SET updated_at = now() \
         RETURNING p.last_op_id",
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
    conn: &mut PgConnection,
    own: &Own,
    user_id: &str,
    client_id: &str,
    last_op_id: i64,
) -> Result<(), DbFailure> {
    // An upsert (of the row `lock` created) rather than an UPDATE: its plan
    // is the key probe whatever the table's statistics say.
    sqlx::query(&format!(
        "INSERT INTO {progress} AS p (user_id, client_id, last_op_id) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, client_id) DO UPDATE \
         SET last_op_id = GREATEST(p.last_op_id, EXCLUDED.last_op_id), updated_at = now()",
        progress = own.progress
    ))
    .bind(user_id)
    .bind(client_id)
    .bind(last_op_id)
    .execute(conn)
    .await
    .map(|_| ())
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
