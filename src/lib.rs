//! uplink: the backend for PowerSync apps. See README.md.

pub mod admin;
pub mod attachments;
pub mod auth;
pub mod body;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod settings;
pub mod startup;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod upload;
