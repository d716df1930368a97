//! The `limits:` configuration section: JSON depth, forwarded addresses and
//! the rate limits' token buckets.

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Request bodies nested deeper than this are refused (400).
    pub max_json_depth: usize,
    /// Take the client address for per-IP limits from `X-Forwarded-For` /
    /// `Forwarded` (only behind a proxy that sets them).
    pub trust_forwarded_for: bool,
    pub token_per_user: RateSettings,
    pub token_per_ip: RateSettings,
    pub upload_per_user: RateSettings,
    /// Upload requests of one user applied at once (per replica); more
    /// wait for a slot, up to 5 s, then get 429. 0 turns the cap off.
    pub upload_in_flight_per_user: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_json_depth: 20,
            trust_forwarded_for: false,
            token_per_user: RateSettings {
                per_second: 1.0,
                burst: 20,
            },
            token_per_ip: RateSettings {
                per_second: 5.0,
                burst: 60,
            },
            upload_per_user: RateSettings {
                per_second: 20.0,
                burst: 100,
            },
            upload_in_flight_per_user: 4,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
/// `per_second: 0` turns the limit off.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateSettings {
    pub per_second: f64,
    pub burst: u32,
}

impl LimitSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.max_json_depth) {
            return Err(ConfigError::invalid(
                "limits.max_json_depth",
                "must be between 1 and 1000",
            ));
        }
        for (key, rate) in [
            ("limits.token_per_user", self.token_per_user),
            ("limits.token_per_ip", self.token_per_ip),
            ("limits.upload_per_user", self.upload_per_user),
        ] {
            if !rate.per_second.is_finite() || rate.per_second < 0.0 {
                return Err(ConfigError::invalid(
                    format!("{key}.per_second"),
                    "must be a number ≥ 0 (0 turns the limit off)",
                ));
            }
            if rate.per_second > 0.0 && rate.burst == 0 {
                return Err(ConfigError::invalid(
                    format!("{key}.burst"),
                    "must be at least 1 when the limit is on",
                ));
            }
        }
        Ok(())
    }
}
