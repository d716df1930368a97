//! Rejected client transactions, stored durably for operators to list,
//! inspect, replay or discard (CLI and admin API share these functions).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::envelope::{ClientTransaction, Entry};
use super::report::Rejection;

/// An entry as JSON, in the SDK's `CrudEntry.toJSON()` shape, values verbatim.
pub fn entry_json(entry: &Entry<'_>) -> String {
    let mut out = String::from("{");
    if let Some(op_id) = entry.op_id {
        out.push_str(&format!("\"op_id\":{op_id},"));
    }
    out.push_str(&format!(
        "\"op\":\"{}\",\"type\":{},\"id\":{}",
        entry.op.as_str(),
        json_string(&entry.table),
        json_string(&entry.id)
    ));
    if let Some(tx_id) = entry.tx_id {
        out.push_str(&format!(",\"tx_id\":{tx_id}"));
    }
    if !entry.data.is_empty() || entry.op != super::envelope::Op::Delete {
        out.push_str(",\"data\":{");
        for (i, (key, value)) in entry.data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(key));
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
    }
    if let Some(old) = entry.old {
        out.push_str(",\"old\":");
        out.push_str(old.get());
    }
    if let Some(metadata) = entry.metadata {
        out.push_str(",\"metadata\":");
        out.push_str(metadata.get());
    }
    out.push('}');
    out
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

pub fn transaction_json(transaction: &ClientTransaction<'_>) -> String {
    let entries: Vec<String> = transaction.entries.iter().map(entry_json).collect();
    format!("[{}]", entries.join(","))
}

pub async fn insert(
    conn: &mut PgConnection,
    user_id: &str,
    client_id: Option<&str>,
    transaction: &ClientTransaction<'_>,
    failed_op_id: Option<i64>,
    rejection: &Rejection,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uplink_dead_letters \
         (user_id, client_id, tx_id, entries, code, sqlstate, constraint_name, column_name, message, failed_op_id) \
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)",
    )
    .bind(user_id)
    .bind(client_id)
    .bind(transaction.tx_id)
    .bind(transaction_json(transaction))
    .bind(rejection.code)
    .bind(rejection.sqlstate.as_deref())
    .bind(rejection.constraint_name.as_deref())
    .bind(rejection.column.as_deref())
    .bind(&rejection.message)
    .bind(failed_op_id)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub user_id: String,
    pub client_id: Option<String>,
    pub tx_id: Option<i64>,
    pub code: String,
    pub sqlstate: Option<String>,
    pub constraint_name: Option<String>,
    pub column_name: Option<String>,
    pub message: String,
    pub failed_op_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
    pub replay_outcome: Option<String>,
    pub entries: sqlx::types::Json<serde_json::Value>,
}

const COLUMNS: &str = "id, user_id, client_id, tx_id, code, sqlstate, constraint_name, column_name, \
                       message, failed_op_id, created_at, replayed_at, replay_outcome, entries";

/// Dead letters newest first; replayed ones only when asked.
pub async fn list(
    db: &PgPool,
    limit: i64,
    include_replayed: bool,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uplink_dead_letters \
         WHERE $2 OR replayed_at IS NULL ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .bind(include_replayed)
    .fetch_all(db)
    .await
}

pub async fn get(db: &PgPool, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uplink_dead_letters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Deletes a dead letter; false when there was none.
pub async fn discard(db: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM uplink_dead_letters WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}
