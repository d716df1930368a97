//! Integration tests: the real server over real HTTP, a fresh Postgres database per test.
//! Shared code lives in `support/`; the test files import only from there.

mod admin;
mod attachment_replay;
mod attachments;
mod auth;
mod auth_keys;
mod auth_upstream;
mod bench;
mod bodies;
mod config;
mod deployment;
mod docs;
mod error_texts;
mod errors;
mod health;
mod hostile;
mod hostile_attachments;
mod limits;
mod metrics;
mod mysql;
mod openapi;
mod policies;
mod policy_properties;
mod reliability;
mod shutdown;
mod startup;
mod support;
mod token_attacks;
mod upload;
mod upload_fixtures;
mod upload_properties;
mod wire_contracts;
