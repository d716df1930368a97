//! Schemas of the bodies the credential routes build with `json!` (no
//! Rust type carries them): the JWKS and `me`; their fields are those of
//! the `json!` calls.

#![allow(dead_code)] // read only by the schema derive

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// Public signing keys, for the PowerSync Service's `client_auth.jwks_uri`.
#[derive(ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public JWK; key-type specific members (`x`, `y`, `crv`, `n`, `e`) follow RFC 7517.
#[derive(ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: String,
    pub kid: String,
    #[schema(rename = "use", example = "sig")]
    pub use_: String,
    #[schema(example = "EdDSA")]
    pub alg: String,
}

/// The caller as uplink sees the presented token.
#[derive(ToSchema)]
pub struct Me {
    pub user_id: String,
    /// The verified token's claims.
    pub claims: BTreeMap<String, Value>,
}
