//! `ConfigError`: a configuration problem, naming the key it concerns.

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
