//! The version strategy when an update does not say which version it saw.

use serde_json::json;
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, spawn_with, text};

/// An update that does not say which version it saw could undo any
/// change since: it loses like a stale one. Creating a row needs none,
/// and deletes win.
async fn an_update_without_the_version_it_saw_loses<P: Backend>() {
    let app = spawn::<P>().await;
    let doc = Uuid::new_v4().to_string();
    let mut alice = Client::new(&app, "alice").await;
    let created = alice
        .send(&[json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "draft"}})])
        .await;
    assert_eq!(created["applied"], 1, "{created}");

    let patch = alice
        .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "blind edit"}})])
        .await;
    let put = alice
        .send(&[json!({"op": "PUT", "type": "documents", "id": doc, "data": {"content": "blind replace"}})])
        .await;
    let null = alice
        .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "null version", "version": null}})])
        .await;

    for report in [&patch, &put, &null] {
        assert_eq!(report["conflicts"], 1, "{report}");
        assert_eq!(report["results"][0]["status"], "conflict");
        assert_eq!(code_of(report), Some("version_required"), "{report}");
    }
    assert_eq!(text(&app, "SELECT content FROM documents").await, "draft");
    assert_eq!(app.number("SELECT version FROM documents").await, 1);
    // `on_conflict: record`: each one is there for the app to resolve.
    assert_eq!(
        app.number(
            "SELECT count(*) FROM uplink.write_conflicts WHERE conflict_type = 'version_required'"
        )
        .await,
        3
    );

    let edit = alice
        .send(&[json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "edit", "version": 1}})])
        .await;
    let delete = alice
        .send(&[json!({"op": "DELETE", "type": "documents", "id": doc})])
        .await;
    assert_eq!(edit["applied"], 1, "{edit}");
    assert_eq!(delete["applied"], 1, "{delete}");
    assert_eq!(app.number("SELECT count(*) FROM documents").await, 0);
}

async fn with_on_conflict_reject_an_update_without_a_version_is_dead_lettered<P: Backend>() {
    let app = spawn_with::<P>(
        "write:\n  tables:\n    documents: { conflict: { strategy: version, column: version, on_conflict: reject } }\n",
    )
    .await;
    let doc = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO documents (id, content) VALUES ('{doc}', 'v1')"
        ))
        .await;
    let mut alice = Client::new(&app, "alice").await;
    let report = alice
        .send(&[
            json!({"op": "PATCH", "type": "documents", "id": doc, "data": {"content": "blind"}}),
        ])
        .await;
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(code_of(&report), Some("version_required"));
    assert_eq!(text(&app, "SELECT content FROM documents").await, "v1");
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE code = 'version_required'")
            .await,
        1
    );
}

on_both_databases!(
    an_update_without_the_version_it_saw_loses,
    with_on_conflict_reject_an_update_without_a_version_is_dead_lettered,
);
