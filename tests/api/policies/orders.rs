//! State machines: allowed status transitions, initial states, locked rows
//! and read-only columns.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::policies::{Client, code_of, spawn, spawn_with, text};

async fn order_in<P: Backend>(app: &TestApp<P>, status: &str) -> String {
    let id = Uuid::new_v4().to_string();
    app.db_pool
        .execute(&format!(
            "INSERT INTO orders (id, status) VALUES ('{id}', '{status}')"
        ))
        .await;
    id
}

async fn a_shipped_order_refuses_edits<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(app.text("SELECT note FROM orders").await, None);
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE code = 'row_locked'")
            .await,
        2
    );
}

async fn status_changes_follow_the_allowed_transitions<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(text(&app, "SELECT status FROM orders").await, "processing");
}

async fn a_new_order_is_created_only_in_an_initial_state<P: Backend>() {
    let app = spawn::<P>().await;
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
    assert_eq!(app.number("SELECT count(*) FROM orders").await, 0);

    let pending = clerk.send(&[put(Some("pending"))]).await;
    let default = clerk.send(&[put(None)]).await;
    assert_eq!(pending["applied"], 1, "{pending}");
    assert_eq!(default["applied"], 1, "the column's DEFAULT: {default}");
    assert_eq!(
        app.db_pool.texts("SELECT status FROM orders").await,
        [Some("pending".to_owned()), Some("pending".to_owned())]
    );
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters WHERE code = 'invalid_transition'")
            .await,
        4
    );
}

async fn configured_initial_states_replace_the_inferred_ones<P: Backend>() {
    let app = spawn_with::<P>(
        "write:\n  tables:\n    orders: { transitions: { column: status, initial: [draft, pending], allowed: { draft: [pending], pending: [draft, shipped] } } }\n",
    )
    .await;
    let mut clerk = Client::new(&app, "clerk").await;
    let put = |status: &str| json!({"op": "PUT", "type": "orders", "id": Uuid::new_v4().to_string(), "data": {"status": status}});
    let draft = clerk.send(&[put("draft")]).await;
    let pending = clerk.send(&[put("pending")]).await;
    let shipped = clerk.send(&[put("shipped")]).await;
    assert_eq!(draft["applied"], 1, "{draft}");
    assert_eq!(pending["applied"], 1, "{pending}");
    assert_eq!(code_of(&shipped), Some("invalid_transition"), "{shipped}");
    assert_eq!(app.number("SELECT count(*) FROM orders").await, 2);
}

async fn read_only_columns_are_skipped_and_the_rest_applies<P: Backend>() {
    let app = spawn::<P>().await;
    let order = order_in(&app, "pending").await;
    let mut clerk = Client::new(&app, "clerk").await;
    let report = clerk
        .send(&[json!({"op": "PATCH", "type": "orders", "id": order, "data": {"note": "ring twice", "approved_by": "me"}})])
        .await;
    assert_eq!(report["conflicts"], 1, "{report}");
    assert_eq!(code_of(&report), Some("read_only_column"));
    assert_eq!(report["results"][0]["column"], "approved_by");
    assert_eq!(
        (
            app.text("SELECT note FROM orders").await,
            app.text("SELECT approved_by FROM orders").await
        ),
        (Some("ring twice".to_owned()), None)
    );
}

on_both_databases!(
    a_shipped_order_refuses_edits,
    status_changes_follow_the_allowed_transitions,
    a_new_order_is_created_only_in_an_initial_state,
    configured_initial_states_replace_the_inferred_ones,
    read_only_columns_are_skipped_and_the_rest_applies,
);
