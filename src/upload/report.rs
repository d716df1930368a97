//! What a request did, per entry: the response body of `POST /api/data`,
//! built from the outcome of each client transaction, and each entry's
//! outcome for the metrics.

use serde::Serialize;

use super::batch::{Batch, Entry};
use super::rejection::Rejection;
use super::settings::WriteSettings;
use super::work::{TxOutcome, TxWork};
use crate::error::ErrorCode;
use crate::metrics::EntryOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EntryStatus)]
pub enum Status {
    Applied,
    Duplicate,
    Conflict,
    Rejected,
}

impl Status {
    /// As serialized (and as the metrics' `outcome` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_id: Option<i64>,
    pub table: String,
    pub id: String,
    pub status: Status,
    /// Why, e.g. `stale_version`, `check_violation`, `transaction_rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// What a batch did. `200` whatever each entry's outcome.
// No other members (`deny_unknown_fields` gives the schema
// `additionalProperties: false`): that is what tells it from a
// `TransactionsReport` (which adds `entries`) when both have empty lists.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub applied: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub rejected: usize,
    /// Every entry whose status is not `applied`, in request order.
    pub results: Vec<EntryResult>,
    /// Where each client transaction's results end in `results`.
    #[serde(skip)]
    pub transaction_ends: Vec<usize>,
    /// Every entry's status, in request order.
    #[serde(skip)]
    pub statuses: Vec<Status>,
    /// How long the batch's transaction waited for a connection.
    #[serde(skip)]
    pub connection_wait: std::time::Duration,
}

impl Report {
    /// Each entry's outcome as the metrics count it, in request order.
    /// Tables outside `write.tables` are labelled `other`: a client must
    /// not be able to create series at will.
    pub fn outcomes<'b>(
        &self,
        batch: &'b Batch<'_>,
        write: &WriteSettings,
    ) -> Vec<EntryOutcome<'b>> {
        batch
            .transactions
            .iter()
            .flat_map(|t| &t.entries)
            .zip(&self.statuses)
            .map(|(entry, status)| EntryOutcome {
                table: if write.tables.contains_key(entry.table.as_ref()) {
                    entry.table.as_ref()
                } else {
                    "other"
                },
                op: entry.op.as_str(),
                outcome: status.as_str(),
            })
            .collect()
    }

    /// Client transactions rejected (and dead-lettered) by this batch.
    pub fn rejected_transactions(&self) -> usize {
        self.results
            .iter()
            .filter(|r| {
                r.status == Status::Rejected && r.code != Some(ErrorCode::TransactionRejected)
            })
            .count()
    }

    /// Marks the end of one client transaction's results (request order).
    pub fn end_transaction(&mut self) {
        self.transaction_ends.push(self.results.len());
    }

    /// The response to a `transactions`-shaped request: uplink's counts,
    /// its per-entry results under `entries`, and `results` with one result
    /// per client transaction in the reference write contract's shape.
    pub fn per_transaction(self) -> TransactionsReport {
        let mut results = Vec::with_capacity(self.transaction_ends.len());
        let mut start = 0;
        for &end in &self.transaction_ends {
            results.push(TransactionResult::of(&self.results[start..end]));
            start = end;
        }
        TransactionsReport {
            applied: self.applied,
            duplicates: self.duplicates,
            conflicts: self.conflicts,
            rejected: self.rejected,
            results,
            entries: self.results,
        }
    }
}

/// What a `transactions`-shaped batch did: the reference write contract's
/// per-transaction `results` and uplink's report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransactionsReport {
    pub applied: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub rejected: usize,
    /// One per client transaction, in request order.
    pub results: Vec<TransactionResult>,
    /// Every entry whose status is not `applied`, in request order.
    pub entries: Vec<EntryResult>,
}

/// The reference write contract's per-transaction result. uplink never
/// stops a batch: a rejected transaction is dead-lettered (backend-handled,
/// `requires_client_handling: false`) and the next one applied, so
/// `not_attempted` and `retryable_error` do not occur (a transient failure
/// answers 503 for the whole request).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransactionResult {
    Success,
    FatalError {
        requires_client_handling: bool,
        message: String,
        failed_operation: FailedOperation,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailedOperation {
    /// uplink's per-entry code (`foreign_key_violation`, `unknown_field`, …).
    pub error_code: ErrorCode,
    pub message: String,
    /// The entry at fault, zero-based within its transaction.
    pub operation_index: usize,
    pub details: FailureDetails,
}

/// `table`, `id`, and `constraint` / `column` when known.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailureDetails {
    pub table: String,
    pub id: String,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl TransactionResult {
    /// From one transaction's non-applied entry results. A rejected
    /// transaction lists every one of its entries, so a result's position
    /// is the entry's position.
    fn of(results: &[EntryResult]) -> Self {
        let mut rejected = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == Status::Rejected);
        let Some(first) = rejected.next() else {
            return Self::Success;
        };
        let (index, culprit) = std::iter::once(first)
            .chain(rejected)
            .find(|(_, r)| r.code != Some(ErrorCode::TransactionRejected))
            .unwrap_or(first);
        let message = culprit.message.clone().unwrap_or_default();
        Self::FatalError {
            requires_client_handling: false,
            message: message.clone(),
            failed_operation: FailedOperation {
                error_code: culprit.code.unwrap_or(ErrorCode::TransactionRejected),
                message,
                operation_index: index,
                details: FailureDetails {
                    table: culprit.table.clone(),
                    id: culprit.id.clone(),
                    constraint_name: culprit.constraint_name.clone(),
                    column: culprit.column.clone(),
                },
            },
        }
    }
}

fn result_for(entry: &Entry<'_>, status: Status, code: ErrorCode, message: String) -> EntryResult {
    EntryResult {
        op_id: entry.op_id,
        table: entry.table.to_string(),
        id: entry.id.to_string(),
        status,
        code: Some(code),
        message: Some(message),
        constraint_name: None,
        column: None,
    }
}

/// The report of a batch from what became of each client transaction.
pub fn build_report(batch: &Batch<'_>, work: &[TxWork<'_, '_>], outcomes: &[TxOutcome]) -> Report {
    let mut report = Report::default();
    for ((transaction, w), outcome) in batch.transactions.iter().zip(work).zip(outcomes) {
        for (position, (entry, slot)) in transaction.entries.iter().zip(&w.entries).enumerate() {
            let status = match slot {
                None => report.duplicate(entry),
                Some(prepared) => match outcome {
                    TxOutcome::Applied { conflicts } => {
                        let note = conflicts
                            .iter()
                            .find(|(e, _)| *e == position)
                            .map(|(_, n)| n);
                        let read_only = prepared
                            .as_ref()
                            .ok()
                            .map(|p| p.read_only_hits.as_slice())
                            .filter(|h| !h.is_empty());
                        match (note, read_only) {
                            (Some(note), _) => {
                                report.conflict(entry, note.code, note.message.clone(), None)
                            }
                            (None, Some(columns)) => report.conflict(
                                entry,
                                ErrorCode::ReadOnlyColumn,
                                format!(
                                    "read-only columns were not written ({}); the rest of the entry was applied",
                                    columns.join(", ")
                                ),
                                columns.first().cloned(),
                            ),
                            (None, None) => {
                                report.applied += 1;
                                Status::Applied
                            }
                        }
                    }
                    TxOutcome::Rejected { culprit, rejection } => {
                        report.rejected(entry, (position == *culprit).then_some(rejection))
                    }
                },
            };
            report.statuses.push(status);
        }
        report.end_transaction();
    }
    report
}

impl Report {
    fn duplicate(&mut self, entry: &Entry<'_>) -> Status {
        self.duplicates += 1;
        self.results.push(result_for(
            entry,
            Status::Duplicate,
            ErrorCode::Duplicate,
            "already applied (op_id at or below this client's progress)".to_owned(),
        ));
        Status::Duplicate
    }

    fn conflict(
        &mut self,
        entry: &Entry<'_>,
        code: ErrorCode,
        message: String,
        column: Option<String>,
    ) -> Status {
        self.conflicts += 1;
        let mut result = result_for(entry, Status::Conflict, code, message);
        result.column = column;
        self.results.push(result);
        Status::Conflict
    }

    /// An entry of a rejected client transaction; `culprit` is the
    /// rejection when this entry caused it.
    fn rejected(&mut self, entry: &Entry<'_>, culprit: Option<&Rejection>) -> Status {
        self.rejected += 1;
        let result = match culprit {
            Some(rejection) => {
                let mut result = result_for(
                    entry,
                    Status::Rejected,
                    rejection.code,
                    rejection.message.clone(),
                );
                result.constraint_name = rejection.constraint_name.clone();
                result.column = rejection.column.clone();
                result
            }
            None => result_for(
                entry,
                Status::Rejected,
                ErrorCode::TransactionRejected,
                "another entry of this client transaction was rejected".to_owned(),
            ),
        };
        self.results.push(result);
        Status::Rejected
    }
}
