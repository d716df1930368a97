//! uplink's own rows for a batch, written in its transaction after the
//! app's writes (as uplink itself): recorded conflicts and dead letters.

use super::backend::Backend;
use super::batch::Batch;
use super::dead_letter::{self, Rejected};
use super::failure::Failure;
use super::settings::DeadLetterCap;
use super::work::TxOutcome;
use crate::db::Own;
use crate::store::conflicts::NewConflict;

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
pub async fn store_rejected(
    conn: &mut impl Backend,
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
