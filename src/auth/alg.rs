//! The signature algorithms uplink signs with (and pins when verifying),
//! and the RSA key sizes it accepts.

use std::fmt;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

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
