//! Property: any sequence of PUT/PATCH/DELETE, split into random client
//! transactions and requests, leaves through uplink exactly the state that
//! a one-statement-at-a-time reference applier leaves on a second database.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sqlx::{Connection, PgConnection, PgPool};

use crate::support::app::TestApp;
use crate::support::database::fresh_database;

const SCHEMA: &str = "
CREATE TABLE pa (id text PRIMARY KEY, a integer CHECK (a >= 0), b text);
CREATE TABLE pb (id text PRIMARY KEY, x integer NOT NULL DEFAULT 7, y text DEFAULT 'dflt');
";
const TABLES: [&str; 2] = ["pa", "pb"];
const IDS: [&str; 4] = ["1", "2", "it's", "ü"];

#[derive(Debug, Clone)]
enum Op {
    Put(Map<String, Value>),
    Patch(Map<String, Value>),
    Delete,
}

#[derive(Debug, Clone)]
struct Write {
    table: &'static str,
    id: &'static str,
    op: Op,
}

fn value_for(table: &str, column: &str) -> BoxedStrategy<Value> {
    match (table, column) {
        // -1 breaks pa's CHECK: the client transaction must be rejected.
        ("pa", "a") => prop_oneof![(-1i64..4).prop_map(Value::from), Just(Value::Null)].boxed(),
        // NULL breaks pb's NOT NULL.
        ("pb", "x") => {
            prop_oneof![4 => (0i64..4).prop_map(Value::from), 1 => Just(Value::Null)].boxed()
        }
        _ => prop_oneof![
            Just(json!("plain")),
            Just(json!("quote ' \" \\ ;")),
            Just(json!("ünï ✓")),
            Just(json!("")),
            Just(Value::Null)
        ]
        .boxed(),
    }
}

fn data_for(table: &'static str) -> impl Strategy<Value = Map<String, Value>> {
    let columns: &[&str] = if table == "pa" {
        &["a", "b"]
    } else {
        &["x", "y"]
    };
    let c0 = columns[0];
    let c1 = columns[1];
    (
        proptest::option::of(value_for(table, c0)),
        proptest::option::of(value_for(table, c1)),
    )
        .prop_map(move |(v0, v1)| {
            let mut data = Map::new();
            if let Some(v) = v0 {
                data.insert(c0.to_owned(), v);
            }
            if let Some(v) = v1 {
                data.insert(c1.to_owned(), v);
            }
            data
        })
}

fn write() -> impl Strategy<Value = Write> {
    (0..TABLES.len(), 0..IDS.len(), 0..3u8).prop_flat_map(|(t, i, kind)| {
        let table = TABLES[t];
        let id = IDS[i];
        data_for(table).prop_map(move |data| Write {
            table,
            id,
            op: match kind {
                0 => Op::Put(data),
                1 => Op::Patch(data),
                _ => Op::Delete,
            },
        })
    })
}

/// Writes with the client transaction and request each starts (true = new).
fn scenario() -> impl Strategy<Value = Vec<(Write, bool, bool)>> {
    prop::collection::vec((write(), any::<bool>(), prop::bool::weighted(0.2)), 1..40)
}

fn literal(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The reference: one plain statement per entry, a savepoint per client
/// transaction. PUT on `pa` (declared columns) resets absent ones to their
/// DEFAULT; on `pb` (no declaration) absent columns keep their value.
async fn reference_apply(conn: &mut PgConnection, transactions: &[Vec<Write>]) {
    let mut tx = conn.begin().await.unwrap();
    for transaction in transactions {
        let mut savepoint = (*tx).begin().await.unwrap();
        let mut failed = false;
        for write in transaction {
            let id = literal(&json!(write.id));
            let sql = match &write.op {
                Op::Delete => format!("DELETE FROM {} WHERE id = {id}", write.table),
                Op::Patch(data) if data.is_empty() => continue,
                Op::Patch(data) => {
                    let sets: Vec<String> = data
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", literal(v)))
                        .collect();
                    format!(
                        "UPDATE {} SET {} WHERE id = {id}",
                        write.table,
                        sets.join(", ")
                    )
                }
                Op::Put(data) if write.table == "pa" => {
                    let a = data.get("a").map_or("DEFAULT".to_owned(), literal);
                    let b = data.get("b").map_or("DEFAULT".to_owned(), literal);
                    format!(
                        "INSERT INTO pa (id, a, b) VALUES ({id}, {a}, {b}) \
                         ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a, b = EXCLUDED.b"
                    )
                }
                Op::Put(data) => {
                    let columns: Vec<&String> = data.keys().collect();
                    let values: Vec<String> = data.values().map(literal).collect();
                    let update = if columns.is_empty() {
                        "NOTHING".to_owned()
                    } else {
                        format!(
                            "UPDATE SET {}",
                            columns
                                .iter()
                                .map(|c| format!("{c} = EXCLUDED.{c}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    format!(
                        "INSERT INTO pb (id{}) VALUES ({id}{}) ON CONFLICT (id) DO {update}",
                        columns.iter().map(|c| format!(", {c}")).collect::<String>(),
                        values.iter().map(|v| format!(", {v}")).collect::<String>(),
                    )
                }
            };
            if sqlx::query(&sql).execute(&mut *savepoint).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            savepoint.rollback().await.unwrap();
        } else {
            savepoint.commit().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

async fn state(pool: &PgPool) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object(
            'pa', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(pa)), '{}') FROM pa),
            'pb', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(pb)), '{}') FROM pb))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[test]
fn uplink_equals_one_at_a_time_application() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, token, reference) = runtime.block_on(async {
        let app = TestApp::builder()
            .schema(SCHEMA)
            .config(|s| {
                s.write.tables = [
                    (
                        "pa".to_owned(),
                        uplink::upload::TableSettings {
                            columns: Some(vec!["a".to_owned(), "b".to_owned()]),
                            ..Default::default()
                        },
                    ),
                    ("pb".to_owned(), Default::default()),
                ]
                .into_iter()
                .collect();
            })
            .spawn()
            .await;
        let token = app.token_for("prop").await;
        let reference = fresh_database(&[SCHEMA]).await.pool;
        (app, token, reference)
    });

    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(writes in scenario())| {
        runtime.block_on(async {
            for pool in [&app.db_pool, &reference] {
                sqlx::query("TRUNCATE pa, pb").execute(pool).await.unwrap();
            }
            // Split into client transactions and requests.
            let mut requests: Vec<Vec<Vec<Write>>> = Vec::new();
            for (i, (write, new_tx, new_request)) in writes.iter().enumerate() {
                if i == 0 || *new_request {
                    requests.push(vec![vec![]]);
                } else if *new_tx {
                    requests.last_mut().unwrap().push(vec![]);
                }
                requests.last_mut().unwrap().last_mut().unwrap().push(write.clone());
            }
            let mut op_id = 0;
            for (tx_base, request) in requests.iter().enumerate() {
                let mut batch = Vec::new();
                for (t, transaction) in request.iter().enumerate() {
                    for write in transaction {
                        op_id += 1;
                        let (op, data) = match &write.op {
                            Op::Put(d) => ("PUT", Some(d)),
                            Op::Patch(d) => ("PATCH", Some(d)),
                            Op::Delete => ("DELETE", None),
                        };
                        let mut entry = json!({"op_id": op_id, "op": op, "type": write.table, "id": write.id,
                                               "tx_id": tx_base * 100 + t});
                        if let Some(data) = data {
                            entry["data"] = Value::Object(data.clone());
                        }
                        batch.push(entry);
                    }
                }
                let (status, report) = app.post_batch(&token, &json!({"batch": batch})).await;
                assert_eq!(status, 200, "{report}");
            }
            let mut conn = reference.acquire().await.unwrap();
            let transactions: Vec<Vec<Write>> = requests.into_iter().flatten().collect();
            reference_apply(&mut conn, &transactions).await;
            drop(conn);
            let (actual, expected) = (state(&app.db_pool).await, state(&reference).await);
            assert_eq!(actual, expected, "writes: {writes:#?}");
        });
    });
}
