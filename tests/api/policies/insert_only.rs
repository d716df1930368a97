//! Insert-only tables accept new rows only.

use serde_json::json;
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, text};

async fn events_accept_new_rows_only<P: Backend>() {
    let app = spawn::<P>().await;
    let event = Uuid::new_v4().to_string();
    let mut device = Client::new(&app, "dev").await;
    let put = device
        .send(&[json!({"op": "PUT", "type": "events", "id": event, "data": {"kind": "login"}})])
        .await;
    let again = device
        .send(&[json!({"op": "PUT", "type": "events", "id": event, "data": {"kind": "rewritten"}})])
        .await;
    let patch = device
        .send(&[json!({"op": "PATCH", "type": "events", "id": event, "data": {"kind": "x"}})])
        .await;
    let delete = device
        .send(&[json!({"op": "DELETE", "type": "events", "id": event})])
        .await;

    assert_eq!(put["applied"], 1);
    // Re-sending an event is harmless, and reported as not written.
    assert_eq!(again["conflicts"], 1, "{again}");
    assert_eq!(again["results"][0]["status"], "conflict");
    assert_eq!(code_of(&again), Some("already_exists"));
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters").await,
        2,
        "only the PATCH and the DELETE are dead letters"
    );
    assert_eq!(code_of(&patch), Some("insert_only"));
    assert_eq!(code_of(&delete), Some("insert_only"));
    assert_eq!(text(&app, "SELECT kind FROM events").await, "login");
}

on_both_databases!(events_accept_new_rows_only,);
