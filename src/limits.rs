//! Protections in front of the handlers: CORS allow-list, per-user and
//! per-IP rate limits (token buckets, in process: per replica), and the JSON
//! nesting-depth scan (applied to request bodies by `crate::body`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::middleware::Condition;
use actix_web::{HttpRequest, web};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::error::ApiError;

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

/// Buckets above this many keys are swept of the full (idle) ones.
const SWEEP_ABOVE: usize = 10_000;

pub struct RateLimiter {
    rate: RateSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate: RateSettings) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let burst = f64::from(self.rate.burst);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            let per_second = self.rate.per_second;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.rate.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.rate.per_second,
            ))
        }
    }
}

/// The application's limiters (shared by all workers).
#[derive(Clone)]
pub struct Limits {
    inner: Arc<LimitsInner>,
}

struct LimitsInner {
    trust_forwarded_for: bool,
    token_per_user: RateLimiter,
    token_per_ip: RateLimiter,
    upload_per_user: RateLimiter,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            inner: Arc::new(LimitsInner {
                trust_forwarded_for: settings.trust_forwarded_for,
                token_per_user: RateLimiter::new(settings.token_per_user),
                token_per_ip: RateLimiter::new(settings.token_per_ip),
                upload_per_user: RateLimiter::new(settings.upload_per_user),
            }),
        }
    }

    fn of(req: &HttpRequest) -> Option<&Self> {
        req.app_data::<web::Data<Self>>().map(|data| data.get_ref())
    }

    fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.inner.trust_forwarded_for
            && let Some(ip) = req
                .connection_info()
                .realip_remote_addr()
                .and_then(parse_ip)
        {
            return Some(ip);
        }
        req.peer_addr().map(|addr| addr.ip())
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Per-IP limit of the token endpoint; call before checking credentials so
/// guessing keys is throttled too.
pub fn check_token_ip(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(limits) = Limits::of(req) else {
        return Ok(());
    };
    let Some(ip) = limits.client_ip(req) else {
        return Ok(());
    };
    limits
        .inner
        .token_per_ip
        .check(&ip.to_string())
        .map_err(too_many)
}

/// Per-user limit of the token endpoint, once the user is known.
pub fn check_token_user(req: &HttpRequest, user_id: &str) -> Result<(), ApiError> {
    match Limits::of(req) {
        Some(limits) => limits.inner.token_per_user.check(user_id).map_err(too_many),
        None => Ok(()),
    }
}

/// Per-user limit of upload requests (each batch is one request).
pub fn check_upload_user(req: &HttpRequest, user_id: &str) -> Result<(), ApiError> {
    match Limits::of(req) {
        Some(limits) => limits
            .inner
            .upload_per_user
            .check(user_id)
            .map_err(too_many),
        None => Ok(()),
    }
}

/// Deepest nesting of arrays and objects in a JSON text, by a byte scan
/// that skips strings (most of a body) with `memchr`. Stops counting once
/// past `limit`. Malformed text is left for the parser to refuse.
pub fn json_depth_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        at += 1;
        match byte {
            b'"' => loop {
                let Some(rest) = body.get(at..) else {
                    return false;
                };
                match memchr::memchr2(b'"', b'\\', rest) {
                    None => return false,
                    Some(found) if rest[found] == b'"' => {
                        at += found + 1;
                        break;
                    }
                    // An escape: skip the escaped byte too.
                    Some(found) => at += found + 2,
                }
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// CORS for browser apps (PowerSync Web SDK): only the configured origins.
/// With none configured the middleware is off: no CORS headers, so browsers
/// refuse cross-origin calls, and requests carrying `Origin` from non-browser
/// clients pass untouched.
pub fn cors(origins: &[String]) -> Condition<Cors> {
    Condition::new(!origins.is_empty(), cors_for(origins))
}

fn cors_for(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("powersync-client-id"),
            header::HeaderName::from_static("x-admin-key"),
            // Browser uploads to uplink's local attachment store send these.
            header::HeaderName::from_static("x-uplink-signature"),
            header::HeaderName::from_static("x-amz-checksum-sha256"),
        ])
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(3600);
    for origin in origins {
        if origin == "*" {
            cors = cors.allow_any_origin().send_wildcard();
        } else {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// `server.cors_origins`: exact origins (`https://app.example.com`) or `*`.
pub fn validate_cors_origins(origins: &[String]) -> Result<(), ConfigError> {
    for origin in origins {
        if origin == "*" {
            continue;
        }
        let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
            && !origin.ends_with('/')
            && header::HeaderValue::from_str(origin).is_ok()
            && origin
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !ok {
            return Err(ConfigError::invalid(
                "server.cors_origins",
                format!(
                    "`{origin}` is not an origin: use scheme://host[:port] without a path, or *"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_and_ignores_brackets_in_strings() {
        let twenty = format!("{}{}", "[".repeat(20), "]".repeat(20));
        let twenty_one = format!("{}{}", "[".repeat(21), "]".repeat(21));
        assert!(!json_depth_exceeds(twenty.as_bytes(), 20));
        assert!(json_depth_exceeds(twenty_one.as_bytes(), 20));
        let in_string = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(50), "{".repeat(50));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 20));
        // The string ends after an escaped backslash; the nesting after it counts.
        let after_escape = format!(
            r#"{{"a": "x\\", "b": {}{}}}"#,
            "[".repeat(20),
            "]".repeat(20)
        );
        assert!(json_depth_exceeds(after_escape.as_bytes(), 20));
        assert!(!json_depth_exceeds(after_escape.as_bytes(), 21));
    }

    #[test]
    fn bucket_allows_the_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(RateSettings {
            per_second: 1.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
        }
        let wait = limiter
            .check("alice")
            .expect_err("fourth request is over the burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.check("bob").is_ok(), "buckets are per key");
    }
}
