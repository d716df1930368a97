//! The example app's schema and rules (the to-do lists of the deployment's
//! demo) keep each user's lists and todos their own.

use serde_json::Value as Json;

use crate::support::app::TestApp;
use crate::support::fixtures::todo_example;

/// Sends `batch` as `user`'s device; returns the report.
async fn upload(app: &TestApp, user: &str, batch: Json) -> Json {
    let token = app.token_for(user).await;
    let (status, report) = app
        .post_batch(
            &token,
            &serde_json::json!({"client_id": format!("{user}-device"), "batch": batch}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test]
async fn the_example_app_keeps_each_users_lists_and_todos_their_own() {
    use serde_json::json;
    let app = todo_example().spawn().await;
    let (list, todo, bobs_list) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    // As the demo apps do, Alice's device names itself in `created_by`; it
    // leaves `owner_id` out, which uplink fills in.
    let created = upload(
        &app,
        "alice",
        json!([
            {"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": list, "data": {"name": "Groceries"}},
            {"op_id": 2, "tx_id": 1, "op": "PUT", "type": "todos", "id": todo,
             "data": {"list_id": list, "description": "Milk", "created_by": "alice"}},
        ]),
    )
    .await;
    assert_eq!(created["applied"], 2, "{created}");
    let bob_created = upload(
        &app,
        "bob",
        json!([{"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": bobs_list, "data": {"name": "Bob's"}}]),
    )
    .await;
    assert_eq!(bob_created["applied"], 1, "{bob_created}");
    let rows = || async {
        sqlx::query_as::<_, (String, String, String, String, String, bool)>(
            "SELECT l.name, l.owner_id, t.description, t.created_by, t.list_id::text, t.completed
               FROM lists l JOIN todos t ON t.list_id = l.id WHERE l.owner_id = 'alice'",
        )
        .fetch_all(&app.db_pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    assert_eq!(
        before,
        vec![(
            "Groceries".into(),
            "alice".into(),
            "Milk".into(),
            "alice".into(),
            list.to_string(),
            false
        )]
    );

    // Bob edits, reassigns, replaces and deletes Alice's todo and list.
    let attacks = [
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"completed": 1, "completed_by": "bob"}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"list_id": bobs_list}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"created_by": "bob"}}),
        json!({"op": "PUT", "type": "todos", "id": todo, "data": {"list_id": bobs_list, "description": "mine"}}),
        json!({"op": "DELETE", "type": "todos", "id": todo}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"name": "Bob's now"}}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"owner_id": "bob"}}),
        json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "replaced"}}),
        json!({"op": "DELETE", "type": "lists", "id": list}),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let mut entry = attack.clone();
        entry["op_id"] = json!(i + 2);
        entry["tx_id"] = json!(i + 2);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{attack} → {report}");
        assert_eq!(
            report["results"][0]["code"], "forbidden",
            "{attack} → {report}"
        );
    }

    // Nor does he put todos of his own into her list.
    let (own_todo, intruder) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let own = upload(
        &app,
        "bob",
        json!([{"op_id": 20, "tx_id": 20, "op": "PUT", "type": "todos", "id": own_todo,
                "data": {"list_id": bobs_list, "description": "Bob's"}}]),
    )
    .await;
    assert_eq!(own["applied"], 1, "{own}");
    let intrusions = [
        json!({"op": "PUT", "type": "todos", "id": intruder, "data": {"list_id": list, "description": "spam"}}),
        json!({"op": "PATCH", "type": "todos", "id": own_todo, "data": {"list_id": list}}),
    ];
    for (i, intrusion) in intrusions.iter().enumerate() {
        let mut entry = intrusion.clone();
        entry["op_id"] = json!(i + 21);
        entry["tx_id"] = json!(i + 21);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{intrusion} → {report}");
        assert_eq!(
            report["results"][0]["code"], "check_violation",
            "{intrusion} → {report}"
        );
    }

    assert_eq!(rows().await, before, "Alice's list and todo are unchanged");
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM uplink.dead_letters WHERE user_id = 'bob' AND code = 'forbidden'",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(
        dead,
        attacks.len() as i64,
        "each refused entry is dead-lettered"
    );
}
