//! `write_conflicts`: writes that lost to the server's row under an
//! `on_conflict: record` policy; recorded by the write path, listed and
//! resolved by operators (on MySQL: `store::mysql::conflicts`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::{DbFailure, Own};

/// A write that lost to the server's version (`on_conflict: record`), as
/// stored in `write_conflicts` (the PowerSync docs' conflict table).
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Conflict {
    /// A uuid.
    #[schema(value_type = String)]
    pub id: Uuid,
    pub table_name: String,
    pub row_id: String,
    /// Why, e.g. `stale_version`.
    pub conflict_type: String,
    /// The values the client sent.
    #[schema(value_type = Value)]
    pub client_data: sqlx::types::Json<serde_json::Value>,
    /// The row as the server had it.
    #[schema(value_type = Option<Value>)]
    pub server_data: Option<sqlx::types::Json<serde_json::Value>>,
    pub resolved: bool,
    pub user_id: String,
    pub client_id: Option<String>,
    pub op_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, table_name, row_id, conflict_type, client_data, server_data, resolved, \
                       user_id, client_id, op_id, created_at, resolved_at";

/// Which conflicts to list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// `None`: both; `Some(false)`: open ones only.
    pub resolved: Option<bool>,
    pub user_id: Option<&'a str>,
    pub table_name: Option<&'a str>,
    pub limit: i64,
}

/// A conflict to record: the client's values and the server's row, as JSON text.
#[derive(Debug, Clone)]
pub struct NewConflict<'a> {
    pub table_name: &'a str,
    pub row_id: &'a str,
    /// The per-entry code reported to the client (`stale_version`, …).
    pub conflict_type: &'a str,
    pub client_data: &'a str,
    pub server_data: Option<&'a str>,
    pub op_id: Option<i64>,
}

/// Records conflicts of one batch (inside its transaction, as uplink itself).
pub async fn record(
    conn: &mut PgConnection,
    own: &Own,
    conflicts: &[NewConflict<'_>],
    user_id: &str,
    client_id: Option<&str>,
) -> Result<(), DbFailure> {
    for conflict in conflicts {
        sqlx::query(
            &format!("INSERT INTO {conflicts} \
             (table_name, row_id, conflict_type, client_data, server_data, user_id, client_id, op_id) \
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)", conflicts = own.conflicts),
        )
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
pub async fn list(db: &PgPool, own: &Own, filter: &Filter<'_>) -> Result<Vec<Conflict>, DbFailure> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {conflicts} \
         WHERE ($1::boolean IS NULL OR resolved = $1) \
           AND ($2::text IS NULL OR user_id = $2) \
           AND ($3::text IS NULL OR table_name = $3) \
         ORDER BY created_at DESC, id DESC LIMIT $4",
        conflicts = own.conflicts
    ))
    .bind(filter.resolved)
    .bind(filter.user_id)
    .bind(filter.table_name)
    .bind(filter.limit)
    .fetch_all(db)
    .await
    .map_err(DbFailure::from)
}

/// Marks a conflict resolved (again: keeps the first resolution time) and
/// returns it; `None` when there is none with this id.
pub async fn resolve(db: &PgPool, own: &Own, id: Uuid) -> Result<Option<Conflict>, DbFailure> {
    sqlx::query_as(&format!(
        "UPDATE {conflicts} SET resolved = true, resolved_at = COALESCE(resolved_at, now()) \
         WHERE id = $1 RETURNING {COLUMNS}",
        conflicts = own.conflicts
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map_err(DbFailure::from)
}
