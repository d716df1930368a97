//! Private signing keys: parsing (PEM or JWK), generation, and export
//! (public and private JWK, PEM).
//!
//! Parsing and generation use the RustCrypto crates (ed25519-dalek, p256,
//! rsa), rather than josekit: josekit needs OpenSSL (a system library in
//! the image), and jsonwebtoken's own JWK helpers cannot export Ed25519 keys
//! and panic on some inputs. aws-lc-rs parses neither JWKs nor every PEM
//! form, nor exports an RSA key's private parts. Signing (`signer`) and
//! verifying (jsonwebtoken) run on aws-lc-rs, from keys converted once.

use std::fmt;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};

use super::alg::{MAX_RSA_BITS, MIN_RSA_BITS};
use super::jwk::{decoding_key_from_public_jwk, thumbprint};

/// The public path of the algorithms, next to the key type:
/// `auth::keys::{KeyAlg, PrivateKey}`.
pub use super::alg::KeyAlg;

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

    /// An HS256 key from its shared secret (at least 32 bytes).
    pub fn from_secret(secret: Vec<u8>) -> anyhow::Result<Self> {
        Self::Hmac(secret).checked()
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
                    "x": B64.encode(point.x().map(|x| &x[..]).unwrap_or_default()),
                    "y": B64.encode(point.y().map(|y| &y[..]).unwrap_or_default()),
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

#[cfg(test)]
mod tests {
    use super::*;

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
