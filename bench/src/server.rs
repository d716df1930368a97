//! A local uplink started by the benchmark (`--spawn`): `uplink serve` on a
//! free port, timed from spawn to the first ready answer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procfs;

pub struct Server {
    child: Child,
    pub base: String,
    pub startup: Duration,
    data_dir: PathBuf,
}

/// The uplink binary to start: `explicit` (--uplink-bin), else `uplink` next
/// to this executable, where `cargo build --bin uplink` puts it.
pub fn uplink_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("Failed to find this executable")?;
    let sibling = exe.with_file_name(format!("uplink{}", std::env::consts::EXE_SUFFIX));
    if !sibling.is_file() {
        bail!(
            "no uplink binary at {}: build it (cargo build --release --bin uplink) or pass --uplink-bin",
            sibling.display()
        );
    }
    Ok(sibling)
}

impl Server {
    /// Starts `exe serve` and waits until `/health/ready` answers 200.
    /// `env` adds configuration (e.g. `UPLINK__AUTH__KEYS`).
    pub async fn spawn(
        exe: &Path,
        config: Option<&Path>,
        database_url: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Self::spawn_under(&[], exe, config, database_url, env, Duration::from_secs(30)).await
    }

    /// `spawn`, with `wrapper` (a program and its arguments, e.g. valgrind)
    /// running `exe`, and `ready_within` to become ready.
    pub async fn spawn_under(
        wrapper: &[String],
        exe: &Path,
        config: Option<&Path>,
        database_url: &str,
        env: &[(&str, String)],
        ready_within: Duration,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("Failed to find a free port")?
            .port();
        let data_dir =
            std::env::temp_dir().join(format!("uplink-bench-{}", uuid::Uuid::new_v4().simple()));
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("UPLINK__SERVER__HOST", "127.0.0.1")
            .env("UPLINK__SERVER__PORT", port.to_string())
            .env("UPLINK__SERVER__DATA_DIR", &data_dir)
            .env("UPLINK__LOG__LEVEL", "error")
            // A free port for the metrics listener: several uplinks may run.
            .env("UPLINK__METRICS__PORT", "0")
            .env("UPLINK__ATTACHMENTS__CLEANUP__INTERVAL", "0s")
            // The benchmark measures throughput, not the per-user limiter.
            .env("UPLINK__LIMITS__UPLOAD_PER_USER__PER_SECOND", "0")
            .env("UPLINK__LIMITS__TOKEN_PER_USER__PER_SECOND", "0")
            .env("UPLINK__LIMITS__TOKEN_PER_IP__PER_SECOND", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("Failed to start {} serve", exe.display()))?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("uplink serve exited during start-up ({status}); its log is above");
            }
            let ready = client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if started.elapsed() > ready_within {
                let _ = child.kill();
                bail!("uplink serve was not ready within {ready_within:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            startup: started.elapsed(),
            child,
            base,
            data_dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn peak_rss_kb(&self) -> Option<u64> {
        procfs::peak_rss_kb(self.pid())
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it lingers.
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
