//! The write policies on MySQL/MariaDB over real HTTP, where the shared
//! fixtures and the property test do not cover them: owner and version
//! policies, and policies holding for whole batches. The shared app and
//! helpers: support/mysql.rs.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::mysql::{code_of, put, scalar, spawn};

#[tokio::test]
async fn an_owner_column_keeps_other_users_rows_theirs() {
    let app = spawn().await;
    let (alice, bob) = (app.token_for("alice").await, app.token_for("bob").await);
    let id = Uuid::new_v4().to_string();
    let (status, report) = app
        .post_batch(
            &alice,
            &json!({"batch": [put(1, "lists", &id, json!({"name": "groceries"}))]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    let owner: String = scalar(
        &app,
        &format!("SELECT CAST(owner_id AS CHAR) FROM lists WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(
        owner, "alice",
        "a PUT without an owner is owned by its writer"
    );

    for entry in [
        put(1, "lists", &id, json!({"name": "mine now"})),
        json!({"op_id": 2, "op": "PATCH", "type": "lists", "id": id, "data": {"name": "x"}}),
        json!({"op_id": 3, "op": "DELETE", "type": "lists", "id": id}),
    ] {
        let (status, report) = app.post_batch(&bob, &json!({"batch": [entry]})).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(code_of(&report), Some("forbidden"), "{report}");
    }
    let (status, report) = app
        .post_batch(&bob, &json!({"batch": [put(4, "lists", &Uuid::new_v4().to_string(), json!({"name": "n", "owner_id": "alice"}))]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        code_of(&report),
        Some("forbidden"),
        "naming another owner: {report}"
    );
    let name: String = scalar(
        &app,
        &format!("SELECT CAST(name AS CHAR) FROM lists WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(name, "groceries");
}

#[tokio::test]
async fn a_stale_version_is_recorded_and_the_server_row_kept() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"batch": [put(1, "documents", &id, json!({"content": "v1"}))]}),
        )
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    let patch = |op_id: i64, content: &str, version: i64| {
        json!({"op_id": op_id, "op": "PATCH", "type": "documents", "id": id,
               "data": {"content": content, "version": version}})
    };
    let (_, report) = app
        .post_batch(&token, &json!({"batch": [patch(2, "v2", 1)]}))
        .await;
    assert_eq!(report["applied"], 1, "the current version writes: {report}");
    let (_, report) = app
        .post_batch(&token, &json!({"batch": [patch(3, "stale", 1)]}))
        .await;
    assert_eq!(code_of(&report), Some("stale_version"), "{report}");
    let (content, version): (String, i64) = sqlx::query_as(&format!(
        "SELECT CAST(content AS CHAR), version FROM documents WHERE id = '{id}'"
    ))
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!((content.as_str(), version), ("v2", 2));
    let recorded: i64 = scalar(
        &app,
        "SELECT count(*) FROM uplink.write_conflicts WHERE conflict_type = 'stale_version' \
         AND JSON_EXTRACT(client_data, '$.content') = 'stale'",
    )
    .await;
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn policies_hold_for_whole_batches_of_entries() {
    let app = spawn().await;
    let (alice, bob) = (app.token_for("alice").await, app.token_for("bob").await);
    let theirs: Vec<String> = (0..20).map(|_| Uuid::new_v4().to_string()).collect();
    let batch: Vec<Value> = theirs
        .iter()
        .enumerate()
        .map(|(i, id)| put(i as i64 + 1, "lists", id, json!({"name": format!("a{i}")})))
        .collect();
    let (_, report) = app.post_batch(&alice, &json!({"batch": batch})).await;
    assert_eq!(report["applied"], 20, "{report}");

    // Bob: his own new lists in one client transaction; in another, a change
    // of one of Alice's lists beside a new list of his.
    let mine: Vec<String> = (0..10).map(|_| Uuid::new_v4().to_string()).collect();
    let mut batch: Vec<Value> = mine
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"op_id": i + 1, "op": "PUT", "type": "lists", "id": id, "tx_id": 1,
                   "data": {"name": format!("b{i}")}})
        })
        .collect();
    let stray = Uuid::new_v4().to_string();
    batch.push(json!({"op_id": 11, "op": "PUT", "type": "lists", "id": stray, "tx_id": 2, "data": {"name": "b"}}));
    batch.push(json!({"op_id": 12, "op": "PATCH", "type": "lists", "id": theirs[3], "tx_id": 2, "data": {"name": "mine"}}));
    let (status, report) = app.post_batch(&bob, &json!({"batch": batch})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 10, "{report}");
    let culprit = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["op_id"] == 12)
        .cloned()
        .unwrap_or_default();
    assert_eq!(culprit["code"], "forbidden", "{report}");
    let owned_by_bob: i64 = scalar(&app, "SELECT count(*) FROM lists WHERE owner_id = 'bob'").await;
    assert_eq!(
        owned_by_bob, 10,
        "the rejected transaction's new list is not written"
    );
    let name: String = scalar(
        &app,
        &format!(
            "SELECT CAST(name AS CHAR) FROM lists WHERE id = '{}'",
            theirs[3]
        ),
    )
    .await;
    assert_eq!(name, "a3");

    // Versions: a batch with current and stale versions.
    let docs: Vec<String> = (0..5).map(|_| Uuid::new_v4().to_string()).collect();
    let batch: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, id)| put(i as i64 + 1, "documents", id, json!({"content": "v1"})))
        .collect();
    let (_, report) = app.post_batch(&alice, &json!({"batch": batch})).await;
    assert_eq!(report["applied"], 5, "{report}");
    let batch: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"op_id": i + 10, "op": "PATCH", "type": "documents", "id": id,
                   "data": {"content": "v2", "version": if i < 3 { 1 } else { 0 }}})
        })
        .collect();
    let (_, report) = app.post_batch(&alice, &json!({"batch": batch})).await;
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(report["conflicts"], 2, "{report}");
    for (i, id) in docs.iter().enumerate() {
        let (content, version): (String, i64) = sqlx::query_as(&format!(
            "SELECT CAST(content AS CHAR), version FROM documents WHERE id = '{id}'"
        ))
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
        let expected = if i < 3 { ("v2", 2) } else { ("v1", 1) };
        assert_eq!((content.as_str(), version), expected, "document {i}");
    }
}
