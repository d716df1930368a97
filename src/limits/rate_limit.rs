//! Per-user and per-IP rate limits: token buckets, in process (so per
//! replica).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, web};

use super::in_flight::{InFlight, Slot};
use super::settings::{LimitSettings, RateSettings};
use crate::error::ApiError;

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
    uploads_in_flight: InFlight,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            inner: Arc::new(LimitsInner {
                trust_forwarded_for: settings.trust_forwarded_for,
                token_per_user: RateLimiter::new(settings.token_per_user),
                token_per_ip: RateLimiter::new(settings.token_per_ip),
                upload_per_user: RateLimiter::new(settings.upload_per_user),
                uploads_in_flight: InFlight::new(settings.upload_in_flight_per_user),
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

/// One of the user's upload slots (`limits.upload_in_flight_per_user`),
/// held while the batch is applied.
pub async fn upload_slot(req: &HttpRequest, user_id: &str) -> Result<Option<Slot>, ApiError> {
    match Limits::of(req) {
        Some(limits) => limits.inner.uploads_in_flight.acquire(user_id).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
