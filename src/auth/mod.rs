//! Credentials: signing keys, the token endpoint that `fetchCredentials()`
//! calls, the JWKS the PowerSync Service verifies with, and verifying
//! incoming tokens (`AuthUser`).
//!
//! This file only names the module's parts: the files inside import each
//! other directly, never through here.

pub(crate) mod alg;
pub mod cli;
mod credential;
mod dev_key;
mod extractor;
mod identity;
pub mod issue;
pub mod jwk;
mod key_source;
pub mod keys;
mod keyset;
pub(crate) mod routes;
pub mod schemas;
pub mod settings;
mod signer;
mod state;
mod upstream;
mod user;
mod verified;
pub mod verify;

pub use key_source::KeySettings;
pub use keyset::KeySet;
pub use routes::configure;
pub use settings::{
    ApiKeyIdentitySettings, ApiKeySettings, AuthSettings, DevIdentitySettings, IdentityMode,
    IdentitySettings, JwtIdentitySettings, MAX_TOKEN_TTL,
};
pub use state::Auth;
pub use user::AuthUser;
