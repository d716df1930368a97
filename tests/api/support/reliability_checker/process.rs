//! The real `uplink serve` binary the checker writes through, restartable on
//! the same port and database.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::process::uplink_command;

/// The real binary, restartable on the same port and database.
pub struct UplinkProcess {
    pub child: Option<Child>,
    pub port: u16,
    pub db_url: String,
    pub config: PathBuf,
    pub log: PathBuf,
    dir: PathBuf,
    /// What `start` wrote to the configuration file (`rewrite_config` appends to it).
    base_config: String,
}

impl UplinkProcess {
    pub async fn start(db_url: &str, pool_size: u32) -> Self {
        Self::start_with(db_url, pool_size, "").await
    }

    /// `start` with `extra` appended to the configuration file (YAML
    /// sections `start` does not write, e.g. `auth:`).
    pub async fn start_with(db_url: &str, pool_size: u32, extra: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("local address")
            .port();
        let dir = std::env::temp_dir().join(format!("uplink-chaos-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the process directory");
        let config = dir.join("uplink.yaml");
        let base_config = format!(
            "server:\n  host: 127.0.0.1\n  port: {port}\n  workers: 2\n  shutdown_timeout: 10s\n  data_dir: {data}\n\
                 database:\n  max_connections: {pool_size}\n  acquire_timeout: 2s\n  migrate_on_start: true\n\
                 log:\n  level: warn\n\
                 metrics:\n  port: 0\n\
                 write:\n  tables:\n    chaos_rows: {{}}\n    chaos_entries: {{owner_column: owner}}\n",
            data = dir.join("data").display(),
        );
        let mut process = Self {
            child: None,
            port,
            db_url: db_url.to_owned(),
            config,
            log: dir.join("uplink.log"),
            dir,
            base_config,
        };
        process.rewrite_config(extra);
        process.spawn().await;
        process
    }

    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the process log");
        let child = uplink_command()
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("DATABASE_URL", &self.db_url)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("Failed to start uplink");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(response) = client.get(self.url("/health/ready")).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("uplink did not become ready; see {}", self.log.display());
    }

    /// Replaces what follows the base configuration with `extra` (the
    /// running process reads it on its next start or SIGHUP).
    pub fn rewrite_config(&self, extra: &str) {
        // Written aside and renamed: a reload never reads half a file.
        let next = self.config.with_extension("yaml.next");
        std::fs::write(&next, format!("{}{extra}", self.base_config))
            .expect("write the process configuration");
        std::fs::rename(&next, &self.config).expect("replace the process configuration");
    }

    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("uplink is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL (no drain: in-flight requests are cut), then start again.
    pub async fn sigkill_and_restart(&mut self) {
        let mut child = self.child.take().expect("uplink is running");
        child.kill().expect("SIGKILL uplink");
        child.wait().expect("reap uplink");
        self.spawn().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGTERM, wait for the graceful exit (status 0), start again.
    pub async fn sigterm_and_restart(&mut self) {
        let mut child = self.child.take().expect("uplink is running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("wait for uplink") {
                break exit;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            exit.code(),
            Some(0),
            "uplink must exit 0 after SIGTERM; see {}",
            self.log.display()
        );
        self.spawn().await;
    }
}

impl Drop for UplinkProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        // After a failure the log stays for whoever reads the panic message.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
