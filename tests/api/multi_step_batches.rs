//! A batch of several steps on a policy table (or a retried one) first
//! locks the rows it names in key order; rows that exist are locked, then
//! written like any other: nothing is rejected or dead-lettered. (The MySQL lock once read
//! its `SELECT 1` as text, and every entry of such a batch on existing rows
//! was dead-lettered as an unclassified failure.)

use serde_json::json;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;

const ITEMS: &str = "CREATE TABLE items (id uuid PRIMARY KEY, owner_id text, name text, qty int)";
const MYSQL_ITEMS: &str =
    "CREATE TABLE items (id CHAR(36) PRIMARY KEY, owner_id VARCHAR(255), name TEXT, qty INT)";

async fn existing_rows_in_a_batch_of_several_steps_are_written<P: Backend>() {
    let app = P::spawn(
        TestApp::builder()
            .schema(P::dialect(ITEMS, MYSQL_ITEMS))
            .config(|s| {
                s.write.tables =
                    tables_from_yaml("write:\n  tables:\n    items: { owner_column: owner_id }\n")
            }),
    )
    .await;
    let token = app.token_for("alice").await;
    let [kept, patched, deleted, created] = [(); 4].map(|()| Uuid::new_v4().to_string());
    for id in [&kept, &patched, &deleted] {
        app.db_pool
            .execute(&format!(
                "INSERT INTO items (id, owner_id, name, qty) VALUES ('{id}', 'alice', 'old', 1)"
            ))
            .await;
    }
    let entry = |op_id: i64, op: &str, id: &str, data: serde_json::Value| {
        let tx_id = (op_id + 1) / 2;
        json!({"op_id": op_id, "op": op, "type": "items", "id": id, "tx_id": tx_id, "data": data})
    };

    // Two client transactions of several steps.
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"client_id": "phone", "batch": [
                entry(1, "PATCH", &patched, json!({"qty": 2})),
                entry(2, "DELETE", &deleted, json!(null)),
                entry(3, "PUT", &created, json!({"name": "new", "qty": 3})),
                entry(4, "PUT", &kept, json!({"name": "replaced", "qty": 4})),
            ]}),
        )
        .await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 4, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    let rows = app
        .db_pool
        .texts("SELECT CONCAT(name, ':', qty) FROM items ORDER BY qty")
        .await;
    assert_eq!(
        rows,
        ["old:2", "new:3", "replaced:4"].map(|r| Some(r.to_owned())),
        "the PATCH, the DELETE and both PUTs applied"
    );
    let letters = app
        .db_pool
        .texts("SELECT count(*) FROM uplink.dead_letters")
        .await;
    assert_eq!(letters, [Some("0".to_owned())]);
}

on_both_databases!(existing_rows_in_a_batch_of_several_steps_are_written);
