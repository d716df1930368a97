//! The version strategy: an edit of a stale version is recorded as a
//! conflict, and of racing edits of one version exactly one wins.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, text};

async fn a_stale_document_edit_is_recorded_with_both_versions<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(text(&app, "SELECT content FROM documents").await, "alice's");
    assert_eq!(app.number("SELECT version FROM documents").await, 2);
    let kind = text(&app, "SELECT conflict_type FROM uplink.write_conflicts").await;
    let json = |column: &'static str| {
        let app = &app;
        async move {
            let sql = format!("SELECT {column} FROM uplink.write_conflicts");
            serde_json::from_str::<Value>(&text(app, &sql).await).expect("a JSON object")
        }
    };
    let (client, server) = (json("client_data").await, json("server_data").await);
    let user = text(&app, "SELECT user_id FROM uplink.write_conflicts").await;
    assert_eq!(kind, "stale_version");
    assert_eq!(client["content"], "bob's");
    assert_eq!(server["content"], "alice's");
    assert_eq!(server["version"], 2);
    assert_eq!(user, "bob");
}

async fn racing_edits_of_one_version_let_exactly_one_win<P: Backend>() {
    let app = spawn::<P>().await;
    let doc = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO documents (id, content) VALUES ('{doc}', 'v1')"
        ))
        .await;
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
    assert_eq!(app.number("SELECT version FROM documents").await, 2);
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.write_conflicts")
            .await,
        7
    );
}

on_both_databases!(
    a_stale_document_edit_is_recorded_with_both_versions,
    racing_edits_of_one_version_let_exactly_one_win,
);
