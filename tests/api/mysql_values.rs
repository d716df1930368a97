//! Values and keys on MySQL/MariaDB: what MySQL would silently alter is
//! converted or refused, a clash on another unique key is refused, and a
//! rejected transaction is dead-lettered while the rest applies.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::mysql::{code_of, own_tables_in, put, scalar, spawn};

#[tokio::test]
async fn values_mysql_would_alter_are_converted_or_refused() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    let reference = "0B1C6C6E-58F4-4B7F-9D5A-0A8C7E1F2D3B";
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"batch": [put(1, "items", &id, json!({
            "qty": 25.0, "done": true, "due_at": "2024-05-01T09:30:00.250+02:00",
            "seen_at": "2024-05-01 23:15:00-05:00", "attrs": "{\"a\": [1, 2]}", "ref": reference}))]}),
        )
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    let (qty, done, due_at, seen_at, attrs, hex_ref): (i32, bool, String, String, String, String) = sqlx::query_as(&format!(
        "SELECT qty, done, CAST(due_at AS CHAR), CAST(seen_at AS CHAR), CAST(attrs AS CHAR), LOWER(HEX(ref)) \
         FROM items WHERE id = '{id}'"
    ))
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!((qty, done), (25, true));
    assert_eq!(due_at, "2024-05-01 07:30:00.250000", "stored in UTC");
    assert_eq!(seen_at, "2024-05-02 04:15:00.000", "read back in UTC");
    assert_eq!(
        serde_json::from_str::<Value>(&attrs).unwrap(),
        json!({"a": [1, 2]})
    );
    assert_eq!(hex_ref, reference.replace('-', "").to_lowercase());

    for (data, code) in [
        (json!({"qty": 2.5}), "invalid_value"),
        (json!({"qty": "3000000000"}), "invalid_value"),
        (json!({"attrs": "{not json"}), "invalid_value"),
        (json!({"ref": "not-a-uuid"}), "invalid_value"),
        (json!({"done": null}), "not_null_violation"),
    ] {
        let (status, report) = app
            .post_batch(
                &token,
                &json!({"batch": [
                json!({"op_id": 9, "op": "PATCH", "type": "items", "id": id, "data": data})]}),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(code_of(&report), Some(code), "{data}: {report}");
    }
    let qty: i32 = scalar(&app, &format!("SELECT qty FROM items WHERE id = '{id}'")).await;
    assert_eq!(qty, 25, "refused values changed nothing");
}

#[tokio::test]
async fn a_put_that_clashes_on_another_unique_key_is_refused_not_merged() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    let (first, second) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"batch": [put(1, "items", &first, json!({"code": "A1", "qty": 1}))]}),
        )
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"batch": [put(2, "items", &second, json!({"code": "A1", "qty": 2}))]}),
        )
        .await;
    assert_eq!(code_of(&report), Some("unique_violation"), "{report}");
    let qty: i32 = scalar(&app, &format!("SELECT qty FROM items WHERE id = '{first}'")).await;
    assert_eq!(qty, 1, "the other row is untouched");
    let rows: i64 = scalar(&app, "SELECT count(*) FROM items").await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_rejected_transaction_is_dead_lettered_and_the_rest_applied() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    let (good, bad) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (status, report) = app
        .post_batch(&token, &json!({"batch": [
            {"op_id": 1, "op": "PUT", "type": "items", "id": good, "tx_id": 1, "data": {"qty": 1}},
            {"op_id": 2, "op": "PUT", "type": "items", "id": bad, "tx_id": 2, "data": {"qty": 1}},
            {"op_id": 3, "op": "PUT", "type": "items", "id": bad, "tx_id": 2, "data": {"qty": "many"}},
        ]}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    let rows: Vec<String> = sqlx::query_scalar("SELECT CAST(id AS CHAR) FROM items")
        .fetch_all(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(rows, vec![good]);
    let sql = own_tables_in(
        &app.db_pool,
        "SELECT CAST(code AS CHAR), failed_op_id, CAST(entries AS CHAR) FROM uplink.dead_letters \
         WHERE user_id = 'alice'",
    )
    .await;
    let (code, failed_op_id, entries): (String, i64, String) =
        sqlx::query_as(&sql).fetch_one(&app.db_pool).await.unwrap();
    assert_eq!((code.as_str(), failed_op_id), ("invalid_value", 3));
    let entries: Value = serde_json::from_str(&entries).unwrap();
    assert_eq!(entries.as_array().map(Vec::len), Some(2), "{entries}");
}
