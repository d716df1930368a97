//! A client transaction that fails is rolled back and dead-lettered alone,
//! and a dead letter replays once after its cause is fixed.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::{fixture_cli, put_list, spawn_fixture_app, tables_from_yaml};

#[tokio::test]
async fn a_failing_client_transaction_is_rolled_back_and_dead_lettered_alone() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("bob").await;
    let list = Uuid::new_v4().to_string();
    let good_todo = Uuid::new_v4().to_string();
    let orphan = Uuid::new_v4().to_string();
    let missing_list = Uuid::new_v4().to_string();
    let body = json!({"client_id": "phone", "batch": [
        put_list(1, 1, &list, "Groceries"),
        // tx 2: a list rename, then a todo for a list that does not exist.
        {"op_id": 2, "op": "PATCH", "type": "lists", "id": list, "tx_id": 2, "data": {"name": "Renamed"}},
        {"op_id": 3, "op": "PUT", "type": "todos", "id": orphan, "tx_id": 2, "data": {"list_id": missing_list, "description": "orphan"}},
        // tx 3: a bad uuid
        {"op_id": 4, "op": "PUT", "type": "todos", "id": "not-a-uuid", "tx_id": 3, "data": {"description": "bad"}},
        // tx 4: fine
        {"op_id": 5, "op": "PUT", "type": "todos", "id": good_todo, "tx_id": 4, "data": {"list_id": list, "description": "milk"}},
        // tx 5: check violation
        {"op_id": 6, "op": "PUT", "type": "inventory", "id": Uuid::new_v4().to_string(), "tx_id": 5, "data": {"quantity": -1}},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 2);
    assert_eq!(report["rejected"], 4);
    let codes: Vec<(i64, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["op_id"].as_i64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (2, "transaction_rejected".to_owned()),
            (3, "foreign_key_violation".to_owned()),
            (4, "invalid_value".to_owned()),
            (6, "check_violation".to_owned()),
        ]
    );
    let fk = &report["results"][1];
    assert_eq!(fk["constraint"], "todos_list_id_fkey");
    // The rename of tx 2 was rolled back with it; tx 1 and tx 4 stand.
    let name: String = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "Groceries");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 1);
    // Three dead letters, with their codes and entries.
    let dead: Vec<(String, Option<String>, Value)> = sqlx::query_as(
        "SELECT code, constraint_name, entries FROM uplink.dead_letters ORDER BY id",
    )
    .fetch_all(&app.db_pool)
    .await
    .unwrap();
    let dead_codes: Vec<&str> = dead.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(
        dead_codes,
        ["foreign_key_violation", "invalid_value", "check_violation"]
    );
    assert_eq!(dead[0].1.as_deref(), Some("todos_list_id_fkey"));
    assert_eq!(dead[0].2.as_array().unwrap().len(), 2);
    assert_eq!(dead[0].2[1]["data"]["description"], "orphan");
}

#[tokio::test]
async fn a_deferred_constraint_rejects_its_own_client_transaction() {
    let app = TestApp::builder()
        .schema(
            "CREATE TABLE parents (id uuid PRIMARY KEY, name text);
             CREATE TABLE children (id uuid PRIMARY KEY,
                 parent_id uuid REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .config(|s| {
            s.write.tables =
                tables_from_yaml("write:\n  tables:\n    parents: {}\n    children: {}\n")
        })
        .spawn()
        .await;
    let token = app.token_for("dora").await;
    let parent = Uuid::new_v4().to_string();
    let body = json!({"batch": [
        {"op_id": 1, "op": "PUT", "type": "children", "id": Uuid::new_v4().to_string(), "tx_id": 1,
         "data": {"parent_id": Uuid::new_v4().to_string()}},
        {"op_id": 2, "op": "PUT", "type": "parents", "id": parent, "tx_id": 2, "data": {"name": "kept"}},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["results"][0]["code"], "foreign_key_violation");
    assert_eq!(app.count("SELECT count(*) FROM parents").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM children").await, 0);
}

#[tokio::test]
async fn a_dead_letter_replays_once_after_the_cause_is_fixed() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("hank").await;
    let list = Uuid::new_v4().to_string();
    let todo = Uuid::new_v4().to_string();
    let (_, report) = app
        .post_batch(&token, &json!({"batch": [
            {"op_id": 1, "op": "PUT", "type": "todos", "id": todo, "tx_id": 1, "data": {"list_id": list, "description": "later"}}
        ]}))
        .await;
    assert_eq!(report["rejected"], 1, "{report}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM uplink.dead_letters")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    let listed = fixture_cli(&app, &["dead-letters", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("foreign_key_violation"));

    // Still failing: the outcome says so and nothing changes.
    let again = fixture_cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("foreign_key_violation"));
    // Fix the cause, then replay.
    sqlx::query("INSERT INTO lists (id, name) VALUES ($1::uuid, 'restored')")
        .bind(&list)
        .execute(&app.db_pool)
        .await
        .unwrap();
    let replayed = fixture_cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 1);
    let twice = fixture_cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(
        !twice.status.success(),
        "a replayed dead letter is not applied twice"
    );
    assert!(String::from_utf8_lossy(&twice.stdout).contains("already_replayed"));

    let discarded = fixture_cli(&app, &["dead-letters", "discard", &id.to_string()]);
    assert!(discarded.status.success());
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        0
    );
}
