//! Wire shapes as OpenAPI schemas. They mirror the types the handlers
//! (de)serialize; `tests/api/openapi.rs` checks real responses against them.

#![allow(dead_code)] // read only by the schema derive

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// Every error: `{"error": {"code", "message"}}`.
#[derive(ToSchema, serde::Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema, serde::Serialize)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_json`, `unauthorized`, `rate_limited`.
    #[schema(example = "invalid_envelope")]
    pub code: String,
    /// Human-readable; never database text or secrets.
    pub message: String,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    #[schema(example = "ok")]
    pub database: String,
    #[schema(example = "ok")]
    pub storage: String,
}

/// Body of `POST /api/auth/token` (all fields optional; `dev` mode honours them).
#[derive(ToSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user to issue for (`dev` identity mode only). Alias: `userId`.
    #[schema(min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub user_id: Option<String>,
    /// Copied into the token's `parameters` claim (`dev` mode only).
    pub parameters: Option<BTreeMap<String, Value>>,
}

/// What `fetchCredentials()` returns to the SDK.
#[derive(ToSchema, serde::Serialize)]
pub struct TokenResponse {
    /// A JWT for the PowerSync Service.
    pub token: String,
    /// The PowerSync Service URL (`auth.powersync_url`).
    pub powersync_url: String,
    /// RFC 3339 expiry of `token`.
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub user_id: String,
}

/// Public signing keys, for the PowerSync Service's `client_auth.jwks_uri`.
#[derive(ToSchema, serde::Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public JWK; key-type specific members (`x`, `y`, `crv`, `n`, `e`) follow RFC 7517.
#[derive(ToSchema, serde::Serialize)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
}

/// The caller as uplink sees the presented token.
#[derive(ToSchema, serde::Serialize)]
pub struct Me {
    pub user_id: String,
    /// The verified token's claims.
    pub claims: BTreeMap<String, Value>,
}

#[derive(ToSchema, serde::Serialize)]
pub enum Op {
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

/// One CRUD entry: the SDK's `CrudEntry.toJSON()` (`type`, `op_id`, `tx_id`),
/// the reference write contract (`table`, `transaction_id`, `op_data`,
/// `previous_values`) or the SDKs' CrudEntry property names (`clientId`,
/// `transactionId`, `opData`, `previousValues`). `null` reads as absent. Any
/// other member rejects the entry with `unknown_field`.
#[derive(ToSchema, serde::Serialize)]
pub struct Entry {
    /// Aliases `opId`, `clientId`.
    pub op_id: Option<i64>,
    pub op: Op,
    /// The table (alias `table`).
    #[serde(rename = "type")]
    #[schema(min_length = 1)]
    pub table: String,
    /// The row id.
    #[schema(min_length = 1)]
    pub id: String,
    /// Aliases `txId`, `transaction_id`, `transactionId`.
    pub tx_id: Option<i64>,
    /// Column values (aliases `op_data`, `opData`); absent for DELETE.
    pub data: Option<BTreeMap<String, Value>>,
    /// Previous values, when the client tracks them (aliases
    /// `previous_values`, `previousValues`); used for delta columns.
    pub old: Option<BTreeMap<String, Value>>,
    /// The SDK's `metadata` string.
    pub metadata: Option<Value>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct ClientTransaction {
    /// Aliases `transactionId`, `tx_id`, `txId`.
    pub transaction_id: Option<i64>,
    pub crud: Vec<Entry>,
}

/// An upload batch: `batch` (flat, the SDK's `getCrudBatch()`) or
/// `transactions` (grouped, one atomic unit each).
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum UploadBatch {
    Flat(FlatBatch),
    Grouped(GroupedBatch),
}

#[derive(ToSchema, serde::Serialize)]
pub struct FlatBatch {
    /// Entries; consecutive entries with one `tx_id` form one atomic unit.
    pub batch: Vec<Entry>,
    /// Enables exactly-once (alias `clientId`; or the `PowerSync-Client-Id` header).
    pub client_id: Option<String>,
}

/// The reference write contract's request; answered with
/// `TransactionsReport`. `on_fatal_error` (older connectors) is ignored;
/// other unknown members are a 400.
#[derive(ToSchema, serde::Serialize)]
pub struct GroupedBatch {
    pub transactions: Vec<ClientTransaction>,
    /// Enables exactly-once (alias `clientId`; or the `PowerSync-Client-Id` header).
    pub client_id: Option<String>,
}

/// The Node demo's single-operation body.
#[derive(ToSchema, serde::Serialize)]
pub struct SingleOperation {
    pub table: String,
    /// Column values including `id`.
    pub data: BTreeMap<String, Value>,
}

#[derive(ToSchema, serde::Serialize)]
pub enum EntryStatus {
    #[serde(rename = "applied")]
    Applied,
    #[serde(rename = "duplicate")]
    Duplicate,
    #[serde(rename = "conflict")]
    Conflict,
    #[serde(rename = "rejected")]
    Rejected,
}

#[derive(ToSchema, serde::Serialize)]
pub struct EntryResult {
    pub op_id: Option<i64>,
    pub table: String,
    pub id: String,
    pub status: EntryStatus,
    /// Why, e.g. `stale_version`, `check_violation`, `transaction_rejected`.
    pub code: Option<String>,
    pub message: Option<String>,
    pub constraint: Option<String>,
    pub column: Option<String>,
}

/// What a batch did. `200` whatever each entry's outcome.
// No other members: that is what tells it from a `TransactionsReport` (which
// adds `entries`) when both have empty lists.
#[derive(ToSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// Every entry whose status is not `applied`, in request order.
    pub results: Vec<EntryResult>,
}

/// The answer to an upload: `Report` for the `batch` shape and the
/// single-row routes, `TransactionsReport` for the `transactions` shape.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum UploadReport {
    PerEntry(Report),
    PerTransaction(TransactionsReport),
}

/// What a `transactions`-shaped batch did: the reference write contract's
/// per-transaction `results` and uplink's report.
#[derive(ToSchema, serde::Serialize)]
pub struct TransactionsReport {
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// One per client transaction, in request order.
    pub results: Vec<TransactionResult>,
    /// Every entry whose status is not `applied`, in request order.
    pub entries: Vec<EntryResult>,
}

#[derive(ToSchema, serde::Serialize)]
pub enum TransactionStatus {
    #[serde(rename = "success")]
    Success,
    /// Rolled back and dead-lettered; the client completes it.
    #[serde(rename = "fatal_error")]
    FatalError,
}

#[derive(ToSchema, serde::Serialize)]
pub struct TransactionResult {
    pub status: TransactionStatus,
    /// `false`: uplink keeps the rejected transaction as a dead letter.
    pub requires_client_handling: Option<bool>,
    pub message: Option<String>,
    pub failed_operation: Option<FailedOperation>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct FailedOperation {
    /// uplink's per-entry code, e.g. `foreign_key_violation`, `unknown_field`.
    pub error_code: String,
    pub message: String,
    /// The entry at fault, zero-based within its transaction.
    pub operation_index: u64,
    /// `table`, `id`, and `constraint` / `column` when known.
    pub details: BTreeMap<String, String>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct CheckpointRequest {
    /// Alias `clientId`; or the `PowerSync-Client-Id` header.
    pub client_id: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Checkpoint {
    /// The new checkpoint, as a decimal string.
    #[schema(example = "3")]
    pub checkpoint: String,
}

/// Body of `POST /api/attachments/upload-url`.
#[derive(ToSchema, serde::Serialize)]
pub struct UploadUrlRequest {
    /// Client-chosen id (letters, digits, `-`, `_`); generated when absent.
    pub id: Option<String>,
    /// Aliases `fileName`, `file_name`; only its extension is used.
    pub filename: String,
    /// Aliases `content_type`, `mediaType`.
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    /// Bytes; signed into the URL when given. Alias `contentLength`.
    pub size: Option<u64>,
    /// Base64 or hex SHA-256 of the bytes; signed into the URL when given.
    #[serde(rename = "checksumSha256")]
    pub checksum_sha256: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadUrlResponse {
    pub id: String,
    pub key: String,
    /// Send the bytes here with `method` and exactly these `headers`.
    pub upload_url: String,
    #[schema(example = "PUT")]
    pub method: String,
    pub headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrlResponse {
    pub id: String,
    pub download_url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub content_type: String,
    pub size: Option<u64>,
}

#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResponse {
    pub id: String,
    pub key: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256, when the upload declared one.
    pub sha256: Option<String>,
}

/// A rejected client transaction kept for an operator.
#[derive(ToSchema, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub user_id: String,
    pub client_id: Option<String>,
    pub tx_id: Option<i64>,
    /// The rejection code of the entry that caused it.
    pub code: String,
    pub sqlstate: Option<String>,
    pub constraint_name: Option<String>,
    pub column_name: Option<String>,
    pub message: String,
    pub failed_op_id: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub replayed_at: Option<String>,
    /// `applied`, or why the last replay failed.
    pub replay_outcome: Option<String>,
    /// The transaction's entries, in the SDK's shape.
    pub entries: Vec<BTreeMap<String, Value>>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(ToSchema, serde::Serialize)]
pub enum ReplayOutcome {
    #[serde(rename = "applied")]
    Applied,
    #[serde(rename = "rejected")]
    Rejected,
}

/// A replay's outcome with the write path's report of the entries.
#[derive(ToSchema, serde::Serialize)]
pub struct ReplayResult {
    pub outcome: ReplayOutcome,
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub results: Vec<EntryResult>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Reloaded {
    pub reloaded: bool,
}

/// A write that lost to the server's version (`on_conflict: record`), as
/// stored in `write_conflicts` (the PowerSync docs' conflict table).
#[derive(ToSchema, serde::Serialize)]
pub struct Conflict {
    /// A uuid.
    pub id: String,
    pub table_name: String,
    pub row_id: String,
    /// Why, e.g. `stale_version`.
    pub conflict_type: String,
    /// The values the client sent.
    pub client_data: Value,
    /// The row as the server had it.
    pub server_data: Option<Value>,
    pub resolved: bool,
    pub user_id: String,
    pub client_id: Option<String>,
    pub op_id: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub resolved_at: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct ConflictList {
    pub conflicts: Vec<Conflict>,
}
