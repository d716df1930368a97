//! The write path: applies upload batches to Postgres. (Placeholder.)

use actix_web::web;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::config::{ConfigError, Settings};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WriteSettings {}

impl WriteSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Writer {}

impl Writer {
    pub async fn build(_settings: &Settings, _db: &PgPool) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

pub fn configure(_cfg: &mut web::ServiceConfig) {}
