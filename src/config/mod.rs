//! The settings types every layer shares: the leaf sections (server,
//! database, log, admin), secrets, the environment and the settings error.
//! The whole configuration, which gathers every feature's section, is
//! `settings::Settings`, above the features.

pub mod environment;
pub mod error;
pub mod secret;
pub mod sections;

pub use environment::Environment;
pub use error::ConfigError;
pub use secret::Secret;
pub use sections::{
    AdminSettings, DatabaseKind, DatabaseSettings, LogFormat, LogSettings, RlsSettings,
    ServerSettings,
};
