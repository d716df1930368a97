//! Signing with keys parsed once at start-up.
//!
//! jsonwebtoken's `encode` re-parses the DER key on every call (for RSA it
//! also validates the key and recomputes its CRT values). Measured with
//! `uplink keys bench` on a 2-core machine, signing with the key held ready
//! took ES256 from about 1.8k to 3–4k tokens/s and EdDSA up about 10%. So
//! uplink signs the JWS itself with the same RustCrypto primitives;
//! verifying stays with jsonwebtoken, and the client tests verify every
//! algorithm independently with jose.

use anyhow::anyhow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::Mac;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _};
use serde::Serialize;
use sha2::Sha256;

use crate::auth::keys::{KeyAlg, PrivateKey};

pub enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Rsa(rsa::pkcs1v15::SigningKey<Sha256>),
    Hmac(Vec<u8>),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'static str,
}

impl Signer {
    pub fn new(key: &PrivateKey) -> Self {
        match key {
            PrivateKey::Ed25519(key) => Self::Ed25519(key.clone()),
            PrivateKey::P256(key) => Self::P256(p256::ecdsa::SigningKey::from(key)),
            PrivateKey::Rsa(key) => Self::Rsa(rsa::pkcs1v15::SigningKey::new(key.as_ref().clone())),
            PrivateKey::Hmac(secret) => Self::Hmac(secret.clone()),
        }
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
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Self::P256(key) => {
                // RFC 6979 deterministic ECDSA; JWS wants the fixed-size r || s.
                let signature: p256::ecdsa::Signature = key
                    .try_sign(message)
                    .map_err(|_| anyhow!("ES256 signing failed"))?;
                signature.to_bytes().to_vec()
            }
            // Randomized: RSA blinding against timing side channels.
            Self::Rsa(key) => key
                .try_sign_with_rng(&mut rand_core::OsRng, message)
                .map_err(|_| anyhow!("RS256 signing failed"))?
                .to_vec(),
            Self::Hmac(secret) => {
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret)
                    .map_err(|_| anyhow!("HS256 key rejected"))?;
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
        })
    }
}
