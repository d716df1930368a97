//! Schemas no Rust type of the write path carries: the checkpoint body
//! (built with `json!`), the single-row write's body (read member by
//! member) and the answer to an upload (one of two report types, chosen by
//! the request's shape).

#![allow(dead_code)] // read only by the schema derive

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

#[derive(ToSchema)]
pub struct Checkpoint {
    /// The new checkpoint, as a decimal string.
    #[schema(example = "3")]
    pub checkpoint: String,
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
