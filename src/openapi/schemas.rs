//! The few schemas no Rust type carries; every other schema is derived
//! from the type a handler reads or writes.
//!
//! - Bodies the handlers build with `json!` (health probes, `me`, the JWKS,
//!   the checkpoint, admin's `reloaded` and conflict list): the field lists
//!   here are those of the `json!` calls. Give such a body a type deriving
//!   `ToSchema` and its schema moves next to it.
//! - The single-row write's body, read member by member (no serde type).
//! - The answer to an upload, which is one of two real report types,
//!   chosen by the request's shape, and the answer to a replay (see there).

#![allow(dead_code)] // read only by the schema derive

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

#[derive(ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    #[schema(example = "ok")]
    pub database: String,
    /// `ok`, or `disabled` when attachments are off (`attachments.enabled`).
    #[schema(example = "ok")]
    pub storage: String,
}

/// Public signing keys, for the PowerSync Service's `client_auth.jwks_uri`.
#[derive(ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public JWK; key-type specific members (`x`, `y`, `crv`, `n`, `e`) follow RFC 7517.
#[derive(ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: String,
    pub kid: String,
    #[schema(rename = "use", example = "sig")]
    pub use_: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
}

/// The caller as uplink sees the presented token.
#[derive(ToSchema)]
pub struct Me {
    pub user_id: String,
    /// The verified token's claims.
    pub claims: BTreeMap<String, Value>,
}

#[derive(ToSchema)]
pub struct Checkpoint {
    /// The new checkpoint, as a decimal string.
    #[schema(example = "3")]
    pub checkpoint: String,
}

#[derive(ToSchema)]
pub struct Reloaded {
    pub reloaded: bool,
}

#[derive(ToSchema)]
pub struct ConflictList {
    pub conflicts: Vec<crate::store::conflicts::Conflict>,
}

/// The Node demo's single-operation body.
#[derive(ToSchema)]
pub struct SingleOperation {
    #[schema(min_length = 1)]
    pub table: String,
    /// Column values including `id` (a string, or a number taken as its text).
    #[schema(schema_with = single_operation_data)]
    pub data: BTreeMap<String, Value>,
}

/// An object with a required `id`, any other members the table's columns.
fn single_operation_data() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .min_length(Some(1)),
        )
        .required("id")
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(true),
        ))
        .description(Some(
            "Column values including `id` (a string, or a number taken as its text).",
        ))
        .build()
}

/// The answer to an upload: `Report` for the `batch` shape and the
/// single-row routes, `TransactionsReport` for the `transactions` shape.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum UploadReport {
    PerEntry(crate::upload::report::Report),
    PerTransaction(crate::upload::report::TransactionsReport),
}

/// A replay's outcome with the write path's report of the entries.
// `ReplayOutcome` flattens a `Report` under its `outcome` tag; a schema
// derived from it would combine `Report`, which allows no other member,
// with `outcome`, which no response could then match.
#[derive(ToSchema)]
pub struct ReplayResult {
    pub outcome: ReplayOutcome,
    pub applied: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub results: Vec<crate::upload::report::EntryResult>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReplayOutcome {
    Applied,
    Rejected,
}
