//! Credentials: signing keys, the token endpoint, JWKS, and verifying
//! incoming tokens. (Placeholder: filled in by the credentials issue.)

use actix_web::web;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Environment, Settings};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthSettings {}

impl AuthSettings {
    pub fn validate(&self, _environment: Environment) -> Result<(), ConfigError> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Auth {}

impl Auth {
    pub async fn build(_settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

pub fn configure(_cfg: &mut web::ServiceConfig) {}
