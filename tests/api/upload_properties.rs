//! Property: any sequence of PUT/PATCH/DELETE, split into random client
//! transactions and requests, leaves through uplink exactly the state that
//! a one-statement-at-a-time reference applier leaves on a second database.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sqlx::{Connection, MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::database::fresh_database;
use crate::support::mysql;

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

/// The SQL dialect of the reference applier.
#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Postgres,
    MySql,
}

fn literal(value: &Value, dialect: Dialect) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        // MySQL reads backslashes in literals as escapes; Postgres does not.
        Value::String(s) if dialect == Dialect::MySql => {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
        }
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The reference statement of one write (`None`: nothing to run). PUT on
/// `pa` (declared columns) resets absent ones to their DEFAULT; on `pb` (no
/// declaration) absent columns keep their value.
fn reference_sql(write: &Write, dialect: Dialect) -> Option<String> {
    let lit = |v: &Value| literal(v, dialect);
    let id = lit(&json!(write.id));
    let upsert = |columns: &[&String]| -> String {
        let sets: Vec<String> = columns
            .iter()
            .map(|c| match dialect {
                Dialect::Postgres => format!("{c} = EXCLUDED.{c}"),
                Dialect::MySql => format!("{c} = VALUES({c})"),
            })
            .collect();
        match (dialect, sets.is_empty()) {
            (Dialect::Postgres, true) => " ON CONFLICT (id) DO NOTHING".to_owned(),
            (Dialect::Postgres, false) => {
                format!(" ON CONFLICT (id) DO UPDATE SET {}", sets.join(", "))
            }
            (Dialect::MySql, true) => " ON DUPLICATE KEY UPDATE id = id".to_owned(),
            (Dialect::MySql, false) => format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
        }
    };
    Some(match &write.op {
        Op::Delete => format!("DELETE FROM {} WHERE id = {id}", write.table),
        Op::Patch(data) if data.is_empty() => return None,
        Op::Patch(data) => {
            let sets: Vec<String> = data
                .iter()
                .map(|(k, v)| format!("{k} = {}", lit(v)))
                .collect();
            format!(
                "UPDATE {} SET {} WHERE id = {id}",
                write.table,
                sets.join(", ")
            )
        }
        Op::Put(data) if write.table == "pa" => {
            let a = data.get("a").map_or("DEFAULT".to_owned(), lit);
            let b = data.get("b").map_or("DEFAULT".to_owned(), lit);
            let (a_name, b_name) = ("a".to_owned(), "b".to_owned());
            format!(
                "INSERT INTO pa (id, a, b) VALUES ({id}, {a}, {b}){}",
                upsert(&[&a_name, &b_name])
            )
        }
        Op::Put(data) => {
            let columns: Vec<&String> = data.keys().collect();
            let values: Vec<String> = data.values().map(lit).collect();
            format!(
                "INSERT INTO pb (id{}) VALUES ({id}{}){}",
                columns.iter().map(|c| format!(", {c}")).collect::<String>(),
                values.iter().map(|v| format!(", {v}")).collect::<String>(),
                upsert(&columns)
            )
        }
    })
}

/// The reference: one plain statement per entry, a savepoint per client
/// transaction, in one database transaction.
async fn reference_apply<DB: sqlx::Database>(
    conn: &mut DB::Connection,
    dialect: Dialect,
    transactions: &[Vec<Write>],
) where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let mut tx = conn.begin().await.unwrap();
    for transaction in transactions {
        let mut savepoint = (*tx).begin().await.unwrap();
        let mut failed = false;
        for write in transaction {
            let Some(sql) = reference_sql(write, dialect) else {
                continue;
            };
            if sqlx::query::<DB>(&sql)
                .execute(&mut *savepoint)
                .await
                .is_err()
            {
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

async fn mysql_state(pool: &MySqlPool) -> Value {
    let text: String = sqlx::query_scalar(
        "SELECT CAST(JSON_OBJECT(
            'pa', (SELECT COALESCE(JSON_OBJECTAGG(id, JSON_OBJECT('id', id, 'a', a, 'b', b)), JSON_OBJECT()) FROM pa),
            'pb', (SELECT COALESCE(JSON_OBJECTAGG(id, JSON_OBJECT('id', id, 'x', x, 'y', y)), JSON_OBJECT()) FROM pb)) AS CHAR)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The tables' write settings: `pa` declares its columns, `pb` does not.
fn property_tables(s: &mut uplink::settings::Settings) {
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
}

/// The writes as requests of client transactions, and as the batches sent.
fn requests_of(writes: &[(Write, bool, bool)]) -> (Vec<Vec<Vec<Write>>>, Vec<Value>) {
    let mut requests: Vec<Vec<Vec<Write>>> = Vec::new();
    for (i, (write, new_tx, new_request)) in writes.iter().enumerate() {
        if i == 0 || *new_request {
            requests.push(vec![vec![]]);
        } else if *new_tx {
            requests.last_mut().unwrap().push(vec![]);
        }
        requests
            .last_mut()
            .unwrap()
            .last_mut()
            .unwrap()
            .push(write.clone());
    }
    let mut op_id = 0;
    let mut bodies = Vec::new();
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
        bodies.push(json!({ "batch": batch }));
    }
    (requests, bodies)
}

fn property_config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn uplink_equals_one_at_a_time_application() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, token, reference) = runtime.block_on(async {
        let app = TestApp::builder()
            .schema(SCHEMA)
            .config(property_tables)
            .spawn()
            .await;
        let token = app.token_for("prop").await;
        let reference = fresh_database(&[SCHEMA]).await.pool;
        (app, token, reference)
    });
    proptest!(property_config(), |(writes in scenario())| {
        runtime.block_on(async {
            for pool in [&app.db_pool, &reference] {
                sqlx::query("TRUNCATE pa, pb").execute(pool).await.unwrap();
            }
            let (requests, bodies) = requests_of(&writes);
            for body in &bodies {
                let (status, report) = app.post_batch(&token, body).await;
                assert_eq!(status, 200, "{report}");
            }
            let mut conn = reference.acquire().await.unwrap();
            let transactions: Vec<Vec<Write>> = requests.into_iter().flatten().collect();
            reference_apply::<sqlx::Postgres>(&mut conn, Dialect::Postgres, &transactions).await;
            drop(conn);
            let (actual, expected) = (state(&app.db_pool).await, state(&reference).await);
            assert_eq!(actual, expected, "writes: {writes:#?}");
        });
    });
}

const MYSQL_SCHEMA: &str = "
CREATE TABLE pa (id VARCHAR(16) PRIMARY KEY, a INT CHECK (a >= 0), b TEXT);
CREATE TABLE pb (id VARCHAR(16) PRIMARY KEY, x INT NOT NULL DEFAULT 7, y VARCHAR(32) DEFAULT 'dflt');
";

#[test]
fn uplink_equals_one_at_a_time_application_on_mysql() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, token, reference) = runtime.block_on(async {
        let app = TestApp::builder()
            .schema(MYSQL_SCHEMA)
            .config(property_tables)
            .spawn_mysql()
            .await;
        let token = app.token_for("prop").await;
        let reference = mysql::fresh_database(&[MYSQL_SCHEMA]).await.pool;
        (app, token, reference)
    });
    proptest!(property_config(), |(writes in scenario())| {
        runtime.block_on(async {
            for pool in [&app.db_pool, &reference] {
                sqlx::raw_sql("DELETE FROM pa; DELETE FROM pb").execute(pool).await.unwrap();
            }
            let (requests, bodies) = requests_of(&writes);
            for body in &bodies {
                let (status, report) = app.post_batch(&token, body).await;
                assert_eq!(status, 200, "{report}");
            }
            let mut conn = reference.acquire().await.unwrap();
            // The session uplink's connections have: strict, so NULL into
            // NOT NULL fails rather than becoming 0.
            sqlx::query("SET SESSION sql_mode = 'STRICT_ALL_TABLES'").execute(&mut *conn).await.unwrap();
            let transactions: Vec<Vec<Write>> = requests.into_iter().flatten().collect();
            reference_apply::<sqlx::MySql>(&mut conn, Dialect::MySql, &transactions).await;
            drop(conn);
            let (actual, expected) = (mysql_state(&app.db_pool).await, mysql_state(&reference).await);
            assert_eq!(actual, expected, "writes: {writes:#?}");
        });
    });
}
