//! The records every database keeps, by the `Database` they are in: the
//! one place outside the write path that picks the Postgres or MySQL file.

use std::time::Duration;

use super::{checkpoints, dead_letters, mysql, progress};
use crate::db::DbFailure;
use crate::db::pool::Database;

/// Increments the client's write checkpoint (starting it) and returns it.
pub async fn increment_checkpoint(
    db: &Database,
    user_id: &str,
    client_id: &str,
) -> Result<i64, DbFailure> {
    match db {
        Database::Postgres(pool, own) => {
            checkpoints::increment(pool, own, user_id, client_id).await
        }
        Database::MySql(pool, own) => {
            mysql::checkpoints::increment(pool, own, user_id, client_id).await
        }
    }
}

/// The client's `last_op_id`, read without a lock; `None` for a client
/// never seen.
pub async fn last_op_id(
    db: &Database,
    user_id: &str,
    client_id: &str,
) -> Result<Option<i64>, DbFailure> {
    match db {
        Database::Postgres(pool, own) => progress::last_op_id(pool, own, user_id, client_id).await,
        Database::MySql(pool, own) => {
            mysql::progress::last_op_id(pool, own, user_id, client_id).await
        }
    }
}

/// Pending dead letters of every user.
pub async fn pending_dead_letters(db: &Database) -> Result<i64, DbFailure> {
    match db {
        Database::Postgres(pool, own) => dead_letters::count_all_pending(pool, own).await,
        Database::MySql(pool, own) => mysql::dead_letters::count_all_pending(pool, own).await,
    }
}

/// Deletes dead letters created more than `retention` ago; returns how many.
pub async fn delete_expired_dead_letters(
    db: &Database,
    retention: Duration,
) -> Result<u64, DbFailure> {
    match db {
        Database::Postgres(pool, own) => dead_letters::delete_expired(pool, own, retention).await,
        Database::MySql(pool, own) => {
            mysql::dead_letters::delete_expired(pool, own, retention).await
        }
    }
}
