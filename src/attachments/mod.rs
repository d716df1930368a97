//! Attachments: signed upload/download URLs. (Placeholder.)

use actix_web::web;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::config::{ConfigError, Environment, Settings};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AttachmentSettings {}

impl AttachmentSettings {
    pub fn validate(&self, _environment: Environment) -> Result<(), ConfigError> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Attachments {}

impl Attachments {
    pub async fn build(_settings: &Settings, _db: &PgPool) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

pub fn configure(_cfg: &mut web::ServiceConfig) {}
