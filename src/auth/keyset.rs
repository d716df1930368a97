//! The configured signing keys: one active (signs), all published.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use jsonwebtoken::DecodingKey;
use serde_json::{Value, json};

use super::alg::KeyAlg;
use super::dev_key;
use super::key_source;
use super::keys::PrivateKey;
use super::settings::AuthSettings;
use super::signer::Signer;
use crate::config::environment::Environment;

pub struct SigningKey {
    pub kid: String,
    pub alg: KeyAlg,
    pub signer: Signer,
    pub decoding: DecodingKey,
}

pub struct KeySet {
    active: Arc<SigningKey>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    /// The JWKS document, rendered once.
    jwks: Value,
}

impl KeySet {
    /// The configured keys, or in development without any, the persisted
    /// development key (generated on first use).
    pub fn from_settings(
        auth: &AuthSettings,
        environment: Environment,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let configured = &auth.keys;
        if configured.is_empty() {
            if environment.is_production() {
                bail!("auth.keys: no signing key is configured (refused in production)");
            }
            let key = dev_key::load_or_create(data_dir)?;
            return Self::new(vec![(key, None, true)]);
        }
        let single = configured.len() == 1;
        let mut loaded = Vec::with_capacity(configured.len());
        for (i, key) in configured.iter().enumerate() {
            let private = key_source::load(key)
                .with_context(|| format!("auth.keys[{i}]: cannot load the key"))?;
            let active = key.active.unwrap_or(single);
            loaded.push((private, key.kid.clone(), active));
        }
        Self::new(loaded)
    }

    /// `(key, explicit kid, active)` for each key.
    pub fn new(keys: Vec<(PrivateKey, Option<String>, bool)>) -> anyhow::Result<Self> {
        let mut by_kid = HashMap::new();
        let mut active = None;
        let mut published = Vec::new();
        for (private, kid, is_active) in keys {
            let kid = kid.unwrap_or_else(|| private.thumbprint());
            let key = Arc::new(SigningKey {
                kid: kid.clone(),
                alg: private.alg(),
                signer: Signer::new(&private)?,
                decoding: private.decoding_key()?,
            });
            if let Some(jwk) = private.public_jwk(&kid) {
                published.push(jwk);
            }
            if by_kid.insert(kid.clone(), key.clone()).is_some() {
                bail!("auth.keys: two keys have the kid `{kid}`");
            }
            if is_active {
                if active.is_some() {
                    bail!("auth.keys: more than one key is active");
                }
                active = Some(key);
            }
        }
        let Some(active) = active else {
            bail!("auth.keys: no key is active");
        };
        Ok(Self {
            active,
            by_kid,
            jwks: json!({ "keys": published }),
        })
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid).map(Arc::as_ref)
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Keys usable for a token without a `kid`: every key of that algorithm.
    pub fn with_alg(&self, alg: KeyAlg) -> impl Iterator<Item = &SigningKey> {
        self.by_kid
            .values()
            .filter(move |k| k.alg == alg)
            .map(Arc::as_ref)
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }
}
