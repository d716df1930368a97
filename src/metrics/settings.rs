//! `metrics:` configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// The metrics listener's address: this machine only unless set (the
    /// image sets every interface; the port is reachable only where it is
    /// published).
    pub host: IpAddr,
    /// The metrics listener's port, never the API's: metrics are for the
    /// operator's scraper, not the internet. `0` picks a free port.
    pub port: u16,
    /// How often the gauges read from the database are refreshed.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 9464,
            refresh_interval: Duration::from_secs(30),
        }
    }
}

impl MetricsSettings {
    pub fn validate(&self, server_port: u16) -> Result<(), ConfigError> {
        if self.enabled && self.port != 0 && self.port == server_port {
            return Err(ConfigError::invalid(
                "metrics.port",
                "must differ from server.port: metrics are served on a listener of their own",
            ));
        }
        if self.refresh_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "metrics.refresh_interval",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}
