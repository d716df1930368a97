//! Graceful shutdown of the real binary on SIGTERM.

use std::time::Duration;

use crate::support::process::ServerProcess;

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
