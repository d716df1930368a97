//! The sections of `Settings` that no capability module owns: server,
//! database, log and admin.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Largest accepted request body, in bytes (after decompression).
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once uplink reads it.
    #[serde(with = "humantime_serde", default = "default_body_timeout")]
    pub body_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Worker threads; 0 means one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// Where uplink keeps local state (generated dev keys, local attachments).
    pub data_dir: PathBuf,
    /// Origins browsers may call uplink from (CORS); empty = none.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Which database the URL names: uplink speaks to each with its own
/// backend (`upload::postgres`, `upload::mysql`; see `upload::backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatabaseKind {
    #[default]
    Postgres,
    /// MySQL 8 or MariaDB 10.6+ (`mysql://` or `mariadb://`).
    MySql,
}

impl DatabaseKind {
    /// The kind of database a URL names, by its scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0;
        match scheme {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Option<Secret>,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    pub migrate_on_start: bool,
    /// Where uplink keeps its own tables: a schema of the app's database on
    /// Postgres (default `uplink`), a database beside the app's on MySQL
    /// (default `<app database>_uplink`). See `db::own`.
    #[serde(default)]
    pub uplink_schema: Option<String>,
    /// Row-level security: run the app's writes as this role, with the
    /// PostgREST claim settings (`request.jwt.claims`, `request.jwt.claim.sub`).
    #[serde(default)]
    pub rls: Option<RlsSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RlsSettings {
    /// A role uplink's database user may `SET ROLE` to (e.g. `authenticated`).
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON in production, human-readable in development.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `uplink=debug,info`; `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Hex SHA-256 of the admin API key; the admin API is off when unset.
    pub api_key_sha256: Option<String>,
}
