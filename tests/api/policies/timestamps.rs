//! The timestamp strategy: an older update loses to a newer one.

use serde_json::json;
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, text};

async fn an_older_update_loses_to_a_newer_one<P: Backend>() {
    let app = spawn::<P>().await;
    let task = Uuid::new_v4().to_string();
    let mut phone = Client::new(&app, "sam").await;
    let mut laptop = Client::new(&app, "sam").await;
    phone
        .send(&[json!({"op": "PUT", "type": "tasks", "id": task, "data": {"title": "start", "modified_at": "2024-05-01T10:00:00Z"}})])
        .await;
    laptop
        .send(&[json!({"op": "PATCH", "type": "tasks", "id": task, "data": {"title": "newer", "modified_at": "2024-05-01 10:05:00"}})])
        .await;
    let stale = phone
        .send(&[json!({"op": "PATCH", "type": "tasks", "id": task, "data": {"title": "older", "modified_at": "2024-05-01T12:01:00+02:00"}})])
        .await;

    assert_eq!(code_of(&stale), Some("stale_update"), "{stale}");
    assert_eq!(text(&app, "SELECT title FROM tasks").await, "newer");
    assert_eq!(
        app.number(
            "SELECT count(*) FROM uplink.write_conflicts WHERE conflict_type = 'stale_update'"
        )
        .await,
        1
    );
}

on_both_databases!(an_older_update_loses_to_a_newer_one,);
