//! `Environment`: development or production, from `UPLINK_ENVIRONMENT`.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

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
