//! What one refused entry costs the database, and what one user's flood
//! costs the others. The careful mode settles client transactions by
//! bisection, so a batch of n entries with one refusal takes a handful of
//! set-based statements, not n; and one user never holds more connections
//! than `limits.upload_in_flight_per_user`.

use crate::support::app::TestApp;
use crate::support::fixtures::tables_from_yaml;
use serde_json::{Value, json};

/// Every INSERT statement on `plain` counts once in a sequence, which
/// rolling a savepoint back does not undo.
const SCHEMA: &str = r#"
CREATE TABLE plain (id text PRIMARY KEY, name text CHECK (name <> 'bad'));
CREATE SEQUENCE insert_statements;
CREATE FUNCTION count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('insert_statements');
    RETURN NULL;
END $$;
CREATE TRIGGER plain_count BEFORE INSERT ON plain
    FOR EACH STATEMENT EXECUTE FUNCTION count_statement();
"#;

const ENTRIES: i64 = 2000;
/// Statements the careful mode may take for one refusal among `ENTRIES`:
/// about two per halving (log2 2000 ≈ 11), far below one per entry.
const BUDGET: i64 = 64;

async fn spawn() -> TestApp {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml("write:\n  tables:\n    plain: {}\n"))
        .spawn()
        .await
}

fn put(op_id: i64, tx_id: i64, name: &str) -> Value {
    json!({"op_id": op_id, "op": "PUT", "type": "plain", "id": format!("r{op_id}"),
           "tx_id": tx_id, "data": {"name": name}})
}

async fn insert_statements(app: &TestApp) -> i64 {
    app.text("SELECT last_value FROM insert_statements")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn one_refused_transaction_among_thousands_takes_a_few_statements() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    // Each entry its own client transaction; the last one is refused.
    let batch: Vec<Value> = (1..=ENTRIES)
        .map(|i| put(i, i, if i == ENTRIES { "bad" } else { "ok" }))
        .collect();

    let (status, report) = app
        .post_batch(&token, &json!({"client_id": "c", "batch": batch}))
        .await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], ENTRIES - 1, "{report}");
    assert_eq!(report["results"][0]["op_id"], ENTRIES, "{report}");
    assert_eq!(report["results"][0]["code"], "check_violation", "{report}");
    assert_eq!(app.count("SELECT COUNT(*) FROM plain").await, ENTRIES - 1);
    let statements = insert_statements(&app).await;
    assert!(
        statements <= BUDGET,
        "{statements} INSERT statements for one refusal among {ENTRIES} transactions"
    );
}

#[tokio::test]
async fn the_entry_at_fault_in_a_long_transaction_is_found_in_a_few_statements() {
    let app = spawn().await;
    let token = app.token_for("alice").await;
    // One client transaction; its entry 1500 is refused.
    let batch: Vec<Value> = (1..=ENTRIES)
        .map(|i| put(i, 1, if i == 1500 { "bad" } else { "ok" }))
        .collect();

    let (status, report) = app
        .post_batch(&token, &json!({"client_id": "c", "batch": batch}))
        .await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 0, "{report}");
    let culprit: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["code"] != "transaction_rejected")
        .collect();
    assert_eq!(culprit.len(), 1, "{report}");
    assert_eq!(culprit[0]["op_id"], 1500);
    assert_eq!(culprit[0]["code"], "check_violation");
    assert_eq!(app.count("SELECT COUNT(*) FROM plain").await, 0);
    let statements = insert_statements(&app).await;
    assert!(
        statements <= BUDGET,
        "{statements} INSERT statements to find one entry among {ENTRIES}"
    );
}

/// Backends of the app's database waiting for a row lock.
async fn lock_waiters(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
    )
    .bind(&app.db_name)
    .fetch_one(&app.db_pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn one_users_flood_holds_at_most_its_slots_and_others_still_write() {
    let app = TestApp::builder()
        .schema("CREATE TABLE plain (id text PRIMARY KEY, name text); INSERT INTO plain VALUES ('held', 'a');")
        .config(|s| {
            s.write.tables = tables_from_yaml("write:\n  tables:\n    plain: {}\n");
            s.database.max_connections = 4;
            s.limits.upload_in_flight_per_user = 2;
        })
        .spawn()
        .await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    // Alice's writes of `held` wait for this lock until the test lets go.
    let mut locker = app.db_pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM plain WHERE id = 'held' FOR UPDATE")
        .execute(&mut *locker)
        .await
        .unwrap();

    let flood: Vec<_> = (0..8)
        .map(|i| {
            let (client, url, token) = (app.client.clone(), app.url("/api/data"), alice.clone());
            tokio::spawn(async move {
                let body = json!({"client_id": format!("tab-{i}"), "batch": [
                    {"op_id": 1, "op": "PATCH", "type": "plain", "id": "held", "data": {"name": format!("v{i}")}}]});
                let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    while lock_waiters(&app).await < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Time for the rest of the flood to arrive (and, without the cap, to
    // take every other connection of the pool).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        lock_waiters(&app).await,
        2,
        "alice holds more connections than her slots"
    );

    let (status, report) = app
        .post_batch(
            &bob,
            &json!({"batch": [
            {"op_id": 1, "op": "PUT", "type": "plain", "id": "bobs", "data": {"name": "b"}}]}),
        )
        .await;
    assert_eq!((status, &report["applied"]), (200, &json!(1)), "{report}");
    assert_eq!(lock_waiters(&app).await, 2);

    locker.commit().await.unwrap();
    for request in flood {
        let (status, report) = request.await.unwrap();
        // Past the wait for a slot a request is told to retry: never a 5xx.
        match status {
            200 => assert_eq!(report["applied"], 1, "{report}"),
            429 => assert_eq!(report["error"]["code"], "rate_limited", "{report}"),
            other => panic!("{other}: {report}"),
        }
    }
}
