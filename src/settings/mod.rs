//! Typed settings, loaded in layers and validated before anything starts.
//!
//! Layers, later wins: `config/base.yaml` ← `config/{environment}.yaml` ←
//! `--config FILE` ← `UPLINK__SECTION__KEY` environment variables (and
//! `DATABASE_URL` for `database.url`).
//!
//! This module gathers every feature's settings section, so it sits above
//! the features (the process layer); the sections import the shared types
//! from `config`, never from here: that keeps imports one-way.

mod explain;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attachments::settings::AttachmentSettings;
use crate::auth::settings::{AuthSettings, IdentityMode};
use crate::config::{
    AdminSettings, ConfigError, DatabaseKind, DatabaseSettings, Environment, LogSettings, Secret,
    ServerSettings,
};
use crate::db;
use crate::limits::cors::validate_cors_origins;
use crate::limits::settings::LimitSettings;
use crate::metrics::MetricsSettings;
use crate::upload::settings::WriteSettings;

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
    pub auth: AuthSettings,
    #[serde(default)]
    pub write: WriteSettings,
    #[serde(default)]
    pub attachments: AttachmentSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub limits: LimitSettings,
}

fn default_environment() -> Environment {
    Environment::Development
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
        let settings = Self::load_unchecked(extra_file)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Like `load`, for commands that never touch the database
    /// (`uplink token`): `database.url` may be unset.
    pub fn load_without_database(extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        let settings = Self::load_unchecked(extra_file)?;
        settings.validate_with(false)?;
        Ok(settings)
    }

    fn load_unchecked(extra_file: Option<&Path>) -> Result<Self, ConfigError> {
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
        let settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(explain::explain)?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges, combinations, production rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(true)
    }

    fn validate_with(&self, require_url: bool) -> Result<(), ConfigError> {
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
            None if !require_url => {}
            None => {
                return Err(ConfigError::invalid(
                    "database.url",
                    "is not set (set it in a config file, UPLINK__DATABASE__URL or DATABASE_URL)",
                ));
            }
            Some(url) => {
                if DatabaseKind::of_url(url.expose()).is_none() {
                    return Err(ConfigError::invalid(
                        "database.url",
                        "must be a postgres://, postgresql://, mysql:// or mariadb:// URL",
                    ));
                }
            }
        }
        self.refuse_what_the_database_lacks()?;
        if let Some(name) = &self.database.uplink_schema {
            if !crate::db::own::valid_name(name) {
                return Err(ConfigError::invalid(
                    "database.uplink_schema",
                    "must be a lowercase name of letters, digits and `_` (up to 63 characters)",
                ));
            }
            // Where the app's tables have a schema of their own to share.
            if db::capabilities::of(self.database_kind()).schemas && *name == self.write.schema {
                return Err(ConfigError::invalid(
                    "database.uplink_schema",
                    "must differ from write.schema: uplink's tables are kept apart from the app's",
                ));
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
        validate_cors_origins(&self.server.cors_origins)?;
        if self.auth.identity.mode == IdentityMode::Dev
            && self.server.cors_origins.iter().any(|o| o == "*")
        {
            return Err(ConfigError::invalid(
                "server.cors_origins",
                "`*` is refused with auth.identity.mode `dev`: any web page a browser opens could \
                 get a token for any user and write as them; list the app's origins \
                 (e.g. http://localhost:5173)",
            ));
        }
        self.limits.validate()?;
        self.metrics.validate(self.server.port)?;
        self.auth.validate(self.environment)?;
        self.write.validate()?;
        let parameters = db::capabilities::of(self.database_kind()).parameters;
        self.attachments.validate(self.environment, parameters)?;
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

    /// The database `database.url` names (Postgres until validated).
    pub fn database_kind(&self) -> DatabaseKind {
        DatabaseKind::of_url(self.database_url()).unwrap_or_default()
    }

    /// Refuses, by key, what the configured database lacks (see
    /// `db::capabilities`) rather than ignoring it.
    fn refuse_what_the_database_lacks(&self) -> Result<(), ConfigError> {
        let can = db::capabilities::of(self.database_kind());
        let unsupported = |key: String, why: &str| {
            Err(ConfigError::invalid(
                key,
                format!("is not supported with a {} database: {why}", can.name),
            ))
        };
        if self.database.rls.is_some() && !can.row_level_security {
            return unsupported(
                "database.rls".into(),
                "it has no row-level security; use owner_column policies",
            );
        }
        if self.limits.max_json_depth > can.max_json_depth {
            return unsupported(
                "limits.max_json_depth".into(),
                &format!(
                    "above {}: uplink keeps rejected entries there as JSON, which MariaDB \
                     refuses nested deeper; set at most that",
                    can.max_json_depth
                ),
            );
        }
        if self.write.schema != "public" && !can.schemas {
            return unsupported(
                "write.schema".into(),
                "it has no schemas inside a database: the app's tables are those of the URL's \
                 database; leave it unset",
            );
        }
        Ok(())
    }
}
