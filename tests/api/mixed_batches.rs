//! A batch that interleaves PUTs, PATCHes and DELETEs ends in the rows that
//! applying its entries one at a time gives: uplink writes a table's
//! operations on distinct rows together, in an order of its own (on MySQL:
//! the PUTs, then the PATCHes, then the DELETEs), and that must not show.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;

/// Two tables alike: one gets the batch, the other its entries one by one.
/// On MySQL the key compares case-insensitively, as a uuid does on Postgres.
const NOTES: &str = "
CREATE TABLE batched (id uuid PRIMARY KEY, name text, qty int);
CREATE TABLE one_by_one (id uuid PRIMARY KEY, name text, qty int);
";
const MYSQL_NOTES: &str = "
CREATE TABLE batched (id CHAR(36) COLLATE utf8mb4_general_ci PRIMARY KEY, name TEXT, qty INT);
CREATE TABLE one_by_one (id CHAR(36) COLLATE utf8mb4_general_ci PRIMARY KEY, name TEXT, qty INT);
";

async fn spawn<P: Backend>() -> TestApp<P> {
    P::spawn(
        TestApp::builder()
            .schema(P::dialect(NOTES, MYSQL_NOTES))
            .config(|s| {
                s.write.tables =
                    tables_from_yaml("write: { tables: { batched: {}, one_by_one: {} } }")
            }),
    )
    .await
}

/// An entry without its table, op_id or tx_id.
fn entry(op: &str, id: &str, data: Value) -> Value {
    json!({"op": op, "id": id, "data": data})
}

/// Posts `transactions` to `batched` as one batch, and each of their
/// entries to `one_by_one` in a batch of its own; both as device `device`
/// from op_id `first_op` on.
async fn apply_both_ways<P>(
    app: &TestApp<P>,
    token: &str,
    device: &str,
    first_op: i64,
    transactions: &[Vec<Value>],
) {
    let mut batch = Vec::new();
    let mut op_id = first_op;
    for (tx, entries) in transactions.iter().enumerate() {
        for entry in entries {
            let mut entry = entry.clone();
            entry["type"] = json!("batched");
            entry["op_id"] = json!(op_id);
            entry["tx_id"] = json!(first_op + tx as i64);
            batch.push(entry);
            op_id += 1;
        }
    }
    let (status, report) = app
        .post_batch(token, &json!({"client_id": device, "batch": batch}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    let one_by_one = format!("{device}-one-by-one");
    for (op_id, entry) in (first_op..).zip(transactions.iter().flatten()) {
        let mut entry = entry.clone();
        entry["type"] = json!("one_by_one");
        entry["op_id"] = json!(op_id);
        entry["tx_id"] = json!(op_id);
        let (status, report) = app
            .post_batch(token, &json!({"client_id": one_by_one, "batch": [entry]}))
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["rejected"], 0, "{report}");
    }
}

/// The rows of `table`, each as `id:name:qty` with the id in lower case,
/// sorted.
async fn rows<P: Backend>(app: &TestApp<P>, table: &str) -> Vec<String> {
    let row = P::dialect(
        "id::text || ':' || coalesce(name, '-') || ':' || coalesce(qty::text, '-')",
        "CONCAT(LOWER(id), ':', COALESCE(name, '-'), ':', COALESCE(qty, '-'))",
    );
    let mut rows: Vec<String> = app
        .db_pool
        .texts(&format!("SELECT {row} FROM {table}"))
        .await
        .into_iter()
        .map(|r| r.expect("a row"))
        .collect();
    rows.sort();
    rows
}

fn new_ids(n: usize) -> Vec<String> {
    (0..n).map(|_| Uuid::new_v4().to_string()).collect()
}

async fn interleaved_operations_on_distinct_rows_end_as_one_at_a_time<P: Backend>() {
    let app = spawn::<P>().await;
    let token = app.token_for("alice").await;
    let existing = new_ids(40);
    let seed: Vec<Vec<Value>> = vec![
        existing
            .iter()
            .enumerate()
            .map(|(i, id)| entry("PUT", id, json!({"name": format!("seed {i}"), "qty": i})))
            .collect(),
    ];
    apply_both_ways(&app, &token, "phone", 1, &seed).await;

    // Five client transactions, each: new rows (two column sets), existing
    // rows replaced, patched (three column sets) and deleted, a PATCH and
    // a DELETE of rows that do not exist; every entry on its own row.
    let mut existing = existing.into_iter();
    let mut next = || existing.next().expect("enough seeded rows");
    let transactions: Vec<Vec<Value>> = (0..5)
        .map(|tx| {
            let [a, b, c] = [(); 3].map(|()| Uuid::new_v4().to_string());
            let missing = Uuid::new_v4().to_string();
            vec![
                entry("PUT", &a, json!({"name": format!("new {tx}"), "qty": tx})),
                entry("PATCH", &next(), json!({"qty": 100 + tx})),
                entry("DELETE", &next(), Value::Null),
                entry("PUT", &b, json!({"name": format!("named only {tx}")})),
                entry("PATCH", &next(), json!({"name": format!("renamed {tx}")})),
                entry(
                    "PUT",
                    &next(),
                    json!({"name": format!("replaced {tx}"), "qty": 7}),
                ),
                entry("PATCH", &missing, json!({"name": "nobody"})),
                entry("DELETE", &next(), Value::Null),
                entry("PATCH", &next(), json!({"name": "both", "qty": tx})),
                entry("PUT", &c, json!({"name": format!("new {tx}"), "qty": -tx})),
                entry("DELETE", &Uuid::new_v4().to_string(), Value::Null),
            ]
        })
        .collect();
    apply_both_ways(&app, &token, "phone", 100, &transactions).await;

    let batched = rows(&app, "batched").await;
    assert_eq!(batched, rows(&app, "one_by_one").await);
    // 40 seeded, 15 new, 10 deleted; no row for the missing PATCHes.
    assert_eq!(batched.len(), 45, "{batched:#?}");
    assert!(
        !batched.iter().any(|r| r.contains("nobody")),
        "{batched:#?}"
    );
}

async fn a_repeated_id_keeps_the_order_of_its_entries<P: Backend>() {
    let app = spawn::<P>().await;
    let token = app.token_for("alice").await;
    let [x, y, z, w] = [(); 4].map(|()| Uuid::new_v4().to_string());
    let seed = vec![vec![
        entry("PUT", &y, json!({"name": "y", "qty": 1})),
        entry("PUT", &z, json!({"name": "z", "qty": 1})),
    ]];
    apply_both_ways(&app, &token, "tablet", 1, &seed).await;

    // The same rows named more than once, some in upper case (the same
    // row: a uuid on Postgres, a case-insensitive key on MySQL).
    let upper = |id: &str| id.to_uppercase();
    let transactions = vec![
        vec![
            entry("DELETE", &y, Value::Null),
            entry("PUT", &x, json!({"name": "x", "qty": 1})),
            entry("PUT", &upper(&y), json!({"name": "y again", "qty": 2})),
            entry("PATCH", &z, json!({"qty": 5})),
            entry("DELETE", &upper(&z), Value::Null),
        ],
        vec![
            entry("PATCH", &x, json!({"name": "x patched"})),
            entry("DELETE", &upper(&x), Value::Null),
            entry("PUT", &x, json!({"name": "x back", "qty": 3})),
            entry("PATCH", &w, json!({"name": "never"})),
            entry("PUT", &w, json!({"name": "w", "qty": 4})),
            entry("PATCH", &upper(&w), json!({"qty": 40})),
            entry("PUT", &z, json!({"name": "z back"})),
        ],
    ];
    apply_both_ways(&app, &token, "tablet", 10, &transactions).await;

    let batched = rows(&app, "batched").await;
    assert_eq!(batched, rows(&app, "one_by_one").await);
    let mut expected = vec![
        format!("{x}:x back:3"),
        format!("{y}:y again:2"),
        format!("{z}:z back:-"),
        format!("{w}:w:40"),
    ];
    expected.sort();
    assert_eq!(batched, expected);
}

on_both_databases!(
    interleaved_operations_on_distinct_rows_end_as_one_at_a_time,
    a_repeated_id_keeps_the_order_of_its_entries,
);
