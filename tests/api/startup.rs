//! Start-up of the real binary: the dev identity warning, serving while
//! Postgres is down, prompt exit on SIGTERM.

use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::support::database::{database_url, server_url};
use crate::support::process::ServerProcess;

const BANNER: &str = "DEV IDENTITY IS ON";

async fn startup_log(extra_env: &[(&str, &str)]) -> String {
    let log = std::env::temp_dir().join(format!("uplink-log-{}.log", uuid::Uuid::new_v4()));
    let server = ServerProcess::start_with_log(extra_env, Some(&log)).await;
    server.signal("TERM");
    assert_eq!(server.wait_exit().await, Some(0));
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test]
async fn dev_identity_prints_a_loud_warning_at_start_up() {
    let log = startup_log(&[]).await;
    let lines: Vec<&str> = log.lines().collect();
    let banner = lines
        .iter()
        .position(|line| line.contains(BANNER))
        .unwrap_or_else(|| panic!("no dev identity warning in the log:\n{log}"));
    assert!(
        lines[..banner]
            .iter()
            .rev()
            .take(3)
            .any(|line| line.contains("WARN")),
        "the banner is logged as a warning:\n{log}"
    );
    assert!(log.contains("a token for any user"), "{log}");

    let api_keys =
        serde_json::json!([{ "sha256": "a".repeat(64), "user_id": "service" }]).to_string();
    let quiet = startup_log(&[
        ("UPLINK__AUTH__IDENTITY__MODE", "api_key"),
        ("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", &api_keys),
    ])
    .await;
    assert!(
        !quiet.contains(BANNER),
        "no warning without dev identity:\n{quiet}"
    );
}

#[tokio::test]
async fn with_postgres_down_uplink_listens_unready_then_serves_once_it_answers() {
    // A database that does not exist yet: Postgres refuses every connection to it.
    let name = format!("uplink_test_{}", uuid::Uuid::new_v4().simple());
    let config = std::env::temp_dir().join(format!("{name}.yaml"));
    std::fs::write(&config, "write:\n  tables:\n    notes: {}\n").unwrap();
    let server = ServerProcess::spawn(
        &database_url(&name),
        &[
            ("UPLINK_CONFIG", config.to_str().unwrap()),
            ("UPLINK__DATABASE__ACQUIRE_TIMEOUT", "1s"),
        ],
        None,
    );
    server.wait_for("/health/live").await;
    let client = reqwest::Client::new();

    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let token: serde_json::Value = client
        .get(server.url("/api/auth/token?user_id=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("tokens need no database");
    let note = uuid::Uuid::new_v4().to_string();
    let upload = || {
        client
            .post(server.url("/api/data"))
            .bearer_auth(token)
            .json(&json!({"client_id": "phone", "batch": [
                {"op_id": 1, "op": "PUT", "type": "notes", "id": note, "data": {"body": "hello"}}
            ]}))
            .send()
    };
    let refused = upload().await.unwrap();
    assert_eq!(refused.status(), 503, "nothing can be applied yet");
    assert!(refused.headers().contains_key("retry-after"));

    // The database appears.
    let mut admin = PgConnection::connect(&server_url()).await.unwrap();
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap();
    let mut db = PgConnection::connect(&database_url(&name)).await.unwrap();
    db.execute("CREATE TABLE notes (id uuid PRIMARY KEY, body text)")
        .await
        .unwrap();
    server.wait_for("/health/ready").await;

    let applied = upload().await.unwrap();
    assert_eq!(applied.status(), 200);
    let report: serde_json::Value = applied.json().await.unwrap();
    assert_eq!(report["applied"], 1, "{report}");
    let body: String = sqlx::query_scalar("SELECT body FROM notes WHERE id = $1::uuid")
        .bind(&note)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(body, "hello");
    let migrated: bool =
        sqlx::query_scalar("SELECT to_regclass('uplink.dead_letters') IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(
        migrated,
        "uplink's migrations ran once the database answered"
    );
    std::fs::remove_file(&config).unwrap();
}

#[tokio::test]
async fn sigterm_ends_the_process_once_in_flight_work_is_done_even_with_idle_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = ServerProcess::start(&[]).await;
    // A keep-alive connection left idle, as load balancers and SDKs keep them.
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    server.signal("TERM");

    assert_eq!(server.wait_exit().await, Some(0));
}

#[tokio::test]
async fn with_nothing_listening_at_the_database_address_uplink_is_live_not_ready() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = ServerProcess::spawn(
        &format!("postgres://postgres@127.0.0.1:{closed_port}/postgres"),
        &[("UPLINK__DATABASE__ACQUIRE_TIMEOUT", "1s")],
        None,
    );

    server.wait_for("/health/live").await;

    let client = reqwest::Client::new();
    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let token: serde_json::Value = client
        .get(server.url("/api/auth/token?user_id=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload = client
        .post(server.url("/api/data"))
        .bearer_auth(token["token"].as_str().unwrap())
        .json(&json!({"batch": [{"op": "PUT", "type": "notes", "id": "1", "data": {}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 503);
    assert!(upload.headers().contains_key("retry-after"));
    server.signal("TERM");
    assert_eq!(server.wait_exit().await, Some(0));
}
