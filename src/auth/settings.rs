//! The `auth:` configuration section and its start-up rules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::alg::KeyAlg;
use super::key_source::{self, KeySettings};
use crate::config::environment::Environment;
use crate::config::error::ConfigError;

/// The PowerSync Service rejects `exp - iat` above a day; its docs recommend
/// an hour at most, which is what uplink enforces for issued tokens.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens; the PowerSync Service requires one to match.
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// The PowerSync Service URL returned to devices with each token.
    pub powersync_url: String,
    /// Lifetime of issued tokens.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Signing keys: exactly one active (signs), all published.
    #[serde(deserialize_with = "list_or_json")]
    pub keys: Vec<KeySettings>,
    pub identity: IdentitySettings,
    /// Accept the upstream provider's tokens (jwt mode) on uplink's own routes.
    pub accept_upstream_tokens: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "uplink".to_owned(),
            audience: vec!["powersync".to_owned()],
            powersync_url: "http://localhost:8080".to_owned(),
            token_ttl: Duration::from_secs(300),
            keys: Vec::new(),
            identity: IdentitySettings::default(),
            accept_upstream_tokens: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    #[default]
    Dev,
    Jwt,
    ApiKey,
}

impl IdentityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    pub mode: IdentityMode,
    pub dev: DevIdentitySettings,
    pub jwt: JwtIdentitySettings,
    pub api_key: ApiKeyIdentitySettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevIdentitySettings {
    /// The user id when the request names none.
    pub default_user_id: String,
}

impl Default for DevIdentitySettings {
    fn default() -> Self {
        Self {
            default_user_id: "dev-user".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtIdentitySettings {
    /// The provider's JWKS URI.
    pub jwks_uri: Option<String>,
    /// Required `iss` of provider tokens.
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty means the audience is not checked
    /// (Clerk session tokens and Cognito access tokens carry none).
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Accepted algorithms (pinned): RS256, ES256, EdDSA.
    #[serde(deserialize_with = "one_or_many")]
    pub algorithms: Vec<KeyAlg>,
    /// The claim holding the user id.
    pub user_claim: String,
    /// PowerSync token parameter name → provider claim name copied into it.
    pub parameters: BTreeMap<String, String>,
    /// How long a fetched JWKS is used before it is fetched again.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Least time between two fetches triggered by an unknown `kid`.
    #[serde(with = "humantime_serde")]
    pub min_refresh_interval: Duration,
    /// Timeout of one JWKS fetch.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
}

impl Default for JwtIdentitySettings {
    fn default() -> Self {
        Self {
            jwks_uri: None,
            issuer: None,
            audience: Vec::new(),
            algorithms: vec![KeyAlg::Rs256, KeyAlg::Es256],
            user_claim: "sub".to_owned(),
            parameters: BTreeMap::new(),
            cache_ttl: Duration::from_secs(600),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyIdentitySettings {
    #[serde(deserialize_with = "list_or_json")]
    pub keys: Vec<ApiKeySettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Hex SHA-256 of the API key (`printf %s "$KEY" | sha256sum`).
    pub sha256: String,
    pub user_id: String,
    /// Copied into the PowerSync token's `parameters`.
    #[serde(default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

impl AuthSettings {
    pub fn validate(&self, environment: Environment) -> Result<(), ConfigError> {
        let production = environment.is_production();
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::invalid("auth.issuer", "must not be empty"));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(ConfigError::invalid(
                "auth.audience",
                "must list at least one non-empty audience (the PowerSync Service checks it)",
            ));
        }
        if !(self.powersync_url.starts_with("http://")
            || self.powersync_url.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "auth.powersync_url",
                "must be an http:// or https:// URL",
            ));
        }
        if self.token_ttl.is_zero() {
            return Err(ConfigError::invalid(
                "auth.token_ttl",
                "must be greater than zero",
            ));
        }
        if self.token_ttl > MAX_TOKEN_TTL {
            return Err(ConfigError::invalid(
                "auth.token_ttl",
                format!(
                    "{} is longer than the 1h maximum (the PowerSync docs recommend at most 60 minutes)",
                    humantime::format_duration(self.token_ttl)
                ),
            ));
        }
        self.validate_keys(production)?;
        self.validate_identity(production)?;
        Ok(())
    }

    fn validate_keys(&self, production: bool) -> Result<(), ConfigError> {
        if self.keys.is_empty() && production {
            return Err(ConfigError::invalid(
                "auth.keys",
                "no signing key is configured; production needs at least one \
                 (generate one with `uplink keys generate --alg ed25519`)",
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            let name = format!("auth.keys[{i}]");
            if key.alg == KeyAlg::Hs256 && production {
                return Err(ConfigError::invalid(
                    format!("{name}.alg"),
                    "HS256 is refused in production (a shared secret cannot be published); \
                     use EdDSA, ES256 or RS256",
                ));
            }
            key_source::load(key).map_err(|e| ConfigError::invalid(name, format!("{e:#}")))?;
        }
        let active = self.keys.iter().filter(|k| k.active == Some(true)).count();
        let single_default = self.keys.len() == 1 && self.keys[0].active.is_none();
        if !self.keys.is_empty() && active != 1 && !single_default {
            return Err(ConfigError::invalid(
                "auth.keys",
                format!("exactly one key must be `active: true` (found {active})"),
            ));
        }
        if !self.keys.iter().any(|k| k.alg != KeyAlg::Hs256) && !self.keys.is_empty() {
            tracing::debug!("only HS256 keys configured: the JWKS publishes nothing");
        }
        Ok(())
    }

    fn validate_identity(&self, production: bool) -> Result<(), ConfigError> {
        let identity = &self.identity;
        if identity.mode == IdentityMode::Dev && production {
            return Err(ConfigError::invalid(
                "auth.identity.mode",
                "`dev` gives a token to anyone and is refused in production; use `jwt` or `api_key`",
            ));
        }
        if identity.mode == IdentityMode::Jwt || self.accept_upstream_tokens {
            let jwt = &identity.jwt;
            match jwt.jwks_uri.as_deref().map(jwks_transport) {
                Some(Transport::Https | Transport::LocalHttp) => {}
                Some(Transport::RemoteHttp) if !production => {}
                Some(Transport::RemoteHttp) => {
                    return Err(ConfigError::invalid(
                        "auth.identity.jwt.jwks_uri",
                        "must be https:// in production: whoever can alter plain http \
                         traffic could publish their own keys and sign in as anyone \
                         (http is accepted for localhost only)",
                    ));
                }
                None | Some(Transport::Invalid) => {
                    return Err(ConfigError::invalid(
                        "auth.identity.jwt.jwks_uri",
                        "must be the provider's http(s) JWKS URI",
                    ));
                }
            }
            if jwt.issuer.as_deref().is_none_or(|i| i.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    "auth.identity.jwt.issuer",
                    "must be the provider's issuer (`iss` of its tokens)",
                ));
            }
            if jwt.algorithms.is_empty() || jwt.algorithms.contains(&KeyAlg::Hs256) {
                return Err(ConfigError::invalid(
                    "auth.identity.jwt.algorithms",
                    "must list asymmetric algorithms only (RS256, ES256, EdDSA)",
                ));
            }
            if jwt.user_claim.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "auth.identity.jwt.user_claim",
                    "must name a claim",
                ));
            }
            if jwt.min_refresh_interval > jwt.cache_ttl {
                return Err(ConfigError::invalid(
                    "auth.identity.jwt.min_refresh_interval",
                    "must not be longer than auth.identity.jwt.cache_ttl",
                ));
            }
            if jwt.fetch_timeout.is_zero() {
                return Err(ConfigError::invalid(
                    "auth.identity.jwt.fetch_timeout",
                    "must be greater than zero",
                ));
            }
        }
        if self.accept_upstream_tokens && identity.mode != IdentityMode::Jwt {
            return Err(ConfigError::invalid(
                "auth.accept_upstream_tokens",
                "needs auth.identity.mode: jwt (the upstream provider is configured there)",
            ));
        }
        if identity.mode == IdentityMode::ApiKey {
            if identity.api_key.keys.is_empty() {
                return Err(ConfigError::invalid(
                    "auth.identity.api_key.keys",
                    "api_key mode needs at least one key",
                ));
            }
            for (i, key) in identity.api_key.keys.iter().enumerate() {
                if key.sha256.len() != 64 || !key.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ConfigError::invalid(
                        format!("auth.identity.api_key.keys[{i}].sha256"),
                        "must be 64 hex characters (the SHA-256 of the key)",
                    ));
                }
                if key.user_id.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        format!("auth.identity.api_key.keys[{i}].user_id"),
                        "must not be empty",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AuthSettings {
    /// Settings that are allowed but weaken authentication, as (key, why);
    /// logged at start-up and printed by `check-config`.
    pub fn warnings(&self, environment: Environment) -> Vec<(String, String)> {
        let mut warnings = Vec::new();
        let jwt = &self.identity.jwt;
        let upstream = self.identity.mode == IdentityMode::Jwt || self.accept_upstream_tokens;
        if upstream && jwt.audience.is_empty() && environment.is_production() {
            warnings.push((
                "auth.identity.jwt.audience".to_owned(),
                "is empty: any token of this issuer is accepted, including ones minted for \
                 other applications of the same tenant; list this app's audience unless the \
                 provider's tokens carry none (Clerk, Cognito access tokens)"
                    .to_owned(),
            ));
        }
        if upstream && jwt.jwks_uri.as_deref().map(jwks_transport) == Some(Transport::RemoteHttp) {
            warnings.push((
                "auth.identity.jwt.jwks_uri".to_owned(),
                "is plain http: production refuses it (whoever can alter the traffic can \
                 publish their own keys)"
                    .to_owned(),
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if let Some(message) = key
                .file
                .as_deref()
                .and_then(key_source::file_access_warning)
            {
                warnings.push((format!("auth.keys[{i}].file"), message));
            }
        }
        warnings
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Https,
    /// Plain http to this machine (a sidecar): nothing on the network to tamper with.
    LocalHttp,
    RemoteHttp,
    Invalid,
}

fn jwks_transport(uri: &str) -> Transport {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return Transport::Invalid;
    };
    let local = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match (url.scheme(), url.host_str()) {
        ("https", Some(_)) => Transport::Https,
        ("http", Some(_)) if local => Transport::LocalHttp,
        ("http", Some(_)) => Transport::RemoteHttp,
        _ => Transport::Invalid,
    }
}

/// Accepts `x` or `[x, y]` (and, from the environment, `"x,y"` already split).
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Many(items) => items,
        OneOrMany::One(item) => vec![item],
    })
}

/// Accepts a list, or a JSON array in a string (how a whole list arrives
/// from one environment variable or secret, e.g. `UPLINK__AUTH__KEYS`).
fn list_or_json<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    struct ListOrJson<T>(std::marker::PhantomData<T>);

    impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for ListOrJson<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list, or a JSON array in a string")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<T>, E> {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            serde_json::from_str(text).map_err(|e| E::custom(format!("not a JSON array: {e}")))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
    }

    deserializer.deserialize_any(ListOrJson(std::marker::PhantomData))
}
