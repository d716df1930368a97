//! One configured signing key (`auth.keys[]`): where its material comes
//! from, and loading it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::alg::KeyAlg;
use super::keys::PrivateKey;
use crate::config::secret::Secret;

/// One signing key; exactly one of `private_key_pem`, `private_key_jwk`,
/// `secret` (HS256) or `file` holds its material.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub alg: KeyAlg,
    /// Defaults to the RFC 7638 thumbprint of the public key.
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub private_key_pem: Option<Secret>,
    /// The private JWK as JSON text.
    #[serde(default)]
    pub private_key_jwk: Option<Secret>,
    /// HS256 only (development): the shared secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// A file holding a PEM or a JWK.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Whether this key signs new tokens; a single key is active by default.
    #[serde(default)]
    pub active: Option<bool>,
}

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

/// Loads one configured key (reads its file when it has one).
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
        return PrivateKey::from_secret(secret.expose().as_bytes().to_vec());
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
