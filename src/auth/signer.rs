//! Signing with keys parsed once at start-up, on aws-lc-rs.
//!
//! jsonwebtoken's `encode` re-parses the DER key on every call (for RSA it
//! also validates the key and recomputes its CRT values), so uplink builds
//! each key pair once and signs the JWS itself. The key pairs are aws-lc-rs,
//! the backend jsonwebtoken verifies with: its RSA and ECDSA are several
//! times faster than the RustCrypto crates that parse and generate the keys
//! (see docs/performance.md). The client tests verify every algorithm
//! independently with jose.

use anyhow::{Context, anyhow};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use serde::Serialize;

use super::alg::KeyAlg;
use super::keys::PrivateKey;

pub enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    /// Boxed: the key holds aws-lc's precomputed HMAC state (over 1 KB).
    Hmac(Box<hmac::Key>),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'static str,
}

impl Signer {
    /// The key pair for `key`, handed over as PKCS#8 (which also checks that
    /// aws-lc accepts it: RSA between 2048 and 8192 bits).
    pub fn new(key: &PrivateKey) -> anyhow::Result<Self> {
        let rejected = |err| anyhow!("the signing key is not accepted: {err}");
        Ok(match key {
            PrivateKey::Ed25519(key) => Self::Ed25519(
                Ed25519KeyPair::from_pkcs8(
                    key.to_pkcs8_der()
                        .context("Failed to encode the Ed25519 key")?
                        .as_bytes(),
                )
                .map_err(rejected)?,
            ),
            PrivateKey::P256(key) => Self::P256(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    key.to_pkcs8_der()
                        .context("Failed to encode the P-256 key")?
                        .as_bytes(),
                )
                .map_err(rejected)?,
            ),
            PrivateKey::Rsa(key) => Self::Rsa(
                RsaKeyPair::from_pkcs8(
                    rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(key.as_ref())
                        .context("Failed to encode the RSA key")?
                        .as_bytes(),
                )
                .map_err(rejected)?,
            ),
            PrivateKey::Hmac(secret) => {
                Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)))
            }
        })
    }

    pub fn alg(&self) -> KeyAlg {
        match self {
            Self::Ed25519(_) => KeyAlg::EdDsa,
            Self::P256(_) => KeyAlg::Es256,
            Self::Rsa(_) => KeyAlg::Rs256,
            Self::Hmac(_) => KeyAlg::Hs256,
        }
    }

    /// A compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
    pub fn jws(&self, kid: &str, claims: &impl Serialize) -> anyhow::Result<String> {
        let header = Header {
            alg: self.alg().as_str(),
            kid,
            typ: "JWT",
        };
        let mut message = B64.encode(serde_json::to_vec(&header)?);
        message.push('.');
        B64.encode_string(serde_json::to_vec(claims)?, &mut message);
        let signature = self.sign(message.as_bytes())?;
        message.push('.');
        B64.encode_string(signature, &mut message);
        Ok(message)
    }

    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Self::Ed25519(key) => key.sign(message).as_ref().to_vec(),
            // JWS wants the fixed-size r || s (the FIXED algorithm).
            Self::P256(key) => key
                .sign(&SystemRandom::new(), message)
                .map_err(|_| anyhow!("ES256 signing failed"))?
                .as_ref()
                .to_vec(),
            // aws-lc blinds RSA private-key operations against timing side channels.
            Self::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| anyhow!("RS256 signing failed"))?;
                signature
            }
            Self::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        })
    }
}
