//! Integration tests: the real server over real HTTP, a fresh Postgres database per test.

mod config;
mod errors;
mod health;
mod helpers;
mod shutdown;
