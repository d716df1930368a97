//! Integration tests: the real server over real HTTP, a fresh Postgres database per test.

mod admin;
mod attachments;
mod attachments_support;
mod auth;
mod auth_keys;
mod auth_upstream;
mod bench;
mod config;
mod deployment;
mod docs;
mod errors;
mod health;
mod helpers;
mod hostile;
mod hostile_attachments;
mod limits;
mod metrics;
mod openapi;
mod policies;
mod reliability;
mod reliability_checker;
mod shutdown;
mod token_attacks;
mod upload;
mod upload_fixtures;
mod upload_properties;
