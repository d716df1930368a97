//! The development signing key: generated once, kept under the data
//! directory (mode 0600) so a restart does not invalidate sessions.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::alg::KeyAlg;
use super::keys::PrivateKey;

pub const FILE_NAME: &str = "dev-signing-key.pem";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The key `serve` created, for `uplink token`: a key made up here would
/// sign tokens the running server refuses (`401 unknown_key`).
pub fn load_existing(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = path(data_dir);
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    match fs::read_to_string(&path) {
        Ok(pem) => PrivateKey::from_pem(KeyAlg::EdDsa, &pem)
            .with_context(|| format!("Failed to read the development key {}", shown.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no signing key: auth.keys is empty and there is no development key at {} \
             (`uplink serve` creates it on its first start, under server.data_dir, a path \
             relative to the directory it runs in). Run this with the server's configuration \
             and from its directory (`scripts/uplink token …` does, for `scripts/run`), or \
             configure auth.keys",
            shown.display()
        ),
        Err(err) => Err(err)
            .with_context(|| format!("Failed to read the development key {}", shown.display())),
    }
}

pub fn load_or_create(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = path(data_dir);
    match fs::read_to_string(&path) {
        Ok(pem) => {
            return PrivateKey::from_pem(KeyAlg::EdDsa, &pem)
                .with_context(|| format!("Failed to read the development key {}", path.display()));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err)
                .with_context(|| format!("Failed to read the development key {}", path.display()));
        }
    }
    create_dir_private(data_dir)?;
    let key = PrivateKey::generate(KeyAlg::EdDsa)?;
    let pem = key.to_pem()?.unwrap_or_default();
    match write_new_private(&path, pem.as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a development signing key");
            Ok(key)
        }
        // Another process (a second replica, a parallel test) won the race: use its key.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = fs::read_to_string(&path).with_context(|| {
                format!("Failed to read the development key {}", path.display())
            })?;
            PrivateKey::from_pem(KeyAlg::EdDsa, &pem)
        }
        Err(err) => Err(err)
            .with_context(|| format!("Failed to write the development key {}", path.display())),
    }
}

fn create_dir_private(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("Failed to create the data directory {}", dir.display()))
}

/// Writes a new file readable by its owner only; fails if it exists.
/// The content goes to a temporary name first, so a reader never sees half a key.
fn write_new_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    result
}
