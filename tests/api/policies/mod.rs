//! Conflict policies and write authorization, each replayed as the PowerSync
//! docs' scenario with two clients over real HTTP. The shared app and client:
//! support/policies.rs.

mod deltas;
mod field_timestamps;
mod insert_only;
mod misconfiguration;
mod orders;
mod ownership;
mod timestamps;
mod versions;
mod versions_required;
