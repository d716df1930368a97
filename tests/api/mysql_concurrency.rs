//! Concurrency on MySQL/MariaDB: concurrent creators of one row, batches
//! locking rows in opposite orders, lock waits, and exactly-once replays.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::tables_from_yaml;
use crate::support::mysql::{POLICIES, SCHEMA, code_of, put, scalar, spawn};
use crate::support::responses::error_code;

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
    let scraped = app.scrape().await;
    assert!(
        scraped
            .lines()
            .any(|line| line == "uplink_write_retries_total 1"),
        "the one retry is counted: {scraped}"
    );
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
