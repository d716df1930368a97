//! Code the test files share; they import from here and never from each
//! other.

pub mod app;
pub mod attachments;
pub mod backend;
pub mod compose;
pub mod database;
pub mod dockerfile;
pub mod fixtures;
pub mod haproxy;
pub mod multipart;
pub mod mysql;
pub mod mysql_relay;
pub mod policies;
pub mod process;
pub mod relay;
pub mod reliability_checker;
pub mod repo;
pub mod responses;
pub mod s3_parts;
pub mod statement_relay;
