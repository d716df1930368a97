//! A batch's client transactions as work: each entry a duplicate, prepared
//! or refused; and what became of each transaction.

use std::collections::BTreeMap;

use super::batch::Batch;
use super::plan::Allowed;
use super::policy::ConflictNote;
use super::prepared::Prepared;
use super::rejection::Rejection;
use super::schema::Table;
use crate::error::ErrorCode;

/// What happened to one client transaction.
pub enum TxOutcome {
    /// Applied; entries resolved in the server's favour carry a note.
    Applied {
        conflicts: Vec<(usize, ConflictNote)>,
    },
    /// Rejected: the entry (position within the transaction) at fault.
    Rejected {
        culprit: usize,
        rejection: Rejection,
    },
}

/// Per entry of a client transaction: duplicate (None), prepared or refused.
pub struct TxWork<'c, 'a> {
    pub entries: Vec<Option<Result<Prepared<'c, 'a>, Rejection>>>,
}

impl TxWork<'_, '_> {
    pub fn first_refusal(&self) -> Option<(usize, &Rejection)> {
        self.entries.iter().enumerate().find_map(|(i, e)| match e {
            Some(Err(rejection)) => Some((i, rejection)),
            _ => None,
        })
    }

    pub fn runnable(&self) -> impl Iterator<Item = &Prepared<'_, '_>> {
        self.entries
            .iter()
            .filter_map(|e| e.as_ref().and_then(|r| r.as_ref().ok()))
    }
}

/// The rows the batch's runnable entries write: tables in name order, each
/// with its ids sorted and unique. Locking them in this order keeps two
/// batches that touch the same rows from deadlocking.
pub fn rows_in_lock_order<'w>(work: &'w [TxWork<'_, '_>]) -> Vec<(&'w Table, Vec<&'w str>)> {
    let mut by_table: BTreeMap<&str, (&Table, Vec<&str>)> = BTreeMap::new();
    for prepared in work.iter().flat_map(TxWork::runnable) {
        by_table
            .entry(prepared.table.name.as_str())
            .or_insert((prepared.table, Vec::new()))
            .1
            .push(&*prepared.row.id);
    }
    let mut tables: Vec<_> = by_table.into_values().collect();
    for (_, ids) in &mut tables {
        ids.sort_unstable();
        ids.dedup();
    }
    tables
}

/// Marks duplicates (op_id at or below the client's progress from earlier
/// requests), refuses op_ids that cannot be in order, and validates the
/// rest. Op ids are checked only where progress is tracked (`high_water`).
pub fn prepare_work<'c, 'a>(
    allowed: &'c Allowed<'_>,
    batch: &Batch<'a>,
    high_water: Option<i64>,
) -> Vec<TxWork<'c, 'a>> {
    let mut mark = high_water;
    let mut work = Vec::with_capacity(batch.transactions.len());
    for (t, transaction) in batch.transactions.iter().enumerate() {
        let mut entries = Vec::with_capacity(transaction.entries.len());
        for (e, entry) in transaction.entries.iter().enumerate() {
            let slot = match (high_water, mark, entry.op_id) {
                (Some(_), _, Some(op_id)) if op_id <= 0 => Some(Err(Rejection::new(
                    ErrorCode::InvalidOpId,
                    format!("op_id {op_id} is not a positive integer"),
                ))),
                (Some(stored), _, Some(op_id)) if op_id <= stored => None,
                (_, Some(seen), Some(op_id)) if op_id <= seen => Some(Err(Rejection::new(
                    ErrorCode::OpIdNotIncreasing,
                    format!(
                        "op_id {op_id} follows op_id {seen} in this request; op_ids must increase"
                    ),
                ))),
                _ => Some(allowed.prepare((t, e), entry)),
            };
            if let (Some(seen), Some(op_id)) = (mark.as_mut(), entry.op_id) {
                *seen = (*seen).max(op_id);
            }
            entries.push(slot);
        }
        work.push(TxWork { entries });
    }
    work
}
