//! `Auth`: the state the credential routes and `AuthUser` share: the
//! signing keys, the token rules and who may get a token.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Map, Value};

use super::alg::KeyAlg;
use super::identity::Identity;
use super::issue;
use super::keyset::KeySet;
use super::settings::AuthSettings;
use super::user::{AuthUser, check_user_id};
use super::verified::{TokenDigest, VerifiedTokens};
use super::verify;
use crate::config::environment::Environment;
use crate::error::ApiError;

/// Everything the credential routes and `AuthUser` need; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    /// Swapped whole by `reload_keys`: a request sees the old set or the
    /// new one, never a mix.
    trust: RwLock<Arc<Trust>>,
    issuer: String,
    audience: Vec<String>,
    powersync_url: String,
    token_ttl: Duration,
    identity: Identity,
    accept_upstream_tokens: bool,
}

/// The signing keys, and the tokens verified against them.
struct Trust {
    keys: Arc<KeySet>,
    verified: VerifiedTokens,
}

impl Trust {
    fn new(keys: KeySet) -> Arc<Self> {
        Arc::new(Self {
            keys: Arc::new(keys),
            verified: VerifiedTokens::default(),
        })
    }
}

impl Auth {
    /// `data_dir` holds the development key (used without `auth.keys`
    /// outside production).
    pub async fn build(
        auth: &AuthSettings,
        environment: Environment,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let keys = KeySet::from_settings(auth, environment, data_dir)?;
        let identity = Identity::build(&auth.identity)?;
        tracing::info!(
            active_kid = %keys.active().kid,
            alg = %keys.active().alg,
            identity = auth.identity.mode.as_str(),
            "credentials ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                trust: RwLock::new(Trust::new(keys)),
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
                powersync_url: auth.powersync_url.clone(),
                token_ttl: auth.token_ttl,
                identity,
                accept_upstream_tokens: auth.accept_upstream_tokens,
            }),
        })
    }

    /// The signing keys now in force.
    pub fn keys(&self) -> Arc<KeySet> {
        self.trust().keys.clone()
    }

    fn trust(&self) -> Arc<Trust> {
        // A poisoned lock still holds a whole key set (it is only replaced).
        self.inner
            .trust
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads `auth.keys` (key files included) and swaps them in, so keys
    /// rotate without a restart. The rest of `auth` is fixed at start-up.
    /// On error the keys in force stay.
    pub fn reload_keys(
        &self,
        auth: &AuthSettings,
        environment: Environment,
        data_dir: &Path,
    ) -> anyhow::Result<()> {
        let keys = KeySet::from_settings(auth, environment, data_dir)?;
        tracing::info!(
            active_kid = %keys.active().kid,
            published = keys.jwks()["keys"].as_array().map_or(0, Vec::len),
            "signing keys reloaded"
        );
        *self
            .inner
            .trust
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Trust::new(keys);
        Ok(())
    }

    /// Who may get a token (`auth.identity.mode`).
    pub(super) fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The PowerSync Service URL returned to devices with each token.
    pub(super) fn powersync_url(&self) -> &str {
        &self.inner.powersync_url
    }

    /// Signs a token for `user_id` with the active key and the configured lifetime.
    pub fn issue(
        &self,
        user_id: &str,
        parameters: Option<&Map<String, Value>>,
    ) -> anyhow::Result<issue::IssuedToken> {
        issue::sign(
            self.keys().active(),
            &self.inner.issuer,
            &self.inner.audience,
            &issue::TokenRequest {
                user_id,
                parameters,
                ttl: self.inner.token_ttl,
            },
        )
    }

    /// Verifies an incoming bearer token: uplink's own, or (when
    /// `auth.accept_upstream_tokens`) the upstream provider's.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser, ApiError> {
        let trust = self.trust();
        let digest = TokenDigest::of(token);
        let now = chrono::Utc::now().timestamp();
        if let Some(user) = trust.verified.get(&digest, now) {
            return Ok(user);
        }
        let header = verify::header(token)?;
        let keys = &trust.keys;
        let own = match &header.kid {
            Some(kid) => keys.contains(kid),
            None => {
                KeyAlg::from_jwt(header.alg).is_some_and(|alg| keys.with_alg(alg).next().is_some())
            }
        };
        if own || !self.inner.accept_upstream_tokens {
            let rules = verify::OwnTokenRules {
                issuer: &self.inner.issuer,
                audience: &self.inner.audience,
                max_lifetime: self.inner.token_ttl,
            };
            let claims = verify::verify_own(keys, &rules, token, &header)?;
            let user_id = verify::require_subject(&claims, "sub")?;
            check_user_id(&user_id)?;
            let user = AuthUser::new(user_id, claims);
            trust.verified.insert(digest, &user, now);
            return Ok(user);
        }
        let upstream = self
            .inner
            .identity
            .upstream()
            .ok_or_else(verify::unknown_key)?;
        let verified = upstream.verify(token, &header).await?;
        // The provider's user id meets the rule the token endpoint applies:
        // it keys uplink's rows, rate limits and attachment keys.
        check_user_id(&verified.user_id)?;
        Ok(AuthUser::new(verified.user_id, verified.claims))
    }
}
