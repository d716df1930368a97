//! The write path over real HTTP applies each entry exactly once: replays,
//! overlapping and concurrent batches, an outage, and op_ids that do not
//! increase.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::database::Outage;
use crate::support::fixtures::{put_list, spawn_fixture_app};
use crate::support::responses::error_code;

#[tokio::test]
async fn the_same_batch_twice_applies_once_and_reports_duplicates() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let inventory = Uuid::new_v4().to_string();
    let body = json!({"client_id": "device-1", "batch": [
        {"op_id": 1, "op": "PUT", "type": "inventory", "id": inventory, "tx_id": 1, "data": {"product": "apple", "quantity": 1}},
        {"op_id": 2, "op": "PATCH", "type": "inventory", "id": inventory, "tx_id": 2, "data": {"quantity": 5}},
    ]});

    let (status, first) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["applied"], 2);
    let (status, second) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);

    assert_eq!(second["applied"], 0);
    assert_eq!(second["duplicates"], 2);
    assert!(
        second["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate")
    );
    let last: i64 = sqlx::query_scalar(
        "SELECT last_op_id FROM uplink.client_progress WHERE user_id = 'alice' AND client_id = 'device-1'",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(last, 2);
}

#[tokio::test]
async fn overlapping_batches_apply_only_the_new_entries() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let ids: Vec<String> = (0..4).map(|_| Uuid::new_v4().to_string()).collect();
    let entries: Vec<Value> = (0..4)
        .map(|i| put_list(i + 1, i + 1, &ids[i as usize], "x"))
        .collect();

    let (_, first) = app
        .post_batch(&token, &json!({"client_id": "c", "batch": entries[..2]}))
        .await;
    // The header carries the client id this time.
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("PowerSync-Client-Id", "c")
        .json(&json!({"batch": entries[1..]}))
        .send()
        .await
        .unwrap();
    let second: Value = response.json().await.unwrap();

    assert_eq!(first["applied"], 2);
    assert_eq!(second["applied"], 2, "{second}");
    assert_eq!(second["duplicates"], 1);
    assert_eq!(second["results"][0]["op_id"], 2);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 4);
}

#[tokio::test]
async fn concurrent_requests_of_one_client_apply_each_entry_once() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let lists: Vec<String> = (0..20).map(|_| Uuid::new_v4().to_string()).collect();
    let entries: Vec<Value> = lists
        .iter()
        .enumerate()
        .map(|(i, id)| put_list(i as i64 + 1, i as i64 + 1, id, "concurrent"))
        .collect();
    let body = json!({"client_id": "same-device", "batch": entries});

    let (a, b, c) = tokio::join!(
        app.post_batch(&token, &body),
        app.post_batch(&token, &body),
        app.post_batch(&token, &body)
    );

    let reports = [a, b, c];
    assert!(reports.iter().all(|(status, _)| *status == 200));
    let applied: i64 = reports
        .iter()
        .map(|(_, r)| r["applied"].as_i64().unwrap())
        .sum();
    let duplicates: i64 = reports
        .iter()
        .map(|(_, r)| r["duplicates"].as_i64().unwrap())
        .sum();
    assert_eq!(
        applied, 20,
        "each entry applied exactly once across the requests"
    );
    assert_eq!(duplicates, 40);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 20);
}

#[tokio::test]
async fn database_down_answers_503_and_the_same_batch_applies_later() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("carol").await;
    let id = Uuid::new_v4().to_string();
    let body = json!({"client_id": "c1", "batch": [put_list(1, 1, &id, "kept")]});
    // Make the database refuse connections and drop uplink's open ones.
    let outage = Outage::begin(&app.db_name).await;

    let response = app.send_batch(&token, &body).await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");

    outage.end().await;
    let check = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM lists")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(before, 0, "nothing applied by the 503 request");
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM lists")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(after, 1);
}

/// The (op_id, status, code) of each entry the report lists.
fn listed(report: &Value) -> Vec<(i64, String, String)> {
    report["results"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            (
                r["op_id"].as_i64().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn list_names(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM lists ORDER BY name")
        .fetch_all(&app.db_pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn op_ids_that_are_not_positive_are_rejected_not_dropped() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let body = json!({"client_id": "new-device", "batch": [
        put_list(0, 1, &Uuid::new_v4().to_string(), "zero"),
        put_list(-5, 2, &Uuid::new_v4().to_string(), "negative"),
        put_list(1, 3, &Uuid::new_v4().to_string(), "first"),
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["applied"],
            &report["duplicates"],
            &report["rejected"]
        ),
        (&json!(1), &json!(0), &json!(2)),
        "{report}"
    );
    let rejected = |op_id| (op_id, "rejected".to_owned(), "invalid_op_id".to_owned());
    assert_eq!(listed(&report), [rejected(0), rejected(-5)], "{report}");
    assert_eq!(list_names(&app).await, ["first"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters WHERE code = 'invalid_op_id'")
            .await,
        2
    );
}

#[tokio::test]
async fn an_op_id_not_above_the_previous_one_rejects_its_transaction_and_a_replay_is_duplicate() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let id = || Uuid::new_v4().to_string();
    let body = json!({"client_id": "device-1", "batch": [
        put_list(5, 1, &id(), "a"),
        // A lower op_id after a higher one: its whole client transaction is rejected.
        put_list(3, 2, &id(), "b"),
        put_list(6, 2, &id(), "c"),
        put_list(7, 3, &id(), "d"),
        // An equal one is not an increase either.
        put_list(7, 4, &id(), "e"),
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["applied"],
            &report["duplicates"],
            &report["rejected"]
        ),
        (&json!(2), &json!(0), &json!(3)),
        "{report}"
    );
    let entry = |op_id, code: &str| (op_id, "rejected".to_owned(), code.to_owned());
    assert_eq!(
        listed(&report),
        [
            entry(3, "op_id_not_increasing"),
            entry(6, "transaction_rejected"),
            entry(7, "op_id_not_increasing"),
        ],
        "{report}"
    );
    assert_eq!(list_names(&app).await, ["a", "d"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters WHERE code = 'op_id_not_increasing'")
            .await,
        2
    );

    // The same request again is a genuine replay: every entry is a duplicate.
    let (status, replay) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(
        (
            &replay["applied"],
            &replay["duplicates"],
            &replay["rejected"]
        ),
        (&json!(0), &json!(5), &json!(0)),
        "{replay}"
    );
    assert_eq!(list_names(&app).await, ["a", "d"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        2
    );
}
