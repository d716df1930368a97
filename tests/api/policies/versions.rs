//! The version strategy: an edit of a stale version is recorded as a
//! conflict, and of racing edits of one version exactly one wins.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::policies::{Client, code_of, scalar, spawn};

#[tokio::test]
async fn a_stale_document_edit_is_recorded_with_both_versions() {
    let app = spawn().await;
    let doc = Uuid::new_v4().to_string();
    let mut alice = Client::new(&app, "alice").await;
    let mut bob = Client::new(&app, "bob").await;
    alice
        .send(&[json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "draft"}})])
        .await;

    // Both edit version 1 offline; Alice syncs first.
    let first = alice
        .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "alice's", "version": 1}})])
        .await;
    let second = bob
        .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "bob's", "version": 1}})])
        .await;

    assert_eq!(first["applied"], 1, "{first}");
    assert_eq!(second["conflicts"], 1, "{second}");
    assert_eq!(second["results"][0]["status"], "conflict");
    assert_eq!(code_of(&second), Some("stale_version"));
    let (content, version): (String, i64) =
        sqlx::query_as("SELECT content, version FROM documents")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
    assert_eq!((content.as_str(), version), ("alice's", 2));
    let (kind, client, server, user): (String, Value, Value, String) = sqlx::query_as(
        "SELECT conflict_type, client_data, server_data, user_id FROM uplink.write_conflicts",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(kind, "stale_version");
    assert_eq!(client["content"], "bob's");
    assert_eq!(server["content"], "alice's");
    assert_eq!(server["version"], 2);
    assert_eq!(user, "bob");
}

#[tokio::test]
async fn racing_edits_of_one_version_let_exactly_one_win() {
    let app = spawn().await;
    let doc = Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO documents (id, content) VALUES ($1::uuid, 'v1')")
        .bind(&doc)
        .execute(&app.db_pool)
        .await
        .unwrap();
    let mut editors = Vec::new();
    for i in 0..8 {
        editors.push(Client::new(&app, &format!("editor-{i}")).await);
    }
    let edits = editors.iter_mut().enumerate().map(|(i, editor)| {
        let doc = doc.clone();
        async move {
            editor
                .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": format!("edit {i}"), "version": 1}})])
                .await
        }
    });
    let reports = futures_util::future::join_all(edits).await;
    let applied = reports.iter().filter(|r| r["applied"] == 1).count();
    let conflicts = reports.iter().filter(|r| r["conflicts"] == 1).count();
    assert_eq!((applied, conflicts), (1, 7), "{reports:?}");
    assert_eq!(
        scalar::<i64>(&app, "SELECT version FROM documents").await,
        2
    );
    assert_eq!(
        scalar::<i64>(&app, "SELECT count(*) FROM uplink.write_conflicts").await,
        7
    );
}
