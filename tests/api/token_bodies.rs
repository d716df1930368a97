//! The token endpoint in the credential modes (`api_key` here, `jwt` alike)
//! checks the per-IP limit and the credential from the headers before it
//! reads a body: strangers cannot make uplink read, wait for or hold their
//! bodies.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::process::ServerProcess;

const API_KEY: &str = "a-service-account-key-of-some-length";
const EIGHT_MIB: usize = 8 * 1024 * 1024;

fn api_keys() -> String {
    let sha256 = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    serde_json::json!([{ "sha256": sha256, "user_id": "svc" }]).to_string()
}

/// uplink in `api_key` mode; `extra` adds settings.
async fn api_key_server(extra: &[(&str, &str)]) -> ServerProcess {
    let keys = api_keys();
    let mut env = vec![
        ("UPLINK__AUTH__IDENTITY__MODE", "api_key"),
        ("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", keys.as_str()),
    ];
    env.extend_from_slice(extra);
    ServerProcess::start(&env).await
}

fn token_head(authorization: &str, content_length: usize) -> String {
    format!(
        "POST /api/auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Authorization: {authorization}\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// Sends `head` and `body` (which may be shorter than its Content-Length)
/// while reading the answer; returns the status, or `None` when the server
/// reset the connection before an answer could be read.
async fn exchange(port: u16, head: String, body: Vec<u8>) -> Option<u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        // A refused body ends in a broken pipe: that is the point.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            let _ = writer.write_all(&body).await;
        }
        writer
    });
    let mut response = Vec::new();
    // Only a guard against a hanging test.
    let read = tokio::time::timeout(Duration::from_secs(120), reader.read_to_end(&mut response))
        .await
        .expect("the server answers or closes the connection");
    drop(send.await);
    let text = String::from_utf8_lossy(&response);
    match (read, text.split_whitespace().nth(1)) {
        (_, Some(status)) => status.parse().ok(),
        (Err(_), None) => None,
        (Ok(_), None) => panic!("the server closed without an answer"),
    }
}

#[tokio::test]
async fn a_bad_credential_is_refused_before_any_body_byte_arrives() {
    // A body is never sent: an answer proves nothing waited for one.
    let server = api_key_server(&[("UPLINK__SERVER__BODY_TIMEOUT", "3s")]).await;

    let forged = exchange(
        server.port,
        token_head("Bearer wrong-key", EIGHT_MIB),
        vec![],
    )
    .await;
    let missing = exchange(
        server.port,
        token_head("Basic bm9ib2R5", EIGHT_MIB),
        Vec::new(),
    )
    .await;

    assert_eq!(forged, Some(401), "a wrong key is refused at once");
    assert_eq!(
        missing,
        Some(401),
        "no bearer credential is refused at once"
    );
}

#[tokio::test]
async fn the_per_ip_limit_is_applied_before_any_body_byte_arrives() {
    let server = api_key_server(&[
        ("UPLINK__SERVER__BODY_TIMEOUT", "3s"),
        ("UPLINK__LIMITS__TOKEN_PER_IP__PER_SECOND", "0.001"),
        ("UPLINK__LIMITS__TOKEN_PER_IP__BURST", "1"),
    ])
    .await;
    let valid = format!("Bearer {API_KEY}");

    let first = exchange(server.port, token_head(&valid, 2), b"{}".to_vec()).await;
    let second = exchange(server.port, token_head(&valid, EIGHT_MIB), vec![]).await;

    assert_eq!(first, Some(200));
    assert_eq!(second, Some(429), "over the limit before the body is read");
}

#[tokio::test]
async fn forty_strangers_sending_eight_mib_each_leave_the_server_small() {
    let server = api_key_server(&[]).await;
    let before_kib = uplink_bench::procfs::peak_rss_kb(server.child.id()).expect("VmHWM");

    let strangers: Vec<_> = (0..40)
        .map(|i| {
            let head = token_head(&format!("Bearer guess-{i}"), EIGHT_MIB);
            tokio::spawn(exchange(server.port, head, vec![b' '; EIGHT_MIB]))
        })
        .collect();
    let mut answers = Vec::new();
    for stranger in strangers {
        answers.push(stranger.await.unwrap());
    }
    let valid = exchange(
        server.port,
        token_head(&format!("Bearer {API_KEY}"), 2),
        b"{}".to_vec(),
    )
    .await;

    // The high-water mark covers every moment of the flood.
    let peak_kib = uplink_bench::procfs::peak_rss_kb(server.child.id()).expect("VmHWM");
    let grown_mib = peak_kib.saturating_sub(before_kib) / 1024;
    eprintln!("peak RSS grew by {grown_mib} MiB under 40 x 8 MiB unauthenticated bodies");
    assert!(
        grown_mib < 64,
        "40 x 8 MiB bodies were held: +{grown_mib} MiB"
    );
    assert!(
        answers.iter().all(|a| matches!(a, Some(401) | None)),
        "every stranger is refused (or cut off): {answers:?}"
    );
    assert_eq!(valid, Some(200), "the service still issues tokens");
}
