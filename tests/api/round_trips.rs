//! How many statements and round trips to the database a batch costs, read
//! off the wire: the latency of each one is paid per request, whatever the
//! database's speed (docs/performance.md).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::{
    fixture_schema, fixture_write_settings, put_list, tables_from_yaml,
};
use crate::support::mysql_relay::MySqlStatementRelay;
use crate::support::statement_relay::StatementRelay;

async fn app_with(relay: &StatementRelay) -> TestApp {
    TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(one_quiet_connection)
        .config(relay.route())
        .spawn()
        .await
}

/// One connection, on which the warm-up prepares every statement, and no
/// periodic job that would send its own statements.
fn one_quiet_connection(s: &mut uplink::settings::Settings) {
    s.database.max_connections = 1;
    s.metrics.enabled = false;
    s.attachments.cleanup.interval = std::time::Duration::ZERO;
}

/// Client `d`'s batches for a mixed batch whose statements are prepared:
/// 40 new lists, a mixed batch over them (the warm-up), then the mixed
/// batch to measure, over the lists left.
fn seeded_mixed_batches() -> [Value; 3] {
    let rows: Vec<String> = (0..40).map(|_| Uuid::new_v4().to_string()).collect();
    let seed: Vec<Value> = (1..=40)
        .map(|op_id| put_list(op_id, op_id, &rows[op_id as usize - 1], "seed"))
        .collect();
    let (warm, rows) = mixed(101, &rows);
    let (measured, _) = mixed(201, &rows);
    [seed, warm, measured].map(|batch| json!({"client_id": "d", "batch": batch}))
}

/// 60 PUTs of new lists, then 30 PATCHes and 10 DELETEs of lists `earlier`
/// holds, in five client transactions.
fn mixed(first_op: i64, earlier: &[String]) -> (Vec<Value>, Vec<String>) {
    let mut entries = Vec::new();
    let mut created = Vec::new();
    let mut op_id = first_op;
    for tx in 0..5 {
        let tx_id = first_op + tx;
        for _ in 0..12 {
            let id = Uuid::new_v4().to_string();
            entries.push(put_list(op_id, tx_id, &id, "new"));
            created.push(id);
            op_id += 1;
        }
        for id in &earlier[tx as usize * 8..tx as usize * 8 + 6] {
            entries.push(
                json!({"op_id": op_id, "op": "PATCH", "type": "lists", "id": id,
                                "tx_id": tx_id, "data": {"name": "ticked"}}),
            );
            op_id += 1;
        }
        for id in &earlier[tx as usize * 8 + 6..tx as usize * 8 + 8] {
            entries.push(
                json!({"op_id": op_id, "op": "DELETE", "type": "lists", "id": id,
                                "tx_id": tx_id}),
            );
            op_id += 1;
        }
    }
    (entries, created)
}

/// The statements, round trips and statements sent unnamed of posting
/// `body` (after the same shape ran once, so its named statements are
/// prepared), counted once the pool's ping of the returned connection has
/// landed: nothing of an earlier request in this one's count.
async fn round_trips(
    app: &TestApp,
    relay: &StatementRelay,
    token: &str,
    body: Value,
) -> (usize, usize, usize) {
    settle(relay).await;
    let (statements, round_trips, unnamed) = (
        relay.executed(),
        relay.round_trips(),
        relay.unnamed_parses(),
    );
    let (status, report) = app.post_batch(token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    settle(relay).await;
    (
        relay.executed() - statements,
        relay.round_trips() - round_trips,
        relay.unnamed_parses() - unnamed,
    )
}

/// Waits until no round trip has reached the relay for 200 ms.
async fn settle(relay: &StatementRelay) {
    let mut seen = relay.round_trips();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = relay.round_trips();
        if now == seen {
            return;
        }
        seen = now;
    }
}

#[tokio::test]
async fn a_batch_of_puts_and_a_mixed_batch_take_few_round_trips() {
    // Arrange
    let relay = StatementRelay::start().await;
    let app = app_with(&relay).await;
    let token = app.token_for("alice").await;
    let puts = || {
        let batch: Vec<Value> = (0..100)
            .map(|_| {
                json!({"op": "PUT", "type": "lists", "id": Uuid::new_v4().to_string(),
                            "data": {"name": "x"}})
            })
            .collect();
        json!({"batch": batch})
    };
    round_trips(&app, &relay, &token, puts()).await;
    let [seed, warm, measured] = seeded_mixed_batches();
    round_trips(&app, &relay, &token, seed).await;
    round_trips(&app, &relay, &token, warm).await;

    // Act
    let w1 = round_trips(&app, &relay, &token, puts()).await;
    let w2 = round_trips(&app, &relay, &token, measured).await;

    // Assert: BEGIN, the batch's statement, COMMIT; with a client id one
    // more, the progress row's one write. A connection in steady use is not
    // pinged before use; sqlx pings it when it returns to the pool. The
    // insert is kept prepared, its plan reused; the mixed statement looks
    // rows up, so it is sent unnamed and planned for its rows: a round trip
    // more, for its Parse.
    let statements = relay.statements();
    let last = &statements[statements.len().saturating_sub(12)..];
    assert_eq!(
        (w1, w2),
        ((3, 4, 0), (4, 6, 1)),
        "(statements, round trips, unnamed) of put100, mixed: {last:#?}"
    );
}

/// The statements uplink runs on MySQL to apply `body` (after the same shape
/// ran once).
async fn mysql_statements(
    app: &TestApp<sqlx::MySqlPool>,
    relay: &MySqlStatementRelay,
    token: &str,
    body: Value,
) -> Vec<String> {
    let before = relay.executed().len();
    let (status, report) = app.post_batch(token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    relay.executed().split_off(before)
}

#[tokio::test]
async fn a_mixed_batch_on_mysql_is_one_statement_per_operation() {
    // Arrange
    let relay = MySqlStatementRelay::start().await;
    let app = TestApp::builder()
        .schema("CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL)")
        .config(|s| {
            s.write.tables = tables_from_yaml("write: { tables: { lists: { columns: [name] } } }")
        })
        .config(one_quiet_connection)
        .config(relay.route())
        .spawn_mysql()
        .await;
    let token = app.token_for("alice").await;
    let [seed, warm, measured] = seeded_mixed_batches();
    mysql_statements(&app, &relay, &token, seed).await;
    mysql_statements(&app, &relay, &token, warm).await;

    // Act
    let statements = mysql_statements(&app, &relay, &token, measured).await;

    // Assert: BEGIN, the progress row's write, the 60 PUTs as one upsert,
    // the 30 PATCHes as one UPDATE, the 10 DELETEs as one DELETE, COMMIT.
    let on_lists: Vec<&str> = statements
        .iter()
        .filter(|s| s.contains("`lists`"))
        .map(|s| s.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        (statements.len(), on_lists.as_slice()),
        (6, ["INSERT", "UPDATE", "DELETE"].as_slice()),
        "statements of the mixed batch: {statements:#?}"
    );
}
