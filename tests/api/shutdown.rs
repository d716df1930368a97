//! Graceful shutdown of the real binary on SIGTERM.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::process::ServerProcess;

/// A batch request the server has begun (it answered `100 Continue` to the
/// head) with half its body sent: the drain cannot end before the rest.
struct HeldRequest {
    stream: TcpStream,
    tail: &'static str,
}

impl HeldRequest {
    async fn open(server: &ServerProcess) -> Self {
        let token: serde_json::Value = reqwest::get(server.url("/api/auth/token?user_id=inflight"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["token"].as_str().unwrap().to_owned();
        let body = r#"{"batch": [{"op": "PUT", "type": "not_allowed", "id": "1", "data": {}}]}"#;
        let (head, tail) = body.split_at(body.len() / 2);
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let request = format!(
            "POST /api/data HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\
             Expect: 100-continue\r\n\r\n",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let continued = b"HTTP/1.1 100 Continue\r\n\r\n";
        let mut interim = vec![0; continued.len()];
        stream.read_exact(&mut interim).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&interim),
            String::from_utf8_lossy(continued),
            "the server takes the request"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        Self { stream, tail }
    }

    /// Sends the rest of the body; the whole response.
    async fn finish(mut self) -> String {
        self.stream.write_all(self.tail.as_bytes()).await.unwrap();
        let mut response = String::new();
        self.stream.read_to_string(&mut response).await.unwrap();
        response
    }
}

/// Waits until a new connection is refused, and checks the process was
/// still running then (draining the held request). Checked then rather than
/// after the exit: by then another test's server may have the port.
async fn refused_while_draining(server: &mut ServerProcess) {
    loop {
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "the process exited before it refused a new connection"
        );
        match TcpStream::connect(("127.0.0.1", server.port)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(err) => {
                assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
                break;
            }
        }
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "still draining when new connections are refused"
    );
}

#[tokio::test]
async fn sigterm_stops_accepting_and_exits_zero() {
    for signal in ["TERM", "INT"] {
        let mut server = ServerProcess::start(&[]).await;
        let url = server.url("/health/live");
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
        let held = HeldRequest::open(&server).await;

        server.signal(signal);
        refused_while_draining(&mut server).await;
        let response = held.finish().await;
        let code = server.wait_exit().await;

        assert!(
            response.starts_with("HTTP/1.1 200"),
            "SIG{signal}: {response:?}"
        );
        assert_eq!(
            code,
            Some(0),
            "SIG{signal} must end the process with status 0"
        );
    }
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_completes() {
    let mut server = ServerProcess::start(&[]).await;
    let held = HeldRequest::open(&server).await;

    server.signal("TERM");
    // Shutdown has begun: the rest of the body arrives during the drain.
    refused_while_draining(&mut server).await;
    let response = held.finish().await;

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
