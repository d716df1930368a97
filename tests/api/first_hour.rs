//! What a newcomer meets over HTTP and in the log: a body of the wrong
//! shape told what shape to send, disabled attachments saying so, route
//! labels as the docs write them, and a log with client errors at INFO as
//! `code` and `message`, without start-up notices.

use serde_json::Value;

use crate::support::app::{TestApp, spawn_app};
use crate::support::database::{create_database, database_url, migrate};
use crate::support::process::ServerProcess;

#[tokio::test]
async fn a_bare_array_body_is_told_to_be_an_object_with_batch_or_transactions() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    for body in [
        r#"[{"op": "PUT", "type": "lists", "id": "1", "data": {}}]"#,
        "[]",
        "42",
    ] {
        let (status, answer) = app.post_batch_text(&token, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            answer["error"]["message"],
            "the body must be a JSON object with `batch` or `transactions`",
            "{body}"
        );
    }
}

#[tokio::test]
async fn attachment_routes_with_attachments_off_say_how_to_turn_them_on() {
    let app = TestApp::builder()
        .config(|s| s.attachments.enabled = false)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let client = reqwest::Client::new();
    let requests = [
        client
            .post(app.url("/api/attachments/upload-url"))
            .json(&serde_json::json!({"filename": "a.png"})),
        client.get(app.url("/api/attachments/some-id/download-url")),
        client.delete(app.url("/api/attachments/some-id")),
    ];
    for request in requests {
        let response = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(
            body["error"]["message"],
            "attachments are disabled: set attachments.enabled"
        );
    }
}

#[tokio::test]
async fn the_local_files_route_is_labelled_as_the_docs_write_it() {
    let app = spawn_app().await;
    let response = app
        .get("/api/attachments/files/attachments/alice/x.png")
        .await;
    assert!(
        response.status().is_client_error(),
        "unsigned: {}",
        response.status()
    );

    let metrics = app.scrape().await;
    assert!(
        metrics.contains(r#"route="/api/attachments/files/{key}""#),
        "{metrics}"
    );
    assert!(!metrics.contains("{key:"), "no matcher regex in a label");
}

#[tokio::test]
async fn the_log_has_client_errors_at_info_with_code_and_message_and_no_notices() {
    let log =
        std::env::temp_dir().join(format!("uplink-log-{}.txt", uuid::Uuid::new_v4().simple()));
    // Migrated before: the start's own migration run meets uplink's tables
    // (`relation "_sqlx_migrations" already exists, skipping`).
    let url = database_url(&create_database().await);
    migrate(&url).await;
    let server = ServerProcess::spawn(&url, &[], Some(&log));
    server.wait_for("/health/ready").await;
    let client = reqwest::Client::new();
    let refused = client
        .get(server.url("/api/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let unauthorized = client
        .post(server.url("/api/data"))
        .json(&serde_json::json!({"batch": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    drop(server);

    // One line per refusal: its level, code and message, nothing Rust.
    let text = std::fs::read_to_string(&log).unwrap();
    let line_of = |code: &str| {
        text.lines()
            .find(|line| {
                line.contains("uplink::http") && line.contains(&format!("code=\"{code}\""))
            })
            .unwrap_or_else(|| panic!("no line with code {code}:\n{text}"))
            .to_owned()
    };
    let not_found = line_of("not_found");
    assert!(not_found.contains(" INFO "), "{not_found}");
    assert!(
        not_found.contains("no route for GET /api/nothing-here"),
        "{not_found}"
    );
    let missing_token = line_of("missing_token");
    assert!(missing_token.contains(" INFO "), "{missing_token}");
    assert!(missing_token.contains("status=401"), "{missing_token}");
    for noise in ["Refused {", "exception.details", "already exists, skipping"] {
        assert!(!text.contains(noise), "`{noise}` in the log:\n{text}");
    }
    // The one WARN is the dev identity banner: that needs acting on.
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(text.contains("DEV IDENTITY IS ON"), "{text}");
}
