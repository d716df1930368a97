//! `write_conflicts` on MySQL (see `store::conflicts`): recorded by the
//! write path, listed and resolved by operators. The id is a uuid's text.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::types::uuid::fmt::Hyphenated;
use sqlx::{MySqlConnection, MySqlPool};
use uuid::Uuid;

use crate::db::{DbFailure, Own};
use crate::store::conflicts::{Conflict, Filter, NewConflict};

/// Text is read `CAST(… AS CHAR)`: the driver takes a `_bin` column for
/// bytes.
const COLUMNS: &str = "CAST(id AS CHAR) AS id, CAST(table_name AS CHAR) AS table_name, \
                       CAST(row_id AS CHAR) AS row_id, CAST(conflict_type AS CHAR) AS conflict_type, \
                       client_data, server_data, resolved, CAST(user_id AS CHAR) AS user_id, \
                       CAST(client_id AS CHAR) AS client_id, op_id, created_at, resolved_at";

/// A row as MySQL gives it: the id as text.
#[derive(sqlx::FromRow)]
struct Stored {
    id: Hyphenated,
    table_name: String,
    row_id: String,
    conflict_type: String,
    client_data: Json<serde_json::Value>,
    server_data: Option<Json<serde_json::Value>>,
    resolved: bool,
    user_id: String,
    client_id: Option<String>,
    op_id: Option<i64>,
    created_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
}

impl From<Stored> for Conflict {
    fn from(row: Stored) -> Self {
        Self {
            id: row.id.into_uuid(),
            table_name: row.table_name,
            row_id: row.row_id,
            conflict_type: row.conflict_type,
            client_data: row.client_data,
            server_data: row.server_data,
            resolved: row.resolved,
            user_id: row.user_id,
            client_id: row.client_id,
            op_id: row.op_id,
            created_at: row.created_at,
            resolved_at: row.resolved_at,
        }
    }
}

/// Records conflicts of one batch (inside its transaction).
pub async fn record(
    conn: &mut MySqlConnection,
    own: &Own,
    conflicts: &[NewConflict<'_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<(), DbFailure> {
    for conflict in conflicts {
        sqlx::query(
            &format!("INSERT INTO {conflicts} \
             (id, table_name, row_id, conflict_type, client_data, server_data, user_id, client_id, op_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", conflicts = own.conflicts),
        )
        .bind(Uuid::new_v4().to_string())
        .bind(conflict.table_name)
        .bind(conflict.row_id)
        .bind(conflict.conflict_type)
        .bind(conflict.client_data)
        .bind(conflict.server_data)
        .bind(user_id)
        .bind(client_id)
        .bind(conflict.op_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Conflicts newest first.
pub async fn list(
    db: &MySqlPool,
    own: &Own,
    filter: &Filter<'_>,
) -> Result<Vec<Conflict>, DbFailure> {
    let rows: Vec<Stored> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {conflicts} \
         WHERE (? IS NULL OR resolved = ?) \
           AND (? IS NULL OR user_id = ?) \
           AND (? IS NULL OR table_name = ?) \
         ORDER BY created_at DESC, id DESC LIMIT ?",
        conflicts = own.conflicts
    ))
    .bind(filter.resolved)
    .bind(filter.resolved)
    .bind(filter.user_id)
    .bind(filter.user_id)
    .bind(filter.table_name)
    .bind(filter.table_name)
    .bind(filter.limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Conflict::from).collect())
}

/// Marks a conflict resolved (again: keeps the first resolution time) and
/// returns it; `None` when there is none with this id.
pub async fn resolve(db: &MySqlPool, own: &Own, id: Uuid) -> Result<Option<Conflict>, DbFailure> {
    let id = id.hyphenated().to_string();
    sqlx::query(&format!(
        "UPDATE {conflicts} SET resolved = TRUE, \
         resolved_at = COALESCE(resolved_at, CURRENT_TIMESTAMP(6)) WHERE id = ?",
        conflicts = own.conflicts
    ))
    .bind(&id)
    .execute(db)
    .await?;
    let row: Option<Stored> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {conflicts} WHERE id = ?",
        conflicts = own.conflicts
    ))
    .bind(&id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Conflict::from))
}
