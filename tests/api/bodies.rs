//! Request bodies: gzip decoded once under the size limit, every body check
//! on the decoded bytes, authentication before any body is read, and a
//! deadline for bodies that come slowly or never.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::TestApp;
use crate::support::fixtures::{fixture_schema, fixture_write_settings, spawn_fixture_app};
use crate::support::process::ServerProcess;
use crate::support::responses::error_code;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `mib` MiB of zeros, gzipped (about 1 KB per MiB).
fn zeros_gzipped(mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..mib {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}

/// 64 KB that decode to 64 MiB, eight times the default body limit.
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| zeros_gzipped(64))
}

/// 1 GiB of zeros gzipped twice: a few kilobytes that a second decoding
/// pass would expand to 1 GiB.
fn double_bomb() -> &'static [u8] {
    static DOUBLE: OnceLock<Vec<u8>> = OnceLock::new();
    DOUBLE.get_or_init(|| gzip(&zeros_gzipped(1024)))
}

fn new_list(name: &str) -> (String, Value) {
    let id = uuid::Uuid::new_v4().to_string();
    let batch =
        json!({"batch": [{"op": "PUT", "type": "lists", "id": id, "data": {"name": name}}]});
    (id, batch)
}

async fn post_gzipped(app: &TestApp, token: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/api/data"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gzipped_upload_is_decoded_once_and_applied() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let (id, batch) = new_list("compressed");

    let response = post_gzipped(&app, &token, gzip(batch.to_string().as_bytes())).await;

    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["applied"], 1, "{report}");
    let name: String = sqlx::query_scalar("SELECT name FROM lists WHERE id::text = $1")
        .bind(&id)
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "compressed");
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_as_too_large_and_a_double_one_as_not_json() {
    // Built first: compressing blocks this thread, and with it the client's
    // pooled connections.
    let (bomb, double) = (bomb(), double_bomb());
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;

    let single = post_gzipped(&app, &token, bomb.to_vec()).await;
    let double = post_gzipped(&app, &token, double.to_vec()).await;
    let unauthenticated = app
        .client
        .post(app.url("/api/auth/token"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(bomb.to_vec())
        .send()
        .await
        .unwrap();

    assert_eq!(single.status(), 413);
    assert_eq!(error_code(single).await, "payload_too_large");
    // Decoded once, the double bomb is 1 MB of gzip: not a JSON document.
    assert_eq!(double.status(), 400);
    assert_eq!(unauthenticated.status(), 413, "routes without a token too");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn a_deep_json_body_sent_gzipped_is_refused_as_too_deep() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let id = uuid::Uuid::new_v4().to_string();
    let batch = format!(
        r#"{{"batch": [{{"op": "PUT", "type": "lists", "id": "{id}", "data": {{"name": "n", "extra": {deep}}}}}]}}"#
    );

    let response = post_gzipped(&app, &token, gzip(batch.as_bytes())).await;
    let twice = post_gzipped(&app, &token, gzip(&gzip(batch.as_bytes()))).await;

    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "json_too_deep");
    // Decoded once, gzip inside gzip is not a JSON document.
    assert_eq!(twice.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn other_content_encodings_and_broken_gzip_are_refused() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let (_, batch) = new_list("x");
    let packed = gzip(batch.to_string().as_bytes());
    let send = |encodings: &'static [&'static str], body: Vec<u8>| {
        let mut request = app
            .client
            .post(app.url("/api/data"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body);
        for encoding in encodings {
            request = request.header("Content-Encoding", *encoding);
        }
        request.send()
    };

    let brotli = send(&["br"], batch.to_string().into_bytes()).await.unwrap();
    let stacked = send(&["gzip, gzip"], gzip(&packed)).await.unwrap();
    let two_headers = send(&["gzip", "gzip"], gzip(&packed)).await.unwrap();
    let truncated = send(&["gzip"], packed[..packed.len() - 8].to_vec())
        .await
        .unwrap();
    let plain_as_gzip = send(&["gzip"], batch.to_string().into_bytes())
        .await
        .unwrap();

    for response in [brotli, stacked, two_headers] {
        assert_eq!(response.status(), 415);
        assert_eq!(error_code(response).await, "unsupported_media_type");
    }
    for response in [truncated, plain_as_gzip] {
        assert_eq!(response.status(), 400);
        assert_eq!(error_code(response).await, "invalid_gzip");
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

/// VmHWM (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    uplink_bench::procfs::peak_rss_kb(pid).expect("VmHWM in /proc/<pid>/status")
}

#[tokio::test]
async fn eight_concurrent_bombs_leave_the_server_small_and_live() {
    let (single, double) = (bomb(), double_bomb());
    let server = ServerProcess::start(&[]).await;
    let client = reqwest::Client::new();
    let token: Value = client
        .get(server.url("/api/auth/token?user_id=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // Four bombers on the write path, four on the token route (no token
    // needed), each kind single and double; three rounds each.
    let bombers: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            let (path, bearer) = if i < 4 {
                ("/api/data", Some(token.clone()))
            } else {
                ("/api/auth/token", None)
            };
            let url = server.url(path);
            let body = if i % 2 == 0 { single } else { double };
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..3 {
                    let mut request = client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("Content-Encoding", "gzip")
                        .body(body.to_vec());
                    if let Some(token) = &bearer {
                        request = request.bearer_auth(token);
                    }
                    statuses.push(request.send().await.unwrap().status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut live_answers = 0;
    while !bombers.iter().all(|b| b.is_finished()) {
        let live = client.get(server.url("/health/live")).send().await.unwrap();
        assert_eq!(live.status(), 200, "liveness answers during the bombs");
        live_answers += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut statuses = Vec::new();
    for bomber in bombers {
        statuses.extend(bomber.await.unwrap());
    }

    let peak_mib = peak_rss_kib(server.child.id()) / 1024;
    eprintln!("peak RSS under 8 concurrent bombs: {peak_mib} MiB");
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB");
    assert!(live_answers > 0);
    // Single bombs pass the size limit; double ones decode to 1 MB of gzip,
    // which is not JSON.
    assert!(
        statuses.iter().all(|s| *s == 413 || *s == 400),
        "every bomb is refused: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 413).count(), 12);
}

/// Sends a request head (and `body`, which may be short of its
/// Content-Length) on a raw connection and reads until the server closes it;
/// returns the response's status.
async fn raw_request(app: &TestApp, head: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    // A guard against a hanging test, far above any timeout configured here.
    // A reset (the server closing with our bytes unread) is a close too.
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response))
        .await
        .expect("the server answers and closes the connection");
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"))
}

fn head(path: &str, authorization: Option<&str>, content_length: usize) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {auth}Content-Length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn without_a_valid_token_the_body_is_never_waited_for() {
    let app = spawn_fixture_app().await;

    let missing = raw_request(&app, &head("/api/data", None, 1_000_000), b"").await;
    let forged = raw_request(
        &app,
        &head("/api/data", Some("Bearer not.a.token"), 1_000_000),
        b"",
    )
    .await;
    let attachment = raw_request(
        &app,
        &head("/api/attachments/upload-url", None, 1_000_000),
        b"",
    )
    .await;

    assert_eq!(missing, 401);
    assert_eq!(forged, 401);
    assert_eq!(attachment, 401);
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_gets_408_and_the_connection_closes() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(|s| {
            fixture_write_settings(s);
            s.server.body_timeout = Duration::from_secs(1);
        })
        .spawn()
        .await;
    let token = format!("Bearer {}", app.token_for("alice").await);

    let never = raw_request(&app, &head("/api/data", Some(&token), 1000), b"").await;
    let partial = raw_request(
        &app,
        &head("/api/data", Some(&token), 1000),
        br#"{"batch": ["#,
    )
    .await;
    let token_route = raw_request(&app, &head("/api/auth/token", None, 100), b"{").await;

    assert_eq!(never, 408);
    assert_eq!(partial, 408);
    assert_eq!(token_route, 408, "routes without a token too");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn a_body_is_not_read_while_the_token_is_still_being_verified() {
    // A provider whose JWKS endpoint accepts connections and never answers:
    // verifying a provider token waits `fetch_timeout`, then fails (503).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let jwks_uri = format!("http://{}/jwks.json", silent.local_addr().unwrap());
    let app = TestApp::builder()
        .config(move |s| {
            s.auth.identity.mode = uplink::auth::IdentityMode::Jwt;
            s.auth.identity.jwt.jwks_uri = Some(jwks_uri);
            s.auth.identity.jwt.issuer = Some("https://id.example.test/".to_owned());
            s.auth.identity.jwt.fetch_timeout = Duration::from_secs(3);
            s.auth.accept_upstream_tokens = true;
            s.server.body_timeout = Duration::from_secs(1);
        })
        .spawn()
        .await;
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let provider_token = format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "kid": "provider-key", "typ": "JWT"})),
        b64(json!({"sub": "mallory", "exp": chrono::Utc::now().timestamp() + 600}))
    );

    // The declared body never comes. Were it read while the token is being
    // verified, its timeout (1 s) would answer before the verification
    // (3 s) does.
    let status = raw_request(&app, &head("/api/data", Some(&provider_token), 1000), b"").await;

    assert_eq!(status, 503, "the answer is the verification's");
    drop(silent);
}
