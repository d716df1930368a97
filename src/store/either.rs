//! The records every database keeps, by the `Database` they are in: the
//! one place outside the write path that picks the Postgres or MySQL file.

use std::time::Duration;

use uuid::Uuid;

use super::conflicts::{Conflict, Filter};
use super::dead_letters::{DeadLetter, DeadLetterList};
use super::{checkpoints, conflicts, dead_letters, mysql, progress};
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

/// Whether uplink's tables are there (its migrations ran).
pub async fn migrated(db: &Database) -> Result<bool, DbFailure> {
    match db {
        Database::Postgres(pool, own) => dead_letters::table_exists(pool, own).await,
        Database::MySql(pool, own) => mysql::dead_letters::table_exists(pool, own).await,
    }
}

/// Up to `limit` dead letters older than `before`, newest first, without
/// their entries.
pub async fn dead_letters(
    db: &Database,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<Vec<DeadLetter>, DbFailure> {
    match db {
        Database::Postgres(pool, own) => {
            dead_letters::list(pool, own, limit, include_replayed, before).await
        }
        Database::MySql(pool, own) => {
            mysql::dead_letters::list(pool, own, limit, include_replayed, before).await
        }
    }
}

/// A listing's page (`dead_letters::list_page`).
pub async fn dead_letter_page(
    db: &Database,
    limit: i64,
    include_replayed: bool,
    before: Option<i64>,
) -> Result<DeadLetterList, DbFailure> {
    match db {
        Database::Postgres(pool, own) => {
            dead_letters::list_page(pool, own, limit, include_replayed, before).await
        }
        Database::MySql(pool, own) => {
            mysql::dead_letters::list_page(pool, own, limit, include_replayed, before).await
        }
    }
}

/// A dead letter with its entries.
pub async fn dead_letter(db: &Database, id: i64) -> Result<Option<DeadLetter>, DbFailure> {
    match db {
        Database::Postgres(pool, own) => dead_letters::get(pool, own, id).await,
        Database::MySql(pool, own) => mysql::dead_letters::get(pool, own, id).await,
    }
}

/// Deletes a dead letter; false when there was none.
pub async fn discard_dead_letter(db: &Database, id: i64) -> Result<bool, DbFailure> {
    match db {
        Database::Postgres(pool, own) => dead_letters::discard(pool, own, id).await,
        Database::MySql(pool, own) => mysql::dead_letters::discard(pool, own, id).await,
    }
}

/// Write conflicts, newest first.
pub async fn write_conflicts(
    db: &Database,
    filter: &Filter<'_>,
) -> Result<Vec<Conflict>, DbFailure> {
    match db {
        Database::Postgres(pool, own) => conflicts::list(pool, own, filter).await,
        Database::MySql(pool, own) => mysql::conflicts::list(pool, own, filter).await,
    }
}

/// Marks a write conflict resolved; `None` when there is none with this id.
pub async fn resolve_conflict(db: &Database, id: Uuid) -> Result<Option<Conflict>, DbFailure> {
    match db {
        Database::Postgres(pool, own) => conflicts::resolve(pool, own, id).await,
        Database::MySql(pool, own) => mysql::conflicts::resolve(pool, own, id).await,
    }
}
