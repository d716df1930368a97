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
}

impl UplinkProcess {
    pub async fn start(db_url: &str, pool_size: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("local address")
            .port();
        let dir = std::env::temp_dir().join(format!("uplink-chaos-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the process directory");
        let config = dir.join("uplink.yaml");
        std::fs::write(
            &config,
            format!(
                "server:\n  host: 127.0.0.1\n  port: {port}\n  workers: 2\n  shutdown_timeout: 10s\n  data_dir: {data}\n\
                 database:\n  max_connections: {pool_size}\n  acquire_timeout: 2s\n  migrate_on_start: true\n\
                 log:\n  level: warn\n\
                 metrics:\n  port: 0\n\
                 write:\n  tables:\n    chaos_rows: {{}}\n    chaos_entries: {{}}\n",
                data = dir.join("data").display(),
            ),
        )
        .expect("write the process configuration");
        let mut process = Self {
            child: None,
            port,
            db_url: db_url.to_owned(),
            config,
            log: dir.join("uplink.log"),
        };
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
    }
}
