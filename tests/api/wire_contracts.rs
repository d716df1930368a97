//! The wire shapes every PowerSync client sends to `POST /api/data`: the
//! reference write contract (powersync-reference-write-implementation:
//! backend/powersync-reference-write-api.openapi.yaml), the SDKs' CrudEntry
//! serializers, and entries uplink cannot read completely, which are never
//! acknowledged as applied.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::spawn_fixture_app;
use crate::support::responses::error_code;

async fn list_name(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT name FROM lists WHERE id = $1::uuid")
        .bind(id)
        .fetch_optional(&app.db_pool)
        .await
        .unwrap()
}

async fn dead_letters(app: &TestApp) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT code, entries FROM uplink.dead_letters ORDER BY id")
        .fetch_all(&app.db_pool)
        .await
        .unwrap()
}

async fn post_text(app: &TestApp, token: &str, body: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn reference_contract_put_then_patch_with_op_data_ends_with_the_patched_row() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    // The request body of the reference connector (WriteAPIClient.ts
    // `toApiTransaction`), with `previous_values` as its OpenAPI spec allows.
    let body = json!({"transactions": [
        {"transaction_id": 1, "crud": [
            {"id": id, "op": "PUT", "table": "lists", "transaction_id": 1, "op_data": {"name": "first", "owner_id": "alice"}},
        ]},
        {"transaction_id": 2, "crud": [
            {"id": id, "op": "PATCH", "table": "lists", "transaction_id": 2,
             "op_data": {"name": "second"}, "previous_values": {"name": "first"}},
        ]},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(list_name(&app, &id).await.as_deref(), Some("second"));
    let owner: Option<String> =
        sqlx::query_scalar("SELECT owner_id FROM lists WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
    assert_eq!(
        owner.as_deref(),
        Some("alice"),
        "the PATCH kept the other columns"
    );
    // The reference response: one result per transaction, in order.
    assert_eq!(
        report["results"],
        json!([{"status": "success"}, {"status": "success"}])
    );
    // uplink's own report alongside.
    assert_eq!(report["applied"], 2);
    assert_eq!(report["rejected"], 0);
    assert_eq!(report["entries"], json!([]));
}

#[tokio::test]
async fn reference_contract_rejection_is_a_backend_handled_fatal_result() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let (list, todo) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let body = json!({"transactions": [
        {"transaction_id": 1, "crud": [{"id": list, "op": "PUT", "table": "lists", "op_data": {"name": "kept"}}]},
        {"transaction_id": 2, "crud": [
            {"id": list, "op": "PATCH", "table": "lists", "op_data": {"name": "rolled back"}},
            {"id": todo, "op": "PUT", "table": "todos", "op_data": {"list_id": Uuid::new_v4().to_string()}},
        ]},
        {"transaction_id": 3, "crud": [{"id": Uuid::new_v4().to_string(), "op": "PUT", "table": "lists", "op_data": {"name": "after"}}]},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{report}");
    assert_eq!(results[0], json!({"status": "success"}));
    assert_eq!(results[2], json!({"status": "success"}));
    let fatal = &results[1];
    assert_eq!(fatal["status"], "fatal_error");
    assert_eq!(fatal["requires_client_handling"], false);
    assert_eq!(
        fatal["failed_operation"]["error_code"],
        "foreign_key_violation"
    );
    assert_eq!(fatal["failed_operation"]["operation_index"], 1);
    assert_eq!(fatal["failed_operation"]["details"]["table"], "todos");
    assert!(fatal["failed_operation"]["message"].is_string());
    assert_eq!(list_name(&app, &list).await.as_deref(), Some("kept"));
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 2);
    assert_eq!(dead_letters(&app).await[0].0, "foreign_key_violation");
}

#[tokio::test]
async fn a_patch_whose_payload_sits_under_an_unknown_key_is_rejected_not_applied() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    let (status, _) = app
        .post_batch(
            &token,
            &json!({"batch": [{"op_id": 1, "op": "PUT", "type": "lists", "id": id, "data": {"name": "original"}}]}),
        )
        .await;
    assert_eq!(status, 200);

    let body = json!({"client_id": "phone", "batch": [
        {"op_id": 2, "op": "PATCH", "type": "lists", "id": id, "tx_id": 7, "payload": {"name": "lost?"}},
        {"op_id": 3, "op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(), "tx_id": 7, "data": {"name": "same tx"}},
        {"op_id": 4, "op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(), "tx_id": 8, "data": {"name": "next tx"}},
    ]});
    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");
    let culprit = &report["results"][0];
    assert_eq!(culprit["status"], "rejected");
    assert_eq!(culprit["code"], "unknown_field");
    assert!(
        culprit["message"].as_str().unwrap().contains("\"payload\""),
        "{culprit}"
    );
    assert_eq!(report["results"][1]["code"], "transaction_rejected");
    assert_eq!(list_name(&app, &id).await.as_deref(), Some("original"));
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 2);
    // Dead-lettered with the payload it could not read, nothing lost.
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "unknown_field");
    assert_eq!(letters[0].1[0]["payload"], json!({"name": "lost?"}));
    assert_eq!(letters[0].1[1]["data"]["name"], "same tx");
}

#[tokio::test]
async fn unknown_envelope_keys_are_400_naming_the_key() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let entry = json!({"op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(), "data": {"name": "x"}});
    for (body, key) in [
        (json!({"batch": [entry], "client": "phone"}), "client"),
        (json!({"bacth": [entry]}), "bacth"),
        (json!({"transactions": [{"crud": [entry], "id": 1}]}), "id"),
    ] {
        let response = app.send_batch(&token, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_envelope", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{key}`")), "{message}");
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
    // Older reference connectors send `on_fatal_error`: accepted, ignored.
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"on_fatal_error": "skip", "transactions": [{"crud": [entry]}]}),
        )
        .await;
    assert_eq!(
        (status, &report["results"][0]["status"]),
        (200, &json!("success"))
    );
}

#[tokio::test]
async fn previous_values_must_be_an_object() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let body = json!({"transactions": [{"crud": [
        {"id": Uuid::new_v4().to_string(), "op": "PATCH", "table": "lists", "op_data": {"name": "x"}, "previous_values": "name"},
    ]}]});
    let response = app.send_batch(&token, &body).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_envelope");
}

/// The exact JSON of each SDK's serializer (or, where the SDK has none, of
/// the connector docs/client.md gives for it), checked row by row.
#[tokio::test]
async fn every_sdk_serializer_wire_format_writes_its_rows() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let ids: Vec<String> = (0..8).map(|_| Uuid::new_v4().to_string()).collect();
    let bodies = [
        // powersync-js: packages/common/src/client/sync/bucket/CrudEntry.ts
        // `toJSON()`: op_id, op, type, id, tx_id, data, old, metadata
        // (undefined members are dropped by JSON.stringify).
        json!({"client_id": "js", "batch": [
            {"op_id": 1, "op": "PUT", "type": "items", "id": ids[0], "tx_id": 1,
             "data": {"title": "js", "qty": 3, "is_active": 1, "price": 19.99}},
            {"op_id": 2, "op": "PATCH", "type": "items", "id": ids[0], "tx_id": 2,
             "data": {"qty": 4}, "old": {"qty": 3}, "metadata": "edit"},
        ]}),
        // powersync.dart: packages/powersync_core/lib/src/crud.dart
        // `toJson()`: every key, null when unset (tx_id, data, metadata, old).
        json!({"client_id": "dart", "batch": [
            {"op_id": 1, "op": "PUT", "type": "items", "id": ids[1], "tx_id": null,
             "data": {"title": "dart", "qty": 5, "is_active": 0, "price": "7.50"}, "metadata": null, "old": null},
            {"op_id": 2, "op": "PUT", "type": "lists", "id": ids[2], "tx_id": 9,
             "data": {"name": "dart list"}, "metadata": null, "old": null},
            {"op_id": 3, "op": "DELETE", "type": "lists", "id": ids[2], "tx_id": 10,
             "data": null, "metadata": null, "old": null},
        ]}),
        // powersync-kotlin: core/src/commonMain/kotlin/com/powersync/db/crud/CrudEntry.kt
        // has no serializer; its `opData` is Map<String, String?> (every
        // value text). docs/client.md's Kotlin connector writes the toJSON
        // keys from its properties.
        json!({"client_id": "kotlin", "batch": [
            {"op_id": 1, "op": "PUT", "type": "items", "id": ids[3], "tx_id": 1,
             "data": {"title": "kotlin", "qty": "6", "is_active": "1", "price": "1.25", "ship_date": "2024-06-01"}},
        ]}),
        // powersync-swift: Sources/PowerSync/Protocol/db/CrudEntry.swift:
        // `opData: [String: String?]?`, values text or null; the Swift
        // connector of docs/client.md sends the toJSON keys too.
        json!({"client_id": "swift", "batch": [
            {"op_id": 1, "op": "PUT", "type": "items", "id": ids[4], "tx_id": 1,
             "data": {"title": "swift", "qty": "7", "is_active": "0", "note": null}},
        ]}),
        // The CrudEntry property names themselves (what a reflective
        // encoder such as Swift's Codable or Gson produces): clientId is
        // the op id, transactionId, opData, previousValues, table.
        json!({"clientId": "reflective", "batch": [
            {"clientId": 1, "op": "PUT", "table": "items", "id": ids[5], "transactionId": 1,
             "opData": {"title": "reflective", "qty": "8"}},
            {"clientId": 2, "op": "PATCH", "table": "items", "id": ids[5], "transactionId": 2,
             "opData": {"qty": "9"}, "previousValues": {"qty": "8"}},
        ]}),
    ];
    for body in &bodies {
        let (status, report) = app.post_batch(&token, body).await;
        assert_eq!(status, 200, "{body}: {report}");
        assert_eq!(report["rejected"], 0, "{body}: {report}");
    }

    type Item = (String, Option<i32>, Option<bool>, Option<String>);
    let items: Vec<Item> =
        sqlx::query_as("SELECT title, qty, is_active, price::text FROM items ORDER BY title")
            .fetch_all(&app.db_pool)
            .await
            .unwrap();
    assert_eq!(
        items,
        vec![
            ("dart".into(), Some(5), Some(false), Some("7.50".into())),
            ("js".into(), Some(4), Some(true), Some("19.99".into())),
            ("kotlin".into(), Some(6), Some(true), Some("1.25".into())),
            ("reflective".into(), Some(9), None, None),
            ("swift".into(), Some(7), Some(false), None),
        ]
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lists").await,
        0,
        "the Dart DELETE applied"
    );
    // Exactly once per client, whatever the spelling of the op id: each
    // client's progress is its last op id, and a replay applies nothing.
    let expected_progress = [
        ("js", 2),
        ("dart", 3),
        ("kotlin", 1),
        ("swift", 1),
        ("reflective", 2),
    ];
    for (body, (client, last_op_id)) in bodies.iter().zip(expected_progress) {
        let last: i64 = sqlx::query_scalar(
            "SELECT last_op_id FROM uplink.client_progress WHERE user_id = 'alice' AND client_id = $1",
        )
        .bind(client)
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
        assert_eq!(last, last_op_id, "{client}");

        let (status, replay) = app.post_batch(&token, body).await;
        assert_eq!(status, 200, "{client}: {replay}");
        assert_eq!(replay["applied"], 0, "{client}: {replay}");
        assert_eq!(replay["duplicates"], last_op_id, "{client}: {replay}");
    }
    let replayed: Vec<Item> =
        sqlx::query_as("SELECT title, qty, is_active, price::text FROM items ORDER BY title")
            .fetch_all(&app.db_pool)
            .await
            .unwrap();
    assert_eq!(replayed, items, "a replay changes no row");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn a_number_postgres_cannot_hold_rejects_only_its_entry() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let (item, list) = (Uuid::new_v4(), Uuid::new_v4());
    // Written as text: serde_json (and so the test's json!) cannot hold it.
    let body = format!(
        r#"{{"client_id":"phone","batch":[
            {{"op_id":1,"op":"PUT","type":"items","id":"{item}","tx_id":1,"data":{{"title":"big","qty":1e99999999}}}},
            {{"op_id":2,"op":"PUT","type":"lists","id":"{list}","tx_id":2,"data":{{"name":"fine"}}}}]}}"#
    );

    let (status, report) = post_text(&app, &token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    let rejected = &report["results"][0];
    assert_eq!(rejected["code"], "invalid_value", "{report}");
    assert_eq!(rejected["column"], "qty", "{report}");
    assert_eq!(app.count("SELECT count(*) FROM items").await, 0);
    assert_eq!(
        list_name(&app, &list.to_string()).await.as_deref(),
        Some("fine")
    );
    // The dead letter keeps the number's text.
    let letters = dead_letters(&app).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].1[0]["data"]["qty"], "1e99999999");
}
