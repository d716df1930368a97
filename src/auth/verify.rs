//! Verifying uplink's own tokens, and mapping verification failures to
//! the 401 codes clients see.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde_json::Value;

use super::alg::KeyAlg;
use super::keyset::{KeySet, SigningKey};
use crate::error::{ApiError, ErrorCode};

/// Clock skew tolerated on `exp`/`nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Largest token accepted; anything bigger is refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Parses the header without trusting it; `alg: none` and unknown
/// algorithms fail here.
pub fn header(token: &str) -> Result<Header, ApiError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the token is larger than 16 KB",
        ));
    }
    jsonwebtoken::decode_header(token)
        .map_err(|_| ApiError::new(ErrorCode::InvalidToken, "the token is malformed"))
}

/// What an uplink token must satisfy besides its signature.
pub struct OwnTokenRules<'a> {
    pub issuer: &'a str,
    pub audience: &'a [String],
    /// Longest `exp - iat` accepted: uplink issues nothing longer, so a
    /// longer token was minted elsewhere with a leaked key.
    pub max_lifetime: Duration,
}

/// Verifies a token signed by one of uplink's keys and returns its claims.
pub fn verify_own(
    keys: &KeySet,
    rules: &OwnTokenRules<'_>,
    token: &str,
    header: &Header,
) -> Result<Value, ApiError> {
    let Some(alg) = KeyAlg::from_jwt(header.alg) else {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the token's algorithm is not accepted",
        ));
    };
    let candidates: Vec<&SigningKey> = match &header.kid {
        Some(kid) => match keys.get(kid) {
            Some(key) => vec![key],
            None => return Err(unknown_key()),
        },
        None => keys.with_alg(alg).collect(),
    };
    if candidates.is_empty() {
        return Err(unknown_key());
    }
    let mut last = None;
    for key in candidates {
        let validation = validation(key.alg, Some(rules.issuer), rules.audience);
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => {
                require_subject(&data.claims, "sub")?;
                require_issued_in_past(&data.claims)?;
                require_lifetime_within(&data.claims, rules.max_lifetime)?;
                return Ok(data.claims);
            }
            Err(err) => last = Some(err),
        }
    }
    Err(last.map(map_error).unwrap_or_else(unknown_key))
}

/// A validation pinned to one algorithm, requiring `exp`.
pub fn validation(alg: KeyAlg, issuer: Option<&str>, audience: &[String]) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(audience);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The user id from `claim`: a non-empty string (or a number, as some providers use).
pub fn require_subject(claims: &Value, claim: &str) -> Result<String, ApiError> {
    let user = match claims.get(claim) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if user.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            format!("the token has no `{claim}` claim naming the user"),
        ));
    }
    Ok(user)
}

/// jsonwebtoken does not check `iat`: a token "issued" in the future was
/// minted with a wrong clock or to outlive a key rotation; refuse it.
pub fn require_issued_in_past(claims: &Value) -> Result<(), ApiError> {
    let now = chrono::Utc::now().timestamp();
    match claims.get("iat").map(Value::as_f64) {
        None => Ok(()),
        Some(Some(iat)) if iat <= (now + LEEWAY_SECS as i64) as f64 => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the token's `iat` is in the future",
        )),
    }
}

/// uplink's tokens carry `iat`, and `exp - iat` is at most the configured
/// `auth.token_ttl` (plus the clock leeway).
fn require_lifetime_within(claims: &Value, max_lifetime: Duration) -> Result<(), ApiError> {
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_f64),
        claims.get("exp").and_then(Value::as_f64),
    ) else {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the token has no numeric `iat` and `exp`",
        ));
    };
    if exp - iat > max_lifetime.as_secs().saturating_add(LEEWAY_SECS) as f64 {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the token lives longer than uplink issues tokens for (auth.token_ttl)",
        ));
    }
    Ok(())
}

pub fn unknown_key() -> ApiError {
    ApiError::new(
        ErrorCode::UnknownKey,
        "the token is signed with a key that is not (or no longer) trusted",
    )
}

pub fn map_error(err: jsonwebtoken::errors::Error) -> ApiError {
    match err.kind() {
        ErrorKind::ExpiredSignature => {
            ApiError::new(ErrorCode::ExpiredToken, "the token has expired")
        }
        ErrorKind::InvalidAudience => ApiError::new(
            ErrorCode::WrongAudience,
            "the token is not meant for this audience",
        ),
        ErrorKind::InvalidIssuer => {
            ApiError::new(ErrorCode::InvalidToken, "the token has the wrong issuer")
        }
        ErrorKind::ImmatureSignature => {
            ApiError::new(ErrorCode::InvalidToken, "the token is not valid yet")
        }
        ErrorKind::InvalidSignature => ApiError::new(
            ErrorCode::InvalidToken,
            "the token's signature does not verify",
        ),
        ErrorKind::InvalidAlgorithm => ApiError::new(
            ErrorCode::InvalidToken,
            "the token's algorithm is not accepted for its key",
        ),
        ErrorKind::MissingRequiredClaim(claim) => ApiError::new(
            ErrorCode::InvalidToken,
            format!("the token has no `{claim}` claim"),
        ),
        _ => ApiError::new(ErrorCode::InvalidToken, "the token is invalid"),
    }
}
