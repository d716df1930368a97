//! The real `uplink` binary as a child process: a command to run it, and a
//! served instance on a fresh database.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::database::{create_database, database_url};
use super::repo::repo_root;

/// `uplink` as a developer runs it: from the repository root, in the
/// development environment (whatever the caller's environment says).
pub fn uplink_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uplink"));
    command
        .current_dir(repo_root())
        .env_remove("UPLINK_ENVIRONMENT");
    command
}

pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `uplink serve` on a free port against a fresh database and waits until it is ready.
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        Self::start_with_log(extra_env, None).await
    }

    /// Like `start`, with the process's log (stderr) written to `log`.
    pub async fn start_with_log(extra_env: &[(&str, &str)], log: Option<&std::path::Path>) -> Self {
        let db_url = database_url(&create_database().await);
        let process = Self::spawn(&db_url, extra_env, log);
        process.wait_for("/health/ready").await;
        process
    }

    /// Starts `uplink serve` against `db_url` without waiting for anything.
    pub fn spawn(db_url: &str, extra_env: &[(&str, &str)], log: Option<&std::path::Path>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = uplink_command();
        command
            .arg("serve")
            .env("DATABASE_URL", db_url)
            .env("UPLINK__SERVER__HOST", "127.0.0.1")
            .env("UPLINK__SERVER__PORT", port.to_string())
            // A free port for the metrics listener: tests run many at once.
            .env("UPLINK__METRICS__PORT", "0")
            .env(
                "UPLINK__SERVER__DATA_DIR",
                std::env::temp_dir().join(format!("uplink-test-{port}")),
            )
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                None => Stdio::null(),
            });
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let child = command.spawn().expect("Failed to start uplink");
        Self { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Waits until `path` answers 200 (a hang guard of a minute).
    pub async fn wait_for(&self, path: &str) {
        let client = reqwest::Client::new();
        for _ in 0..1200 {
            if let Ok(response) = client.get(self.url(path)).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("uplink's {path} did not answer 200");
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(mut self) -> Option<i32> {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = self.child.kill();
        panic!("uplink did not exit after the signal");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
