//! The write path on MySQL/MariaDB over real HTTP: what the shared fixtures
//! and the property test do not cover there — owner and version policies,
//! concurrent creators of one row, lock waits, exactly-once replays, dead
//! letters, values MySQL would silently alter, and what start-up refuses.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::support::app::{TestApp, test_settings};
use crate::support::fixtures::tables_from_yaml;
use crate::support::mysql::own_tables_in;
use crate::support::responses::error_code;

const SCHEMA: &str = r#"
CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL, owner_id VARCHAR(255));
CREATE TABLE documents (id CHAR(36) PRIMARY KEY, content TEXT, version BIGINT NOT NULL DEFAULT 1);
CREATE TABLE items (
    id CHAR(36) PRIMARY KEY,
    qty INT,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    due_at DATETIME(6),
    seen_at TIMESTAMP(3) NULL,
    attrs JSON,
    ref BINARY(16),
    code VARCHAR(8) UNIQUE
);
"#;

const POLICIES: &str = r#"
write:
  tables:
    lists: { owner_column: owner_id }
    documents: { conflict: { strategy: version, column: version, on_conflict: record } }
    items: {}
"#;

async fn spawn() -> TestApp<MySqlPool> {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml(POLICIES))
        .spawn_mysql()
        .await
}

fn code_of(report: &Value) -> Option<&str> {
    report["results"][0]["code"].as_str()
}

/// MySQL types text in a binary collation (as uplink's tables and the test
/// databases use) as bytes: the queries read text with `CAST(… AS CHAR)`.
async fn scalar<T>(app: &TestApp<MySqlPool>, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql> + Send + Unpin,
{
    let sql = own_tables_in(&app.db_pool, sql).await;
    sqlx::query_scalar(&sql)
        .fetch_one(&app.db_pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn put(op_id: i64, table: &str, id: &str, data: Value) -> Value {
    json!({"op_id": op_id, "op": "PUT", "type": table, "id": id, "data": data})
}

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
async fn of_two_users_creating_one_row_at_once_exactly_one_is_acknowledged() {
    let app = &spawn().await;
    for _ in 0..10 {
        let id = Uuid::new_v4().to_string();
        let mut requests = Vec::new();
        for user in ["alice", "bob"] {
            let token = app.token_for(user).await;
            let body = json!({"batch": [put(1, "lists", &id, json!({"name": user}))]});
            requests.push(async move { app.post_batch(&token, &body).await });
        }
        let reports = futures_util::future::join_all(requests).await;
        let applied: Vec<&Value> = reports
            .iter()
            .filter(|(status, report)| *status == 200 && report["applied"] == 1)
            .map(|(_, report)| report)
            .collect();
        assert_eq!(applied.len(), 1, "{reports:?}");
        let forbidden = reports
            .iter()
            .filter(|(_, report)| code_of(report) == Some("forbidden"))
            .count();
        assert_eq!(forbidden, 1, "{reports:?}");
        let (owner, name): (String, String) = sqlx::query_as(&format!(
            "SELECT CAST(owner_id AS CHAR), CAST(name AS CHAR) FROM lists WHERE id = '{id}'"
        ))
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
        assert_eq!(owner, name, "the row is the acknowledged writer's");
    }
}

#[tokio::test]
async fn batches_writing_the_same_rows_in_opposite_orders_all_apply() {
    // Deadlocks (MySQL error 1213) between them are retried inside uplink,
    // with the rows locked in key order: no client sees a failure.
    let app = &spawn().await;
    let ids: Vec<String> = (0..40).map(|_| Uuid::new_v4().to_string()).collect();
    let mut requests = Vec::new();
    for (n, user) in ["alice", "bob", "carol", "dave"].into_iter().enumerate() {
        let token = app.token_for(user).await;
        let mut order: Vec<&String> = ids.iter().collect();
        if n % 2 == 1 {
            order.reverse();
        }
        let batch: Vec<Value> = order
            .iter()
            .enumerate()
            .map(|(i, id)| put(i as i64 + 1, "items", id, json!({"qty": n})))
            .collect();
        let body = json!({"batch": batch});
        requests.push(async move {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                statuses.push(app.post_batch(&token, &body).await);
            }
            statuses
        });
    }
    for (status, report) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .flatten()
    {
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["applied"], 40, "{report}");
    }
    let rows: i64 = scalar(app, "SELECT count(*) FROM items").await;
    assert_eq!(rows, 40);
    let values: i64 = scalar(app, "SELECT count(DISTINCT qty) FROM items").await;
    assert_eq!(values, 1, "each batch replaced every row as a whole");
}

#[tokio::test]
async fn a_row_locked_past_the_lock_wait_timeout_answers_503_and_applies_later() {
    // `database.statement_timeout` is InnoDB's lock wait timeout; waiting it
    // out (MySQL error 1205) is retried, then the device is told to retry.
    let app = TestApp::builder()
        .schema(SCHEMA)
        .config(|s| {
            s.write.tables = tables_from_yaml(POLICIES);
            s.database.statement_timeout = std::time::Duration::from_secs(1);
            s.write.transient_retries = 1;
        })
        .spawn_mysql()
        .await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    sqlx::query(&format!("INSERT INTO items (id, qty) VALUES ('{id}', 1)"))
        .execute(&app.db_pool)
        .await
        .unwrap();
    let mut holder = app.db_pool.begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT id FROM items WHERE id = '{id}' FOR UPDATE"
    ))
    .execute(&mut *holder)
    .await
    .unwrap();

    let body = json!({"client_id": "c1", "batch": [
        {"op_id": 1, "op": "PATCH", "type": "items", "id": id, "data": {"qty": 2}}]});
    let response = app.send_batch(&token, &body).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");
    holder.rollback().await.unwrap();
    let progress: i64 = scalar(&app, "SELECT count(*) FROM uplink.client_progress").await;
    assert_eq!(progress, 0, "the 503 request recorded nothing");

    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1, "{report}");
    let qty: i32 = scalar(&app, &format!("SELECT qty FROM items WHERE id = '{id}'")).await;
    assert_eq!(qty, 2);
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
async fn a_replayed_batch_is_applied_once_and_reported_as_duplicates() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    let id = Uuid::new_v4().to_string();
    let body = json!({"client_id": "device-1", "batch": [
        put(1, "items", &id, json!({"qty": 1})),
        json!({"op_id": 2, "op": "PATCH", "type": "items", "id": id, "data": {"qty": 2}}),
    ]});
    let (_, first) = app.post_batch(&token, &body).await;
    assert_eq!(first["applied"], 2, "{first}");
    sqlx::query(&format!("UPDATE items SET qty = 40 WHERE id = '{id}'"))
        .execute(&app.db_pool)
        .await
        .unwrap();
    let (status, again) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicates"], 2, "{again}");
    let qty: i32 = scalar(&app, &format!("SELECT qty FROM items WHERE id = '{id}'")).await;
    assert_eq!(qty, 40, "a replay writes nothing");
    let progress: i64 = scalar(
        &app,
        "SELECT last_op_id FROM uplink.client_progress WHERE user_id = 'alice' AND client_id = 'device-1'",
    )
    .await;
    assert_eq!(progress, 2);
}

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

#[tokio::test]
async fn checkpoints_count_up_per_client() {
    let app = spawn().await;
    let users = [
        ("alice", app.token_for("alice").await),
        ("bob", app.token_for("bob").await),
    ];
    // Interleaved: each (user, client) counts its own checkpoints only.
    for round in 1..=3 {
        for (user, token) in &users {
            for client in ["device-1", "device-2"] {
                let response = app
                    .client
                    .put(app.url("/api/data/checkpoint"))
                    .bearer_auth(token)
                    .json(&json!({"client_id": client}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["checkpoint"], round.to_string(), "{user}/{client}");
            }
        }
    }
}

#[tokio::test]
async fn health_reports_the_database_and_attachments_off() {
    let app = spawn().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "database": "ok", "storage": "disabled"})
    );
    let response = app
        .client
        .post(app.url("/api/attachments/upload-url"))
        .bearer_auth(app.token_for("alice").await)
        .json(&json!({"filename": "a.png", "content_type": "image/png", "size": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "attachment routes are not served");
}

#[test]
fn start_up_refuses_what_mysql_lacks_naming_the_key() {
    type Customize = fn(&mut uplink::settings::Settings);
    let cases: [(&str, Customize); 5] = [
        ("attachments.enabled", |_| {}),
        ("database.rls", |s| {
            s.attachments.enabled = false;
            s.database.rls = Some(uplink::config::RlsSettings { role: "app".into() });
        }),
        ("admin.api_key_sha256", |s| {
            s.attachments.enabled = false;
            s.admin.api_key_sha256 = Some("0".repeat(64));
        }),
        ("write.tables.stock.delta_columns", |s| {
            s.attachments.enabled = false;
            s.write.tables =
                tables_from_yaml("write: { tables: { stock: { delta_columns: [n] } } }");
        }),
        ("write.tables.notes.conflict.strategy", |s| {
            s.attachments.enabled = false;
            s.write.tables = tables_from_yaml(
                "write: { tables: { notes: { conflict: { strategy: timestamp, column: at } } } }",
            );
        }),
    ];
    for (key, customize) in cases {
        let mut settings = test_settings("mysql://root@127.0.0.1:3306/app");
        customize(&mut settings);
        let err = settings.validate().expect_err(key).to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("MySQL"), "{key}: {err}");
    }
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
