//! Public JWKs: RFC 7638 thumbprints and verification keys, for uplink's
//! own keys and for the keys an identity provider publishes.

use anyhow::{anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::DecodingKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::alg::MIN_RSA_BITS;

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or("");
    let canonical = match s("kty") {
        "OKP" => json!({"crv": s("crv"), "kty": "OKP", "x": s("x")}),
        "EC" => json!({"crv": s("crv"), "kty": "EC", "x": s("x"), "y": s("y")}),
        "RSA" => json!({"e": s("e"), "kty": "RSA", "n": s("n")}),
        other => json!({"k": s("k"), "kty": other}),
    };
    // serde_json's map is ordered by key (no `preserve_order` feature), which
    // is the member order RFC 7638 requires.
    B64.encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A verification key from a public JWK, checking sizes that jsonwebtoken
/// itself would index into without checking.
pub fn decoding_key_from_public_jwk(jwk: &Value) -> anyhow::Result<DecodingKey> {
    let s = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the JWK has no `{name}`"))
    };
    let len = |name: &str| -> anyhow::Result<usize> {
        Ok(B64
            .decode(s(name)?)
            .map_err(|_| anyhow!("the JWK member `{name}` is not base64url"))?
            .len())
    };
    match s("kty")? {
        "OKP" => {
            if s("crv")? != "Ed25519" || len("x")? != 32 {
                bail!("only Ed25519 OKP keys with a 32-byte `x` are supported");
            }
            Ok(DecodingKey::from_ed_components(s("x")?)?)
        }
        "EC" => {
            if s("crv")? != "P-256" || len("x")? != 32 || len("y")? != 32 {
                bail!("only P-256 EC keys are supported");
            }
            Ok(DecodingKey::from_ec_components(s("x")?, s("y")?)?)
        }
        "RSA" => {
            if len("n")? * 8 < MIN_RSA_BITS {
                bail!("RSA keys under {MIN_RSA_BITS} bits are refused");
            }
            Ok(DecodingKey::from_rsa_components(s("n")?, s("e")?)?)
        }
        other => bail!("unsupported key type `{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        // RFC 7638, section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
