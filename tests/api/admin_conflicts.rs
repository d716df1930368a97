//! Write conflicts through the admin API: an operator lists and resolves them.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::{TestApp, with_admin_key};
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;

const DOCUMENTS: &str =
    "CREATE TABLE documents (id uuid PRIMARY KEY, content text, version bigint NOT NULL DEFAULT 1)";
const MYSQL_DOCUMENTS: &str = "CREATE TABLE documents (id CHAR(36) PRIMARY KEY, content TEXT, version BIGINT NOT NULL DEFAULT 1)";

/// Two edits of one document that both saw version 1: the second is recorded as a conflict.
async fn record_a_conflict<P: Backend>(app: &TestApp<P>, user: &str) -> String {
    let token = app.token_for(user).await;
    let doc = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO documents (id, content) VALUES ('{doc}', 'v1')"
        ))
        .await;
    let edit = |op_id: i64, content: &str| json!({"op_id": op_id, "op": "PATCH", "type": "documents", "id": doc, "tx_id": op_id, "data": {"content": content, "version": 1}});
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"client_id": format!("{user}-phone"), "batch": [edit(1, "first"), edit(2, "second")]}),
        )
        .await;
    assert_eq!(report["conflicts"], 1, "{report}");
    doc
}

async fn an_operator_lists_and_resolves_write_conflicts<P: Backend>() {
    let app = P::spawn(
        TestApp::builder()
            .schema(P::dialect(DOCUMENTS, MYSQL_DOCUMENTS))
            .config(|s| {
                s.write.tables = tables_from_yaml(
                    "write:\n  tables:\n    documents: { conflict: { strategy: version, column: version, on_conflict: record } }\n",
                )
            })
            .config(with_admin_key),
    )
    .await;
    let alices = record_a_conflict(&app, "alice").await;
    record_a_conflict(&app, "bob").await;

    let open: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["conflicts"].as_array().unwrap().len(), 2, "{open}");
    let only_alice: Value = app
        .admin(
            reqwest::Method::GET,
            "/api/admin/conflicts?user_id=alice&table=documents",
        )
        .await
        .json()
        .await
        .unwrap();
    let conflict = &only_alice["conflicts"][0];
    assert_eq!(only_alice["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(conflict["row_id"], alices.as_str());
    assert_eq!(conflict["table_name"], "documents");
    assert_eq!(conflict["client_data"]["content"], "second");
    assert_eq!(conflict["server_data"]["content"], "first");
    assert_eq!(conflict["server_data"]["version"], 2);
    assert_eq!(conflict["conflict_type"], "stale_version");
    assert_eq!(conflict["resolved"], false);
    let id = conflict["id"].as_str().unwrap().to_owned();

    let resolved = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{id}/resolve"),
        )
        .await;

    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["resolved"], true);
    assert!(resolved["resolved_at"].is_string());
    assert_eq!(
        app.number(&format!(
            "SELECT count(*) FROM uplink.write_conflicts WHERE id = '{id}' AND resolved"
        ))
        .await,
        1
    );
    let still_open: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still_open["conflicts"].as_array().unwrap().len(), 1);
    let all: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts?resolved=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["conflicts"].as_array().unwrap().len(), 2);
    let again = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{id}/resolve"),
        )
        .await;
    assert_eq!(again.status(), 200, "resolving is idempotent");
    let unknown = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{}/resolve", Uuid::new_v4()),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let not_uuid = app
        .admin(reqwest::Method::POST, "/api/admin/conflicts/42/resolve")
        .await;
    assert_eq!(not_uuid.status(), 400);
    let bad_filter = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts?resolved=maybe")
        .await;
    assert_eq!(bad_filter.status(), 400);
}

on_both_databases!(an_operator_lists_and_resolves_write_conflicts);
