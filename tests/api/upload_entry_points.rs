//! The write path's other entry points: the Node demo's single-row routes,
//! write checkpoints, and the `schema` command's allow list.

use serde_json::json;
use uuid::Uuid;

use crate::support::fixtures::{fixture_cli, spawn_fixture_app};

#[tokio::test]
async fn node_demo_compatibility_routes_write_single_rows() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("frank").await;
    let id = Uuid::new_v4().to_string();
    for (method, body) in [
        (
            reqwest::Method::PUT,
            json!({"table": "lists", "data": {"id": id, "name": "a"}}),
        ),
        (
            reqwest::Method::PATCH,
            json!({"table": "lists", "data": {"id": id, "name": "b"}}),
        ),
    ] {
        let response = app
            .client
            .request(method, app.url("/api/data"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let name: String = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "b");
    let response = app
        .client
        .delete(app.url("/api/data"))
        .bearer_auth(&token)
        .json(&json!({"table": "lists", "data": {"id": id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn write_checkpoints_increase_per_user_and_client() {
    let app = spawn_fixture_app().await;
    let tokens = app
        .checkpoints_count_per_user_and_client(["gina", "hal"], ["tablet", "phone"])
        .await;
    let missing = app
        .client
        .put(app.url("/api/data/checkpoint"))
        .bearer_auth(&tokens[0])
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn schema_prints_an_allow_list_for_the_live_database() {
    let app = spawn_fixture_app().await;
    let output = fixture_cli(&app, &["schema"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "write:",
        "  tables:",
        "    items:",
        "        - tags  # text[]",
        "        - status  # item_status",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert!(
        !yaml.contains("- id "),
        "the row id is not a client column:\n{yaml}"
    );
    assert!(
        !yaml.contains("client_progress:\n      columns"),
        "uplink's own tables have no `id` key"
    );
}
