//! State machines: allowed status transitions, initial states, locked rows
//! and read-only columns.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::tables_from_yaml;
use crate::support::policies::{Client, SCHEMA, code_of, scalar, spawn};

async fn order_in(app: &TestApp, status: &str) -> String {
    let id = Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO orders (id, status) VALUES ($1::uuid, $2)")
        .bind(&id)
        .bind(status)
        .execute(&app.db_pool)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_shipped_order_refuses_edits() {
    let app = spawn().await;
    let order = order_in(&app, "shipped").await;
    let mut clerk = Client::new(&app, "clerk").await;
    let edit = clerk
        .send(&[
            json!({"op": "PATCH", "type": "orders", "id": order, "data": {"note": "gift wrap"}}),
        ])
        .await;
    let delete = clerk
        .send(&[json!({"op": "DELETE", "type": "orders", "id": order})])
        .await;
    assert_eq!(code_of(&edit), Some("row_locked"), "{edit}");
    assert_eq!(code_of(&delete), Some("row_locked"));
    assert_eq!(
        scalar::<Option<String>>(&app, "SELECT note FROM orders").await,
        None
    );
    assert_eq!(
        scalar::<i64>(
            &app,
            "SELECT count(*) FROM uplink.dead_letters WHERE code = 'row_locked'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn status_changes_follow_the_allowed_transitions() {
    let app = spawn().await;
    let order = order_in(&app, "pending").await;
    let mut clerk = Client::new(&app, "clerk").await;
    let jump = clerk
        .send(&[
            json!({"op": "PATCH", "type": "orders", "id": order, "data": {"status": "completed"}}),
        ])
        .await;
    let step = clerk
        .send(&[
            json!({"op": "PATCH", "type": "orders", "id": order, "data": {"status": "processing"}}),
        ])
        .await;
    assert_eq!(code_of(&jump), Some("invalid_transition"), "{jump}");
    assert_eq!(step["applied"], 1);
    assert_eq!(
        scalar::<String>(&app, "SELECT status FROM orders").await,
        "processing"
    );
}

#[tokio::test]
async fn a_new_order_is_created_only_in_an_initial_state() {
    let app = spawn().await;
    let mut clerk = Client::new(&app, "clerk").await;
    let put = |status: Option<&str>| {
        let mut data = json!({"note": "new"});
        if let Some(status) = status {
            data["status"] = json!(status);
        }
        json!({"op": "PUT", "type": "orders", "id": Uuid::new_v4().to_string(), "data": data})
    };
    // `pending` is the one state no transition leads to.
    for state in ["shipped", "processing", "completed", "unknown"] {
        let report = clerk.send(&[put(Some(state))]).await;
        assert_eq!(report["rejected"], 1, "{state}: {report}");
        assert_eq!(code_of(&report), Some("invalid_transition"), "{report}");
    }
    assert_eq!(scalar::<i64>(&app, "SELECT count(*) FROM orders").await, 0);

    let pending = clerk.send(&[put(Some("pending"))]).await;
    let default = clerk.send(&[put(None)]).await;
    assert_eq!(pending["applied"], 1, "{pending}");
    assert_eq!(default["applied"], 1, "the column's DEFAULT: {default}");
    assert_eq!(
        scalar::<Vec<String>>(&app, "SELECT array_agg(status) FROM orders").await,
        ["pending", "pending"]
    );
    assert_eq!(
        scalar::<i64>(
            &app,
            "SELECT count(*) FROM uplink.dead_letters WHERE code = 'invalid_transition'"
        )
        .await,
        4
    );
}

#[tokio::test]
async fn configured_initial_states_replace_the_inferred_ones() {
    let app = TestApp::builder()
        .schema(SCHEMA)
        .config(|s| {
            s.write.tables = tables_from_yaml(
                "write:\n  tables:\n    orders: { transitions: { column: status, initial: [draft, pending], allowed: { draft: [pending], pending: [draft, shipped] } } }\n",
            )
        })
        .spawn()
        .await;
    let mut clerk = Client::new(&app, "clerk").await;
    let put = |status: &str| json!({"op": "PUT", "type": "orders", "id": Uuid::new_v4().to_string(), "data": {"status": status}});
    let draft = clerk.send(&[put("draft")]).await;
    let pending = clerk.send(&[put("pending")]).await;
    let shipped = clerk.send(&[put("shipped")]).await;
    assert_eq!(draft["applied"], 1, "{draft}");
    assert_eq!(pending["applied"], 1, "{pending}");
    assert_eq!(code_of(&shipped), Some("invalid_transition"), "{shipped}");
    assert_eq!(scalar::<i64>(&app, "SELECT count(*) FROM orders").await, 2);
}

#[tokio::test]
async fn read_only_columns_are_skipped_and_the_rest_applies() {
    let app = spawn().await;
    let order = order_in(&app, "pending").await;
    let mut clerk = Client::new(&app, "clerk").await;
    let report = clerk
        .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"note": "ring twice", "approved_by": "me"}})])
        .await;
    assert_eq!(report["conflicts"], 1, "{report}");
    assert_eq!(code_of(&report), Some("read_only_column"));
    assert_eq!(report["results"][0]["column"], "approved_by");
    let (note, approved): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT note, approved_by FROM orders")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
    assert_eq!((note.as_deref(), approved), (Some("ring twice"), None));
}
