//! Schemas of admin answers no Rust type carries: `reloaded` and the
//! conflict list (built with `json!`), and a replay's result (see there).

#![allow(dead_code)] // read only by the schema derive

use utoipa::ToSchema;

#[derive(ToSchema)]
pub struct Reloaded {
    pub reloaded: bool,
}

#[derive(ToSchema)]
pub struct ConflictList {
    pub conflicts: Vec<crate::store::conflicts::Conflict>,
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
