//! Pooled connections the database dropped (a restart, a failover) while
//! uplink held them idle: uplink does not ping a connection in steady use
//! before each request, so the next batch meets the dead ones first. It
//! must be applied all the same, not answered 503.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;

const NOTES: &str = "CREATE TABLE notes (id uuid PRIMARY KEY, body text)";
const MYSQL_NOTES: &str = "CREATE TABLE notes (id CHAR(36) PRIMARY KEY, body TEXT)";

fn note(op_id: i64, id: &str) -> serde_json::Value {
    json!({"op_id": op_id, "op": "PUT", "type": "notes", "id": id, "tx_id": op_id,
           "data": {"body": "kept"}})
}

async fn a_batch_after_the_database_dropped_every_connection_is_applied<P: Backend>() {
    // Arrange: every connection of uplink's pool opened and back in it.
    let app = P::spawn(
        TestApp::builder()
            .schema(P::dialect(NOTES, MYSQL_NOTES))
            .config(|s| {
                s.database.max_connections = 4;
                s.write.tables = tables_from_yaml("write: { tables: { notes: {} } }");
            }),
    )
    .await;
    let token = app.token_for("alice").await;
    let warm_up = (1..=8).map(|n| {
        let body = json!({"client_id": format!("warm-{n}"),
                          "batch": [note(1, &Uuid::new_v4().to_string())]});
        let (app, token) = (&app, &token);
        async move { app.post_batch(token, &body).await }
    });
    for (status, report) in futures_util::future::join_all(warm_up).await {
        assert_eq!(status, 200, "{report}");
    }
    let id = Uuid::new_v4().to_string();

    // Act: the server ends uplink's sessions; the next batch comes at once.
    app.db_pool.end_other_sessions().await;
    let (status, report) = app
        .post_batch(&token, &json!({"client_id": "c1", "batch": [note(1, &id)]}))
        .await;

    // Assert
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    let stored = app
        .db_pool
        .texts(&format!("SELECT body FROM notes WHERE id = '{id}'"))
        .await;
    assert_eq!(stored, [Some("kept".to_owned())]);
}

on_both_databases!(a_batch_after_the_database_dropped_every_connection_is_applied);
