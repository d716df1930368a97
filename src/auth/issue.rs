//! Issuing uplink's own tokens (what `fetchCredentials()` returns).

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use super::keyset::SigningKey;

/// Claims of an issued token, in the shape the PowerSync Service reads.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    aud: Audience<'a>,
    iss: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Map<String, Value>>,
}

/// One audience is written as a string (what every verifier accepts),
/// several as an array.
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

pub struct TokenRequest<'a> {
    pub user_id: &'a str,
    pub parameters: Option<&'a Map<String, Value>>,
    pub ttl: Duration,
}

pub struct IssuedToken {
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Signs a token with `key`. The caller has checked `ttl` and the user id.
pub fn sign(
    key: &SigningKey,
    issuer: &str,
    audience: &[String],
    request: &TokenRequest<'_>,
) -> anyhow::Result<IssuedToken> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(request.ttl.as_secs()).context("token lifetime is too long")?;
    let claims = Claims {
        sub: request.user_id,
        aud: match audience {
            [one] => Audience::One(one),
            many => Audience::Many(many),
        },
        iss: issuer,
        iat: now,
        exp: now + ttl,
        parameters: request.parameters.filter(|p| !p.is_empty()),
    };
    let token = key
        .signer
        .jws(&key.kid, &claims)
        .context("Failed to sign a token")?;
    Ok(IssuedToken {
        token,
        issued_at: now,
        expires_at: now + ttl,
    })
}
