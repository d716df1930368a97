//! Tokens already verified, by their SHA-256. A device sends the same token
//! with every request for its lifetime, and checking its signature each time
//! was a sixth of uplink's instructions per upload. An entry holds until the
//! token's `exp` (with the clock leeway), and lives with the key set it was
//! verified against: a key reload starts an empty cache, so a token of a
//! retired key is checked (and refused) again.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::user::AuthUser;
use super::verify::LEEWAY_SECS;

/// Tokens remembered at most; at the limit expired ones go, and if none
/// had, all (the next requests verify again).
const CAPACITY: usize = 4096;

/// A token's cache key.
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Verified>>,
}

struct Verified {
    user: AuthUser,
    /// Last second (Unix time) the token is accepted: `exp` plus the leeway.
    usable_until: i64,
}

impl VerifiedTokens {
    /// The user of a token verified before and still unexpired at `now`.
    pub fn get(&self, token: &TokenDigest, now: i64) -> Option<AuthUser> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&token.0)
            .filter(|verified| now <= verified.usable_until)
            .map(|verified| verified.user.clone())
    }

    /// Remembers a token just verified (its claims carry a numeric `exp`:
    /// verification requires one).
    pub fn insert(&self, token: TokenDigest, user: &AuthUser, now: i64) {
        let Some(exp) = user.claims().get("exp").and_then(Value::as_f64) else {
            return;
        };
        let usable_until = exp as i64 + LEEWAY_SECS as i64;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, verified| now <= verified.usable_until);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let user = user.clone();
        entries.insert(token.0, Verified { user, usable_until });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(exp: i64) -> AuthUser {
        AuthUser::new("alice".into(), json!({"sub": "alice", "exp": exp}))
    }

    #[test]
    fn a_token_is_remembered_until_its_expiry_and_leeway() {
        let cache = VerifiedTokens::default();
        cache.insert(TokenDigest::of("t"), &user(1_000), 900);

        assert!(cache.get(&TokenDigest::of("t"), 1_000).is_some());
        assert!(cache.get(&TokenDigest::of("t"), 1_030).is_some());
        assert!(cache.get(&TokenDigest::of("t"), 1_031).is_none());
        assert!(cache.get(&TokenDigest::of("other"), 900).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first() {
        let cache = VerifiedTokens::default();
        cache.insert(TokenDigest::of("live"), &user(5_000), 0);
        for i in 1..CAPACITY {
            cache.insert(TokenDigest::of(&format!("old{i}")), &user(10), 0);
        }
        cache.insert(TokenDigest::of("new"), &user(5_000), 100);

        assert!(cache.get(&TokenDigest::of("live"), 100).is_some());
        assert!(cache.get(&TokenDigest::of("new"), 100).is_some());
        assert_eq!(cache.entries.lock().unwrap().len(), 2);
    }
}
