//! What a request did, per entry: the response body of `POST /api/data`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EntryStatus)]
pub enum Status {
    Applied,
    Duplicate,
    Conflict,
    Rejected,
}

/// Why an entry (and its client transaction) was not applied.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(rename = "constraint", skip_serializing_if = "Option::is_none")]
    pub constraint_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Rejection {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            sqlstate: None,
            constraint_name: None,
            column: None,
        }
    }

    pub fn with_column(mut self, column: &str) -> Self {
        self.column = Some(column.to_owned());
        self
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
    #[schema(value_type = Option<String>)]
    pub code: Option<&'static str>,
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
}

impl Report {
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
    #[schema(value_type = String)]
    pub error_code: &'static str,
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
            .find(|(_, r)| r.code != Some(TRANSACTION_REJECTED))
            .unwrap_or(first);
        let message = culprit.message.clone().unwrap_or_default();
        Self::FatalError {
            requires_client_handling: false,
            message: message.clone(),
            failed_operation: FailedOperation {
                error_code: culprit.code.unwrap_or("rejected"),
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

/// The code of the other entries of a rejected client transaction.
pub const TRANSACTION_REJECTED: &str = "transaction_rejected";
