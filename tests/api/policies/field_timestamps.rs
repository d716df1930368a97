//! The field-timestamps strategy: changes to different fields merge.

use serde_json::json;
use uuid::Uuid;

use crate::support::policies::{Client, code_of, spawn};

#[tokio::test]
async fn each_client_changing_a_different_field_merges() {
    let app = spawn().await;
    let note = Uuid::new_v4().to_string();
    let mut a = Client::new(&app, "ann").await;
    let mut b = Client::new(&app, "ben").await;
    a.send(&[json!({"op": "PUT", "type": "notes", "id": note, "data": {"title": "t0", "body": "b0"},
                    "metadata": "{\"title\":\"2024-05-01T10:00:00Z\",\"body\":\"2024-05-01T10:00:00Z\"}"})])
        .await;

    let ra = a
        .send(&[
            json!({"op": "PATCH", "type": "notes", "id": note, "data": {"title": "ann's title"},
                       "metadata": "{\"title\":\"2024-05-01T10:05:00Z\"}"}),
        ])
        .await;
    let rb = b
        .send(&[
            json!({"op": "PATCH", "type": "notes", "id": note, "data": {"body": "ben's body"},
                       "metadata": "{\"body\":\"2024-05-01T10:03:00Z\"}"}),
        ])
        .await;
    // A third write of the title, made earlier than Ann's, loses.
    let stale = b
        .send(&[
            json!({"op": "PATCH", "type": "notes", "id": note, "data": {"title": "old title"},
                       "metadata": "{\"title\":\"2024-05-01T10:01:00Z\"}"}),
        ])
        .await;

    assert_eq!(
        (ra["applied"].clone(), rb["applied"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(code_of(&stale), Some("stale_field"), "{stale}");
    let (title, body): (String, String) = sqlx::query_as("SELECT title, body FROM notes")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(
        (title.as_str(), body.as_str()),
        ("ann's title", "ben's body")
    );
}
