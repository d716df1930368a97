//! Graceful shutdown of the real binary on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{create_database, database_url, repo_root};

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
        let mut command = Command::new(env!("CARGO_BIN_EXE_uplink"));
        command
            .current_dir(repo_root())
            .arg("serve")
            .env_remove("UPLINK_ENVIRONMENT")
            .env("DATABASE_URL", db_url)
            .env("UPLINK__SERVER__HOST", "127.0.0.1")
            .env("UPLINK__SERVER__PORT", port.to_string())
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

#[tokio::test]
async fn sigterm_stops_accepting_and_exits_zero() {
    for signal in ["TERM", "INT"] {
        let server = ServerProcess::start(&[]).await;
        let url = server.url("/health/live");
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);

        server.signal(signal);
        let code = server.wait_exit().await;

        assert_eq!(
            code,
            Some(0),
            "SIG{signal} must end the process with status 0"
        );
        assert!(
            reqwest::get(&url).await.is_err(),
            "no new connection may be accepted after SIG{signal}"
        );
    }
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_completes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = ServerProcess::start(&[]).await;
    let token: serde_json::Value = reqwest::get(server.url("/api/auth/token?user_id=inflight"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let body = r#"{"batch": [{"op": "PUT", "type": "not_allowed", "id": "1", "data": {}}]}"#;
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let request = format!(
        "POST /api/data HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Let the server start on the request before the signal arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();

    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request: {response}"
    );
    assert!(response.contains("\"rejected\":1"), "{response}");
    assert_eq!(server.wait_exit().await, Some(0));
}

#[tokio::test]
async fn request_logs_carry_the_path_but_never_the_query_string() {
    let log = std::env::temp_dir().join(format!("uplink-log-{}.log", uuid::Uuid::new_v4()));
    let server = ServerProcess::start_with_log(&[("RUST_LOG", "info")], Some(&log)).await;
    for path in [
        "/health/live?token=SECRET-TOKEN",
        "/no/such/route?signature=SECRET-SIGNATURE",
    ] {
        reqwest::get(server.url(path)).await.unwrap();
    }
    server.signal("TERM");
    assert_eq!(server.wait_exit().await, Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("/no/such/route"),
        "the request is logged:\n{text}"
    );
    assert!(
        !text.contains("SECRET"),
        "a query string reached the log:\n{text}"
    );
}
