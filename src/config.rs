//! Typed settings, loaded in layers and validated before anything starts.
//!
//! Layers, later wins: `config/base.yaml` ← `config/{environment}.yaml` ←
//! `--config FILE` ← `UPLINK__SECTION__KEY` environment variables (and
//! `DATABASE_URL` for `database.url`).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use crate::{attachments, auth, upload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("UPLINK_ENVIRONMENT").as_deref() {
            Err(_) | Ok("") | Ok("development") | Ok("dev") => Ok(Self::Development),
            Ok("production") | Ok("prod") => Ok(Self::Production),
            Ok(other) => Err(ConfigError::invalid(
                "environment",
                format!("UPLINK_ENVIRONMENT is `{other}`; use `development` or `production`"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }

    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

/// A secret from configuration: never printed, serialized as a placeholder.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Set from `UPLINK_ENVIRONMENT`, not from the files.
    #[serde(default = "default_environment")]
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub auth: auth::AuthSettings,
    #[serde(default)]
    pub write: upload::WriteSettings,
    #[serde(default)]
    pub attachments: attachments::AttachmentSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub metrics: crate::metrics::MetricsSettings,
    #[serde(default)]
    pub limits: crate::limits::LimitSettings,
}

fn default_environment() -> Environment {
    Environment::Development
}

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

/// A configuration problem, naming the key it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where `config/` lives: `UPLINK_CONFIG_DIR`, else `./config`, else next to the crate.
pub fn config_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("UPLINK_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("config");
    if local.join("base.yaml").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

impl Settings {
    /// Loads every layer and validates the result.
    pub fn load(extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        let environment = Environment::from_env()?;
        let dir = config_dir();
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("base.yaml")).required(true))
            .add_source(
                config::File::from(dir.join(format!("{}.yaml", environment.as_str())))
                    .required(false),
            );
        if let Some(file) = extra_file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("UPLINK")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("auth.audience")
                .with_list_parse_key("attachments.allowed_content_types")
                .with_list_parse_key("server.cors_origins")
                .try_parsing(true),
        );
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
            && std::env::var("UPLINK__DATABASE__URL").is_err()
        {
            builder = builder.set_override("database.url", url)?;
        }
        builder = builder.set_override("environment", environment.as_str())?;
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges, combinations, production rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.body_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "server.body_timeout",
                "must be greater than zero",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.database.acquire_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "database.acquire_timeout",
                "must be greater than zero",
            ));
        }
        match &self.database.url {
            None => {
                return Err(ConfigError::invalid(
                    "database.url",
                    "is not set (set it in a config file, UPLINK__DATABASE__URL or DATABASE_URL)",
                ));
            }
            Some(url) => {
                if !(url.expose().starts_with("postgres://")
                    || url.expose().starts_with("postgresql://"))
                {
                    return Err(ConfigError::invalid(
                        "database.url",
                        "must be a postgres:// or postgresql:// URL",
                    ));
                }
            }
        }
        if let Some(rls) = &self.database.rls
            && rls.role.trim().is_empty()
        {
            return Err(ConfigError::invalid(
                "database.rls.role",
                "must name a role",
            ));
        }
        if let Some(hash) = &self.admin.api_key_sha256
            && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError::invalid(
                "admin.api_key_sha256",
                "must be 64 hex characters (the SHA-256 of the admin key)",
            ));
        }
        crate::limits::validate_cors_origins(&self.server.cors_origins)?;
        self.limits.validate()?;
        self.auth.validate(self.environment)?;
        self.write.validate()?;
        self.attachments.validate(self.environment)?;
        Ok(())
    }

    /// Allowed settings that weaken security, as (key, why): logged at
    /// start-up, printed by `check-config`.
    pub fn warnings(&self) -> Vec<(String, String)> {
        self.auth.warnings(self.environment)
    }

    pub fn database_url(&self) -> &str {
        self.database.url.as_ref().map(Secret::expose).unwrap_or("")
    }
}
