//! The development HMAC secret of local attachment URLs: generated once
//! under `server.data_dir` (mode 0600), so restarts keep issued URLs valid.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::secret::Secret;

/// File under `server.data_dir` holding the generated development HMAC secret.
const GENERATED_SECRET_FILE: &str = "attachments-hmac-secret";

/// Reads the development HMAC secret, creating it on first use so restarts
/// keep issued URLs valid.
pub async fn load_or_create(data_dir: &Path) -> anyhow::Result<Secret> {
    let path: PathBuf = data_dir.join(GENERATED_SECRET_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(Secret::new(secret.trim())),
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 characters; delete it to generate a new one",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("Failed to read {}", path.display()));
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("Failed to generate an HMAC secret")?;
    let secret = hex::encode(bytes);
    tokio::fs::create_dir_all(data_dir)
        .await
        .with_context(|| format!("Failed to create {}", data_dir.display()))?;
    write_private(&path, &secret)
        .await
        .with_context(|| format!("Failed to write {}", path.display()))?;
    // Development only (production requires the setting): nothing to act on.
    tracing::info!(
        file = %path.display(),
        "generated a development HMAC secret for local attachments; set attachments.local.hmac_secret in production"
    );
    // Another process may have won the race to create it: use what is on disk.
    let stored = tokio::fs::read_to_string(&path).await?;
    Ok(Secret::new(stored.trim()))
}

async fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(mut file) => {
            file.write_all(contents.as_bytes()).await?;
            file.sync_all().await
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}
