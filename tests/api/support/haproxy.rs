//! HAProxy in front of uplink replicas, as a production load balancer: it
//! health-checks each replica on `/health/ready`, sends each request to the
//! next replica in turn, and retries elsewhere only what never reached a
//! replica (a refused connection).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `haproxy` binary: `UPLINK_HAPROXY`, else on PATH, else where Debian
/// installs it (/usr/sbin is not on every user's PATH).
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("UPLINK_HAPROXY") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|path| path.is_file());
    on_path.unwrap_or_else(|| {
        panic!("haproxy not found: scripts/replicas installs it (or set UPLINK_HAPROXY)")
    })
}

pub struct Haproxy {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Haproxy {
    /// Listens on a free port of 127.0.0.1 in front of `backends` (ports of
    /// 127.0.0.1) and waits until it answers ready through some replica.
    pub async fn start(backends: &[u16]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("local address")
            .port();
        let dir = std::env::temp_dir().join(format!("uplink-haproxy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the haproxy directory");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, port)| format!("  server r{i} 127.0.0.1:{port} check\n"))
            .collect();
        // A replica that fails one check (every 200 ms) leaves the rotation,
        // as a readiness probe does; `redispatch` sends a request whose
        // connection was refused to another replica. Requests that reached a
        // replica are never resent by HAProxy: the client retries them.
        let config = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 90s\n  timeout server 90s\n\
             \x20 timeout http-request 30s\n  retries 3\n  option redispatch 1\n\
             frontend uplink\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n  option httpchk GET /health/ready\n\
             \x20 http-check expect status 200\n  default-server inter 200ms fall 1 rise 1\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("write the haproxy configuration");
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let haproxy = Self { child, port, dir };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(response) = client.get(haproxy.url("/health/ready")).send().await
                && response.status() == 200
            {
                return haproxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "haproxy did not answer ready; see {}",
            haproxy.dir.join("haproxy.log").display()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
