//! The upstream identity provider (jwt mode): its tokens are verified
//! against its JWKS, fetched over HTTP and cached. An unknown `kid` triggers
//! a refresh, at most once per `min_refresh_interval`, so a flood of forged
//! tokens cannot make uplink hammer the provider.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jsonwebtoken::{DecodingKey, Header};
use serde_json::{Map, Value};

use super::alg::KeyAlg;
use super::jwk::decoding_key_from_public_jwk;
use super::settings::JwtIdentitySettings;
use super::verify;
use crate::error::{ApiError, ErrorCode};

/// Largest JWKS document accepted from a provider.
const MAX_JWKS_BYTES: usize = 1 << 20;

pub struct Upstream {
    client: reqwest::Client,
    jwks_uri: String,
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<KeyAlg>,
    user_claim: String,
    parameters: BTreeMap<String, String>,
    cache_ttl: Duration,
    min_refresh_interval: Duration,
    cache: RwLock<Cache>,
    /// Serialises fetches so concurrent misses make one request.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<ProviderKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

#[derive(Clone)]
struct ProviderKey {
    kid: Option<String>,
    /// The JWK's `alg` when it names one; otherwise any pinned algorithm of its type.
    alg: Option<KeyAlg>,
    kty: String,
    decoding: DecodingKey,
}

impl ProviderKey {
    fn accepts(&self, alg: KeyAlg) -> bool {
        let family = match alg {
            KeyAlg::EdDsa => "OKP",
            KeyAlg::Es256 => "EC",
            KeyAlg::Rs256 => "RSA",
            KeyAlg::Hs256 => return false,
        };
        self.kty == family && self.alg.is_none_or(|a| a == alg)
    }
}

/// A verified provider token.
pub struct Verified {
    pub user_id: String,
    pub claims: Value,
    /// The configured claims, renamed, for the PowerSync token's `parameters`.
    pub parameters: Map<String, Value>,
}

impl Upstream {
    pub fn new(settings: &JwtIdentitySettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .build()
            .context("Failed to build the HTTP client for the provider's JWKS")?;
        Ok(Self {
            client,
            jwks_uri: settings.jwks_uri.clone().unwrap_or_default(),
            issuer: settings.issuer.clone().unwrap_or_default(),
            audience: settings.audience.clone(),
            algorithms: settings.algorithms.clone(),
            user_claim: settings.user_claim.clone(),
            parameters: settings.parameters.clone(),
            cache_ttl: settings.cache_ttl,
            min_refresh_interval: settings.min_refresh_interval,
            cache: RwLock::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn verify(&self, token: &str, header: &Header) -> Result<Verified, ApiError> {
        let alg = KeyAlg::from_jwt(header.alg)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidToken,
                    "the token's algorithm is not accepted for the identity provider",
                )
            })?;
        let candidates = self.keys_for(header.kid.as_deref(), alg).await?;
        let validation = verify::validation(alg, Some(&self.issuer), &self.audience);
        let mut last = None;
        for key in &candidates {
            match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
                Ok(data) => return self.accept(data.claims),
                Err(err) => last = Some(err),
            }
        }
        Err(last
            .map(verify::map_error)
            .unwrap_or_else(verify::unknown_key))
    }

    fn accept(&self, claims: Value) -> Result<Verified, ApiError> {
        let user_id = verify::require_subject(&claims, &self.user_claim)?;
        verify::require_issued_in_past(&claims)?;
        let parameters = self
            .parameters
            .iter()
            .filter_map(|(name, claim)| claims.get(claim).map(|v| (name.clone(), v.clone())))
            .collect();
        Ok(Verified {
            user_id,
            claims,
            parameters,
        })
    }

    /// Keys that may have signed a token with this `kid` and `alg`, fetching
    /// the JWKS when the cache is empty or stale, or (rate-limited) when the
    /// kid is unknown.
    async fn keys_for(&self, kid: Option<&str>, alg: KeyAlg) -> Result<Vec<ProviderKey>, ApiError> {
        let (found, fresh, may_refresh) = self.lookup(kid, alg);
        if !found.is_empty() && fresh {
            return Ok(found);
        }
        if !may_refresh {
            return self.settle(found);
        }
        let _guard = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (found, fresh, may_refresh) = self.lookup(kid, alg);
        if !found.is_empty() && fresh {
            return Ok(found);
        }
        if !may_refresh {
            return self.settle(found);
        }
        match self.fetch().await {
            Ok(keys) => self.store(keys),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot fetch the identity provider's JWKS");
                self.note_attempt();
            }
        }
        let (found, _, _) = self.lookup(kid, alg);
        self.settle(found)
    }

    /// The answer without fetching: a stale key beats no key while the
    /// provider is unreachable; no keys at all is transient (503).
    fn settle(&self, found: Vec<ProviderKey>) -> Result<Vec<ProviderKey>, ApiError> {
        if !found.is_empty() {
            return Ok(found);
        }
        if !self.ever_fetched() {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the identity provider's keys cannot be fetched; try again".to_owned(),
            ));
        }
        Err(verify::unknown_key())
    }

    /// (matching keys, cache is fresh, an unknown-kid refresh is allowed now)
    fn lookup(&self, kid: Option<&str>, alg: KeyAlg) -> (Vec<ProviderKey>, bool, bool) {
        let cache = match self.cache.read() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        let found = cache
            .keys
            .iter()
            .filter(|k| k.accepts(alg) && (kid.is_none() || k.kid.as_deref() == kid))
            .cloned()
            .collect();
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.cache_ttl);
        let may_refresh = cache
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.min_refresh_interval);
        (found, fresh, may_refresh)
    }

    fn ever_fetched(&self) -> bool {
        self.cache
            .read()
            .map(|c| c.fetched_at.is_some())
            .unwrap_or(false)
    }

    fn note_attempt(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.last_attempt = Some(Instant::now());
        }
    }

    fn store(&self, keys: Vec<ProviderKey>) {
        let now = Instant::now();
        let mut cache = match self.cache.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.keys = keys;
        cache.fetched_at = Some(now);
        cache.last_attempt = Some(now);
    }

    async fn fetch(&self) -> anyhow::Result<Vec<ProviderKey>> {
        let response = self
            .client
            .get(&self.jwks_uri)
            .header("Accept", "application/json")
            .send()
            .await
            .context("request failed")?;
        if !response.status().is_success() {
            bail!("the JWKS URI answered {}", response.status());
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
        }
        let body = response.bytes().await.context("reading the body failed")?;
        if body.len() > MAX_JWKS_BYTES {
            bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
        }
        let jwks: Value = serde_json::from_slice(&body).context("the JWKS is not JSON")?;
        let Some(list) = jwks.get("keys").and_then(Value::as_array) else {
            bail!("the JWKS has no `keys` array");
        };
        let mut keys = Vec::new();
        for jwk in list {
            if jwk
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            let alg = match jwk.get("alg").and_then(Value::as_str) {
                None => None,
                Some(name) => match KeyAlg::parse(name) {
                    Some(alg) if alg != KeyAlg::Hs256 => Some(alg),
                    _ => continue, // an algorithm uplink does not accept
                },
            };
            match decoding_key_from_public_jwk(jwk) {
                Ok(decoding) => keys.push(ProviderKey {
                    kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
                    alg,
                    kty: jwk
                        .get("kty")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    decoding,
                }),
                Err(err) => tracing::debug!(error = %err, "skipping a provider key"),
            }
        }
        tracing::info!(keys = keys.len(), "fetched the identity provider's JWKS");
        Ok(keys)
    }
}
