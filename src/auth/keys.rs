//! Signing keys: loading (PEM or JWK, inline or file), generation, public
//! JWKs and RFC 7638 thumbprints.
//!
//! Parsing and generation use the RustCrypto crates (ed25519-dalek, p256,
//! rsa), rather than josekit: josekit needs OpenSSL (a system library in
//! the image), and jsonwebtoken's own JWK helpers cannot export Ed25519 keys
//! and panic on some inputs. aws-lc-rs parses neither JWKs nor every PEM
//! form, nor exports an RSA key's private parts. Signing (`signer`) and
//! verifying (jsonwebtoken) run on aws-lc-rs, from keys converted once.

use std::fmt;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::settings::KeySettings;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted, in bits: aws-lc signs and verifies no larger.
pub const MAX_RSA_BITS: usize = 8192;

/// Signature algorithms uplink signs with (and pins when verifying).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum KeyAlg {
    #[serde(
        rename = "EdDSA",
        alias = "eddsa",
        alias = "ed25519",
        alias = "Ed25519"
    )]
    EdDsa,
    #[serde(rename = "ES256", alias = "es256")]
    Es256,
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
    #[serde(rename = "HS256", alias = "hs256")]
    Hs256,
}

impl KeyAlg {
    pub fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::Hs256 => Algorithm::HS256,
        }
    }

    pub fn from_jwt(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::EdDSA => Some(Self::EdDsa),
            Algorithm::ES256 => Some(Self::Es256),
            Algorithm::RS256 => Some(Self::Rs256),
            Algorithm::HS256 => Some(Self::Hs256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Hs256 => "HS256",
        }
    }

    /// Parses the CLI spelling (`ed25519`, `es256`, `rs256`, `hs256`, or the JWA name).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "ed25519" | "eddsa" => Some(Self::EdDsa),
            "es256" => Some(Self::Es256),
            "rs256" => Some(Self::Rs256),
            "hs256" => Some(Self::Hs256),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Private key material of one of the supported kinds.
pub enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Hmac(Vec<u8>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl PrivateKey {
    pub fn alg(&self) -> KeyAlg {
        match self {
            Self::Ed25519(_) => KeyAlg::EdDsa,
            Self::P256(_) => KeyAlg::Es256,
            Self::Rsa(_) => KeyAlg::Rs256,
            Self::Hmac(_) => KeyAlg::Hs256,
        }
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(alg: KeyAlg) -> anyhow::Result<Self> {
        let mut rng = rand_core::OsRng;
        Ok(match alg {
            KeyAlg::EdDsa => Self::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            KeyAlg::Es256 => Self::P256(p256::SecretKey::random(&mut rng)),
            KeyAlg::Rs256 => Self::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, MIN_RSA_BITS)
                    .context("Failed to generate an RSA key")?,
            )),
            KeyAlg::Hs256 => {
                let mut secret = vec![0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rng, &mut secret);
                Self::Hmac(secret)
            }
        })
    }

    /// Parses a PEM: PKCS#8 `PRIVATE KEY` for every kind, and also PKCS#1
    /// `RSA PRIVATE KEY` and SEC1 `EC PRIVATE KEY`.
    pub fn from_pem(alg: KeyAlg, pem: &str) -> anyhow::Result<Self> {
        let pem = pem.trim();
        Ok(match alg {
            KeyAlg::EdDsa => Self::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| anyhow!("not an Ed25519 private key in PKCS#8 PEM"))?,
            ),
            KeyAlg::Es256 => Self::P256(
                p256::SecretKey::from_pkcs8_pem(pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                    .map_err(|_| anyhow!("not a P-256 private key in PKCS#8 or SEC1 PEM"))?,
            ),
            KeyAlg::Rs256 => Self::Rsa(Box::new(
                rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                    .map_err(|_| anyhow!("not an RSA private key in PKCS#8 or PKCS#1 PEM"))?,
            )),
            KeyAlg::Hs256 => bail!("an HS256 key is a secret or an `oct` JWK, not a PEM"),
        })
        .and_then(Self::checked)
    }

    /// Parses a private JWK (`OKP`/Ed25519, `EC`/P-256, `RSA`, `oct`).
    pub fn from_jwk(alg: KeyAlg, text: &str) -> anyhow::Result<Self> {
        let jwk: Value = serde_json::from_str(text).context("the JWK is not valid JSON")?;
        let member = |name: &str| -> anyhow::Result<Vec<u8>> {
            let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| {
                anyhow!("the JWK has no `{name}` member (a private JWK is needed)")
            })?;
            B64.decode(text)
                .map_err(|_| anyhow!("the JWK member `{name}` is not base64url"))
        };
        if let Some(jwk_alg) = jwk.get("alg").and_then(Value::as_str)
            && jwk_alg != alg.as_str()
        {
            bail!("the JWK says alg {jwk_alg} but the key is configured as {alg}");
        }
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
        let key = match (alg, kty) {
            (KeyAlg::EdDsa, "OKP") => {
                if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                    bail!("an EdDSA JWK must have crv Ed25519");
                }
                let seed: [u8; 32] = member("d")?
                    .try_into()
                    .map_err(|_| anyhow!("the Ed25519 `d` must be 32 bytes"))?;
                Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            (KeyAlg::Es256, "EC") => {
                if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                    bail!("an ES256 JWK must have crv P-256");
                }
                Self::P256(
                    p256::SecretKey::from_slice(&member("d")?)
                        .map_err(|_| anyhow!("the P-256 `d` is not a valid scalar"))?,
                )
            }
            (KeyAlg::Rs256, "RSA") => {
                let int = |name: &str| member(name).map(|b| rsa::BigUint::from_bytes_be(&b));
                let key = rsa::RsaPrivateKey::from_components(
                    int("n")?,
                    int("e")?,
                    int("d")?,
                    vec![int("p")?, int("q")?],
                )
                .map_err(|e| anyhow!("the RSA JWK is not a valid key: {e}"))?;
                Self::Rsa(Box::new(key))
            }
            (KeyAlg::Hs256, "oct") => Self::Hmac(member("k")?),
            (alg, kty) => bail!("a JWK with kty `{kty}` cannot be a {alg} key"),
        };
        key.checked()
    }

    fn checked(self) -> anyhow::Result<Self> {
        match &self {
            Self::Rsa(key) => {
                key.validate()
                    .map_err(|e| anyhow!("the RSA key is invalid: {e}"))?;
                let bits = key.n().bits();
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    bail!(
                        "the RSA key has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                    );
                }
            }
            Self::Hmac(secret) if secret.len() < 32 => {
                bail!("an HS256 secret must be at least 32 bytes")
            }
            _ => {}
        }
        Ok(self)
    }

    /// The key as jsonwebtoken wants it for signing.
    pub fn encoding_key(&self) -> anyhow::Result<EncodingKey> {
        Ok(match self {
            Self::Ed25519(key) => EncodingKey::from_ed_der(
                key.to_pkcs8_der()
                    .context("Failed to encode the Ed25519 key")?
                    .as_bytes(),
            ),
            Self::P256(key) => EncodingKey::from_ec_der(
                key.to_pkcs8_der()
                    .context("Failed to encode the P-256 key")?
                    .as_bytes(),
            ),
            Self::Rsa(key) => EncodingKey::from_rsa_der(
                key.to_pkcs1_der()
                    .context("Failed to encode the RSA key")?
                    .as_bytes(),
            ),
            Self::Hmac(secret) => EncodingKey::from_secret(secret),
        })
    }

    /// The verification key, from the public parameters only.
    pub fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        match self {
            Self::Hmac(secret) => Ok(DecodingKey::from_secret(secret)),
            _ => decoding_key_from_public_jwk(&self.public_jwk_members())
                .context("Failed to derive the verification key"),
        }
    }

    /// The public JWK members that RFC 7638 hashes (and that the JWKS publishes).
    /// For HS256 this is the secret itself: never published.
    fn public_jwk_members(&self) -> Value {
        match self {
            Self::Ed25519(key) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": B64.encode(key.verifying_key().as_bytes()),
            }),
            Self::P256(key) => {
                let point = key.public_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": B64.encode(point.x().map(|x| x.as_slice()).unwrap_or_default()),
                    "y": B64.encode(point.y().map(|y| y.as_slice()).unwrap_or_default()),
                })
            }
            Self::Rsa(key) => json!({
                "kty": "RSA",
                "n": B64.encode(key.n().to_bytes_be()),
                "e": B64.encode(key.e().to_bytes_be()),
            }),
            Self::Hmac(secret) => json!({"kty": "oct", "k": B64.encode(secret)}),
        }
    }

    /// RFC 7638 thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.public_jwk_members())
    }

    /// The JWK published in the JWKS; `None` for HS256 (a shared secret).
    pub fn public_jwk(&self, kid: &str) -> Option<Value> {
        if matches!(self, Self::Hmac(_)) {
            return None;
        }
        let mut jwk = self.public_jwk_members();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg().as_str());
        Some(jwk)
    }

    /// The private JWK (for `uplink keys generate` and persisted keys).
    pub fn private_jwk(&self, kid: &str) -> anyhow::Result<Value> {
        let mut jwk = self.public_jwk_members();
        match self {
            Self::Ed25519(key) => jwk["d"] = json!(B64.encode(key.to_bytes())),
            Self::P256(key) => jwk["d"] = json!(B64.encode(key.to_bytes())),
            Self::Rsa(key) => {
                let primes = key.primes();
                if primes.len() != 2 {
                    bail!("multi-prime RSA keys cannot be written as a JWK");
                }
                let crt = |v: Option<&rsa::BigUint>| v.map(|v| B64.encode(v.to_bytes_be()));
                jwk["d"] = json!(B64.encode(key.d().to_bytes_be()));
                jwk["p"] = json!(B64.encode(primes[0].to_bytes_be()));
                jwk["q"] = json!(B64.encode(primes[1].to_bytes_be()));
                jwk["dp"] = json!(crt(key.dp()));
                jwk["dq"] = json!(crt(key.dq()));
                jwk["qi"] = json!(key.crt_coefficient().map(|v| B64.encode(v.to_bytes_be())));
            }
            Self::Hmac(_) => {}
        }
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg().as_str());
        Ok(jwk)
    }

    /// PKCS#8 PEM of the private key (`None` for HS256).
    pub fn to_pem(&self) -> anyhow::Result<Option<String>> {
        use p256::pkcs8::LineEnding;
        Ok(match self {
            Self::Ed25519(key) => Some(
                key.to_pkcs8_pem(LineEnding::LF)
                    .context("Failed to encode the key as PEM")?
                    .to_string(),
            ),
            Self::P256(key) => Some(
                key.to_pkcs8_pem(LineEnding::LF)
                    .context("Failed to encode the key as PEM")?
                    .to_string(),
            ),
            Self::Rsa(key) => Some(
                rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(key.as_ref(), LineEnding::LF)
                    .context("Failed to encode the key as PEM")?
                    .to_string(),
            ),
            Self::Hmac(_) => None,
        })
    }
}

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

/// Loads one configured key (reads its file when it has one).
/// Why a signing key file is too open, if it is: any group or other
/// permission lets more than uplink's user read the key. Only a warning,
/// since Kubernetes mounts secrets 0644 unless told otherwise.
pub fn file_access_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} has mode {mode:04o}: other users of the machine may read the signing key; \
             make it 0600 (or 0400), e.g. a Kubernetes secret volume with defaultMode: 0400",
            path.display()
        )
    })
}

pub fn load(settings: &KeySettings) -> anyhow::Result<PrivateKey> {
    let sources = [
        settings.private_key_pem.is_some(),
        settings.private_key_jwk.is_some(),
        settings.secret.is_some(),
        settings.file.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if sources != 1 {
        bail!(
            "set exactly one of `private_key_pem`, `private_key_jwk`, `secret` (HS256) or `file` (found {sources})"
        );
    }
    let alg = settings.alg;
    if let Some(pem) = &settings.private_key_pem {
        return PrivateKey::from_pem(alg, pem.expose()).context("private_key_pem");
    }
    if let Some(jwk) = &settings.private_key_jwk {
        return PrivateKey::from_jwk(alg, jwk.expose()).context("private_key_jwk");
    }
    if let Some(secret) = &settings.secret {
        if alg != KeyAlg::Hs256 {
            bail!("`secret` is for HS256 keys only; {alg} needs a private key");
        }
        return PrivateKey::Hmac(secret.expose().as_bytes().to_vec()).checked();
    }
    let path = settings.file.as_deref().unwrap_or(Path::new(""));
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("file: cannot read {}", path.display()))?;
    let parsed = if text.trim_start().starts_with('{') {
        PrivateKey::from_jwk(alg, &text)
    } else {
        PrivateKey::from_pem(alg, &text)
    };
    parsed.with_context(|| format!("file {}", path.display()))
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

    #[test]
    fn private_jwk_and_pem_round_trip_to_the_same_key() {
        for alg in [KeyAlg::EdDsa, KeyAlg::Es256, KeyAlg::Rs256] {
            let key = PrivateKey::generate(alg).unwrap();
            let kid = key.thumbprint();
            let jwk = key.private_jwk(&kid).unwrap().to_string();
            let pem = key.to_pem().unwrap().unwrap();
            assert_eq!(
                PrivateKey::from_jwk(alg, &jwk).unwrap().thumbprint(),
                kid,
                "{alg} JWK"
            );
            assert_eq!(
                PrivateKey::from_pem(alg, &pem).unwrap().thumbprint(),
                kid,
                "{alg} PEM"
            );
            let public = key.public_jwk(&kid).unwrap();
            assert!(
                decoding_key_from_public_jwk(&public).is_ok(),
                "{alg} public JWK"
            );
        }
    }

    #[test]
    fn legacy_pem_forms_load() {
        use p256::pkcs8::LineEnding;
        let ec = p256::SecretKey::random(&mut rand_core::OsRng);
        let sec1 = ec.to_sec1_pem(LineEnding::LF).unwrap();
        assert!(
            PrivateKey::from_pem(KeyAlg::Es256, &sec1).is_ok(),
            "SEC1 EC PRIVATE KEY"
        );
        let PrivateKey::Rsa(rsa) = PrivateKey::generate(KeyAlg::Rs256).unwrap() else {
            unreachable!()
        };
        let pkcs1 = rsa.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(
            PrivateKey::from_pem(KeyAlg::Rs256, &pkcs1).is_ok(),
            "PKCS#1 RSA PRIVATE KEY"
        );
    }

    /// A private JWK with a 9217-bit modulus, built instantly: the size check
    /// needs no real primes, only factors the key arithmetic accepts
    /// (2^4608 + 1 and + 3 are coprime, and 65537 divides neither minus one).
    fn oversized_rsa_jwk() -> String {
        let base = rsa::BigUint::from(1u8) << 4608;
        let key =
            rsa::RsaPrivateKey::from_p_q(&base + 1u8, &base + 3u8, rsa::BigUint::from(65_537u32))
                .unwrap();
        PrivateKey::Rsa(Box::new(key))
            .private_jwk("big")
            .unwrap()
            .to_string()
    }

    #[test]
    fn wrong_or_weak_material_is_refused() {
        let ed = PrivateKey::generate(KeyAlg::EdDsa)
            .unwrap()
            .to_pem()
            .unwrap()
            .unwrap();
        assert!(
            PrivateKey::from_pem(KeyAlg::Es256, &ed).is_err(),
            "Ed25519 PEM as ES256"
        );
        let weak = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let weak_pem =
            rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&weak, p256::pkcs8::LineEnding::LF).unwrap();
        let err = PrivateKey::from_pem(KeyAlg::Rs256, &weak_pem).unwrap_err();
        assert!(err.to_string().contains("2048"), "{err}");
        let err = PrivateKey::from_jwk(KeyAlg::Rs256, &oversized_rsa_jwk()).unwrap_err();
        assert!(err.to_string().contains("8192"), "{err}");
        assert!(PrivateKey::from_jwk(KeyAlg::Hs256, r#"{"kty":"oct","k":"c2hvcnQ"}"#).is_err());
        let short_okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
        assert!(
            decoding_key_from_public_jwk(&short_okp).is_err(),
            "short Ed25519 x"
        );
    }
}
