//! `write_conflicts` on MySQL (see `store::conflicts`): recorded by the
//! write path; listing and resolving them is Postgres-only (admin API).

use sqlx::MySqlConnection;
use uuid::Uuid;

use crate::db::{DbFailure, Own};
use crate::store::conflicts::NewConflict;

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
