//! The field-timestamps strategy: changes to different fields merge.

use serde_json::json;
use uuid::Uuid;

use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, text};

async fn each_client_changing_a_different_field_merges<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(
        (
            text(&app, "SELECT title FROM notes").await,
            text(&app, "SELECT body FROM notes").await
        ),
        ("ann's title".to_owned(), "ben's body".to_owned())
    );
}

on_both_databases!(each_client_changing_a_different_field_merges,);
