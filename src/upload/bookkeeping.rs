//! uplink's own rows for a batch, written in its transaction after the
//! app's writes (as uplink itself): recorded conflicts and dead letters.

use sqlx::PgConnection;

use super::batch::Batch;
use super::dead_letter::{self, Rejected};
use super::failure::Failure;
use super::settings::DeadLetterCap;
use super::work::TxOutcome;
use crate::db::Own;
use crate::store::conflicts::{self, NewConflict};

/// Writes the conflicts that policies chose to record (`on_conflict: record`).
pub async fn record_conflicts(
    conn: &mut PgConnection,
    own: &Own,
    batch: &Batch<'_>,
    outcomes: &[TxOutcome],
    user_id: &str,
) -> Result<(), Failure> {
    let recorded = recorded(batch, outcomes);
    if recorded.is_empty() {
        return Ok(());
    }
    conflicts::record(conn, own, &recorded, user_id, batch.client_id.as_deref()).await?;
    Ok(())
}

/// The conflicts of applied client transactions that policies chose to record.
pub fn recorded<'b>(batch: &'b Batch<'_>, outcomes: &'b [TxOutcome]) -> Vec<NewConflict<'b>> {
    batch
        .transactions
        .iter()
        .zip(outcomes)
        .flat_map(|(transaction, outcome)| match outcome {
            TxOutcome::Applied { conflicts } => conflicts
                .iter()
                .filter_map(|(e, note)| {
                    note.record.as_ref().map(|r| NewConflict {
                        table_name: &r.table,
                        row_id: &r.row_id,
                        conflict_type: note.code.as_str(),
                        client_data: &r.client_data,
                        server_data: r.server_data.as_deref(),
                        op_id: transaction.entries[*e].op_id,
                    })
                })
                .collect(),
            TxOutcome::Rejected { .. } => Vec::new(),
        })
        .collect()
}

/// Stores the rejected client transactions as dead letters, within the
/// per-user `cap`.
pub async fn dead_letter_rejected(
    conn: &mut PgConnection,
    own: &Own,
    cap: DeadLetterCap,
    batch: &Batch<'_>,
    outcomes: &[TxOutcome],
    user_id: &str,
) -> Result<(), Failure> {
    dead_letter::store_rejected(
        conn,
        own,
        cap,
        user_id,
        batch.client_id.as_deref(),
        &rejected(batch, outcomes),
    )
    .await
}

/// The rejected client transactions and the entry at fault in each.
pub fn rejected<'t, 'a>(batch: &'t Batch<'a>, outcomes: &'t [TxOutcome]) -> Vec<Rejected<'t, 'a>> {
    batch
        .transactions
        .iter()
        .zip(outcomes)
        .filter_map(|(transaction, outcome)| match outcome {
            TxOutcome::Rejected { culprit, rejection } => Some(Rejected {
                transaction,
                failed_op_id: transaction.entries.get(*culprit).and_then(|e| e.op_id),
                rejection,
            }),
            TxOutcome::Applied { .. } => None,
        })
        .collect()
}
