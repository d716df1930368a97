//! Property: policy tables applied a set at a time give exactly what the
//! one-row-at-a-time path gives: the same reports, rows, conflict records
//! and dead letters, for random sequences of PUT/PATCH/DELETE by two users,
//! with fresh and stale versions, illegal transitions, locked rows, an
//! insert-only table, constraint violations and repeated ids in one batch
//! (also spelled differently: a uuid in upper and lower case), delta
//! columns and per-field times. The same on MySQL/MariaDB, with the same
//! policies.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;
use crate::support::mysql::own_tables_in;

const SCHEMA: &str = "
CREATE TABLE docs (id text PRIMARY KEY, owner_id text, body text CHECK (body <> 'bad'),
                   status text NOT NULL DEFAULT 'draft', version integer NOT NULL DEFAULT 1);
CREATE TABLE cards (id uuid PRIMARY KEY, owner_id text, title text, version integer NOT NULL DEFAULT 1);
CREATE TABLE tasks (id text PRIMARY KEY, owner_id text, title text, approved text, modified_at timestamptz);
CREATE TABLE events (id text PRIMARY KEY, kind text NOT NULL DEFAULT 'event');
CREATE TABLE stock (id text PRIMARY KEY, n integer CHECK (n >= 0));
CREATE TABLE notes (id text PRIMARY KEY, title text, field_timestamps jsonb);
";

const POLICIES: &str = r#"
write:
  tables:
    docs:
      owner_column: owner_id
      conflict: { strategy: version, column: version, on_conflict: record }
      transitions:
        column: status
        initial: [draft]
        allowed: { draft: [review], review: [draft, published], published: [archived] }
      locked_when: { column: status, values: [archived] }
    cards:
      columns: [title, owner_id]
      owner_column: owner_id
      conflict: { strategy: version, column: version, on_conflict: reject }
    tasks:
      owner_column: owner_id
      read_only_columns: [approved]
      conflict: { strategy: timestamp, column: modified_at, on_conflict: ignore }
    events: { insert_only: true }
    stock: { delta_columns: [n] }
    notes: { conflict: { strategy: field_timestamps, on_conflict: record } }
"#;

const TABLES: [&str; 6] = ["docs", "cards", "tasks", "events", "stock", "notes"];
const IDS: [&str; 3] = ["1", "2", "3"];
/// `cards` has uuid keys: two of these spell one key (upper and lower case).
const UUIDS: [&str; 3] = [
    "0000000a-0000-4000-8000-000000000001",
    "0000000A-0000-4000-8000-000000000001",
    "0000000b-0000-4000-8000-000000000002",
];
const USERS: [&str; 2] = ["alice", "bob"];

#[derive(Debug, Clone)]
struct Write {
    user: usize,
    table: &'static str,
    id: &'static str,
    op: &'static str,
    data: Map<String, Value>,
    /// Per-field times (`notes`).
    metadata: Option<Value>,
}

fn one_of(values: &[Value]) -> BoxedStrategy<Option<Value>> {
    proptest::option::of(proptest::sample::select(values.to_vec())).boxed()
}

/// Mostly the version of a row written once, so that many writes pass.
fn version() -> BoxedStrategy<Option<Value>> {
    proptest::option::weighted(0.8, prop_oneof![3 => Just(json!(1)), 1 => Just(json!(2))]).boxed()
}

fn data_for(table: &'static str) -> BoxedStrategy<Map<String, Value>> {
    let owner = one_of(&[json!("alice"), json!("bob")]);
    let columns: Vec<(&str, BoxedStrategy<Option<Value>>)> = match table {
        "docs" => vec![
            ("owner_id", owner),
            ("body", one_of(&[json!("a"), json!("b"), json!("bad")])),
            (
                "status",
                one_of(&[
                    json!("draft"),
                    json!("review"),
                    json!("published"),
                    json!("archived"),
                ]),
            ),
            ("version", version()),
        ],
        "cards" => vec![
            ("owner_id", owner),
            ("title", one_of(&[json!("x"), json!("y"), Value::Null])),
            ("version", version()),
        ],
        "tasks" => vec![
            ("owner_id", owner),
            ("title", one_of(&[json!("x"), json!("y")])),
            ("approved", one_of(&[json!("yes")])),
            (
                "modified_at",
                one_of(&[
                    json!("2026-01-01T00:00:00Z"),
                    json!("2026-01-02T00:00:00Z"),
                    json!("2026-01-03T00:00:00Z"),
                ]),
            ),
        ],
        "stock" => vec![("n", one_of(&[json!(1), json!(2), json!(-5)]))],
        "notes" => vec![("title", one_of(&[json!("x"), json!("y")]))],
        _ => vec![("kind", one_of(&[json!("open"), json!("close")]))],
    };
    let (names, strategies): (Vec<&str>, Vec<_>) = columns.into_iter().unzip();
    strategies
        .prop_map(move |values| {
            names
                .iter()
                .zip(values)
                .filter_map(|(name, value)| value.map(|v| ((*name).to_owned(), v)))
                .collect()
        })
        .boxed()
}

fn write(tables: &'static [&'static str]) -> impl Strategy<Value = Write> {
    (
        prop_oneof![3 => Just(0), 1 => Just(1)],
        0..tables.len(),
        0..IDS.len(),
        prop::sample::select(vec!["PUT", "PUT", "PATCH", "PATCH", "DELETE"]),
    )
        .prop_flat_map(move |(user, t, i, op)| {
            let table = tables[t];
            let metadata = match table {
                "notes" => one_of(&[
                    json!({"title": "2026-01-01T00:00:00Z"}),
                    json!({"title": "2026-01-02T00:00:00Z"}),
                ]),
                _ => Just(None).boxed(),
            };
            (data_for(table), metadata).prop_map(move |(data, metadata)| Write {
                user,
                table,
                id: if table == "cards" { UUIDS[i] } else { IDS[i] },
                op,
                data,
                metadata,
            })
        })
}

/// Writes with the client transaction and request each starts (true = new).
/// A request is sent by the user of its first write.
fn scenario(tables: &'static [&'static str]) -> impl Strategy<Value = Vec<(Write, bool, bool)>> {
    prop::collection::vec(
        (
            write(tables),
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.15),
        ),
        1..40,
    )
}

async fn spawn<P: Backend>(one_row_at_a_time: bool) -> TestApp<P> {
    P::spawn(
        TestApp::builder()
            .schema(P::dialect(SCHEMA, MYSQL_SCHEMA))
            .config(move |s| {
                s.write.tables = tables_from_yaml(POLICIES);
                s.write.policies_one_row_at_a_time = one_row_at_a_time;
            }),
    )
    .await
}

/// The scenario as requests: (user, client transactions).
fn requests(writes: &[(Write, bool, bool)]) -> Vec<(usize, Vec<Vec<Write>>)> {
    let mut requests: Vec<(usize, Vec<Vec<Write>>)> = Vec::new();
    for (i, (write, new_tx, new_request)) in writes.iter().enumerate() {
        if i == 0 || *new_request {
            requests.push((write.user, vec![vec![]]));
        } else if *new_tx {
            requests.last_mut().unwrap().1.push(vec![]);
        }
        requests
            .last_mut()
            .unwrap()
            .1
            .last_mut()
            .unwrap()
            .push(write.clone());
    }
    requests
}

#[test]
fn policies_applied_a_set_at_a_time_equal_one_row_at_a_time() {
    sets_equal_rows(spawn::<PgPool>, &TABLES);
}

/// What the property needs of a database: emptying the tables between
/// cases, and the state the two apps must agree on.
trait PolicyDatabase {
    type State: PartialEq + std::fmt::Debug;
    async fn clear(&self);
    async fn state(&self) -> Self::State;
}

impl PolicyDatabase for PgPool {
    type State = Value;

    async fn clear(&self) {
        sqlx::query(
            "TRUNCATE docs, cards, tasks, events, stock, notes, uplink.write_conflicts, \
             uplink.dead_letters, uplink.client_progress",
        )
        .execute(self)
        .await
        .unwrap();
    }

    /// Rows of the app's tables, conflict records and dead letters, without the
    /// columns that differ between two runs (generated ids, times).
    async fn state(&self) -> Value {
        sqlx::query_scalar(
            "SELECT jsonb_build_object(
                'docs', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM docs t),
                'cards', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM cards t),
                'tasks', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM tasks t),
                'events', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM events t),
                'stock', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM stock t),
                'notes', (SELECT COALESCE(jsonb_object_agg(id, to_jsonb(t)), '{}') FROM notes t),
                'conflicts', (SELECT COALESCE(jsonb_agg(to_jsonb(c) - 'id' - 'created_at'
                                  ORDER BY c.created_at, c.client_id, c.op_id), '[]')
                              FROM uplink.write_conflicts c),
                'dead_letters', (SELECT COALESCE(jsonb_agg(to_jsonb(d) - 'id' - 'created_at' ORDER BY d.id), '[]')
                                 FROM uplink.dead_letters d))",
        )
        .fetch_one(self)
        .await
        .unwrap()
    }
}

/// Runs the property on two apps of one database, one applying policies a
/// set at a time and one a row at a time.
fn sets_equal_rows<Pool, Spawned>(spawn: impl Fn(bool) -> Spawned, tables: &'static [&'static str])
where
    Pool: PolicyDatabase,
    Spawned: Future<Output = TestApp<Pool>>,
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sets, rows, tokens) = runtime.block_on(async {
        let sets = spawn(false).await;
        let rows = spawn(true).await;
        let mut tokens = Vec::new();
        for user in USERS {
            tokens.push((sets.token_for(user).await, rows.token_for(user).await));
        }
        (sets, rows, tokens)
    });

    let config = ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(writes in scenario(tables))| {
        runtime.block_on(async {
            for app in [&sets, &rows] {
                app.db_pool.clear().await;
            }
            send_to_both(&sets, &rows, &tokens, &writes).await;
            assert_eq!(sets.db_pool.state().await, rows.db_pool.state().await, "writes: {writes:#?}");
        });
    });
}

/// Sends the scenario's requests to both apps; their reports must agree.
async fn send_to_both<Pool>(
    sets: &TestApp<Pool>,
    rows: &TestApp<Pool>,
    tokens: &[(String, String)],
    writes: &[(Write, bool, bool)],
) {
    let mut op_ids = [0i64; USERS.len()];
    for (r, (user, transactions)) in requests(writes).iter().enumerate() {
        let mut batch = Vec::new();
        for (t, transaction) in transactions.iter().enumerate() {
            for write in transaction {
                op_ids[*user] += 1;
                let mut entry = json!({"op_id": op_ids[*user], "op": write.op,
                                       "type": write.table, "id": write.id,
                                       "tx_id": r * 100 + t});
                if write.op != "DELETE" {
                    entry["data"] = Value::Object(write.data.clone());
                }
                if let Some(metadata) = &write.metadata {
                    entry["metadata"] = metadata.clone();
                }
                batch.push(entry);
            }
        }
        let body = json!({"client_id": USERS[*user], "batch": batch});
        let (token_sets, token_rows) = &tokens[*user];
        let (status, report) = sets.post_batch(token_sets, &body).await;
        let (expected_status, expected) = rows.post_batch(token_rows, &body).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(
            (status, &report),
            (expected_status, &expected),
            "request {r} of {writes:#?}"
        );
    }
}

const MYSQL_SCHEMA: &str = "
CREATE TABLE docs (id VARCHAR(8) PRIMARY KEY, owner_id VARCHAR(16), body VARCHAR(8) CHECK (body <> 'bad'),
                   status VARCHAR(16) NOT NULL DEFAULT 'draft', version INT NOT NULL DEFAULT 1);
CREATE TABLE cards (id CHAR(36) PRIMARY KEY, owner_id VARCHAR(16), title VARCHAR(8), version INT NOT NULL DEFAULT 1);
CREATE TABLE tasks (id VARCHAR(8) PRIMARY KEY, owner_id VARCHAR(16), title VARCHAR(8), approved VARCHAR(8),
                    modified_at DATETIME(6));
CREATE TABLE events (id VARCHAR(8) PRIMARY KEY, kind VARCHAR(8) NOT NULL DEFAULT 'event');
CREATE TABLE stock (id VARCHAR(8) PRIMARY KEY, n INT CHECK (n >= 0));
CREATE TABLE notes (id VARCHAR(8) PRIMARY KEY, title VARCHAR(8), field_timestamps JSON);
";

#[test]
fn policies_applied_a_set_at_a_time_equal_one_row_at_a_time_on_mysql() {
    sets_equal_rows(spawn::<MySqlPool>, &TABLES);
}

impl PolicyDatabase for MySqlPool {
    type State = Vec<String>;

    async fn clear(&self) {
        let sql = own_tables_in(
            self,
            "DELETE FROM docs; DELETE FROM cards; DELETE FROM tasks; DELETE FROM events; \
             DELETE FROM stock; DELETE FROM notes; DELETE FROM uplink.write_conflicts; \
             DELETE FROM uplink.dead_letters; DELETE FROM uplink.client_progress",
        )
        .await;
        sqlx::raw_sql(&sql).execute(self).await.unwrap();
    }

    /// Rows, conflict records and dead letters on MySQL, without generated ids
    /// and times; each row as JSON text, in a stable order.
    async fn state(&self) -> Vec<String> {
        let queries = [
            "SELECT CAST(JSON_OBJECT('id', id, 'owner_id', owner_id, 'body', body, 'status', status, \
             'version', version) AS CHAR) FROM docs ORDER BY id",
            "SELECT CAST(JSON_OBJECT('id', id, 'owner_id', owner_id, 'title', title, 'version', version) \
             AS CHAR) FROM cards ORDER BY id",
            "SELECT CAST(JSON_OBJECT('id', id, 'owner_id', owner_id, 'title', title, 'approved', approved, \
             'modified_at', modified_at) AS CHAR) FROM tasks ORDER BY id",
            "SELECT CAST(JSON_OBJECT('id', id, 'kind', kind) AS CHAR) FROM events ORDER BY id",
            "SELECT CAST(JSON_OBJECT('id', id, 'n', n) AS CHAR) FROM stock ORDER BY id",
            "SELECT CAST(JSON_OBJECT('id', id, 'title', title, 'times', field_timestamps) AS CHAR) \
             FROM notes ORDER BY id",
            "SELECT CAST(JSON_OBJECT('table', table_name, 'row', row_id, 'type', conflict_type, \
             'client', client_data, 'server', server_data, 'user', user_id, 'op_id', op_id) AS CHAR) \
             FROM uplink.write_conflicts ORDER BY client_id, op_id, table_name",
            "SELECT CAST(JSON_OBJECT('user', user_id, 'code', code, 'entries', entries, 'op_id', \
             failed_op_id, 'message', message) AS CHAR) FROM uplink.dead_letters ORDER BY id",
        ];
        let mut state = Vec::new();
        for query in queries {
            let sql = own_tables_in(self, query).await;
            let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(self).await.unwrap();
            state.push(format!("{query}: {rows:?}"));
        }
        state
    }
}

/// A set whose first entry fails in Postgres and whose second is refused by
/// the policy: the one-at-a-time application blames the first, so the set
/// must too (and dead-letter the transaction with its code).
#[tokio::test]
async fn a_refusal_after_a_failing_write_blames_the_failing_write() {
    for one_row_at_a_time in [false, true] {
        let app = spawn::<PgPool>(one_row_at_a_time).await;
        let token = app.token_for("alice").await;
        let body = json!({"client_id": "c1", "batch": [
            {"op_id": 1, "op": "PUT", "type": "docs", "id": "2", "tx_id": 1, "data": {"body": "bad"}},
            {"op_id": 2, "op": "PUT", "type": "docs", "id": "1", "tx_id": 1, "data": {"owner_id": "bob"}},
        ]});
        let (status, report) = app.post_batch(&token, &body).await;
        assert_eq!(status, 200, "{report}");
        let codes: Vec<&str> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            codes,
            ["check_violation", "transaction_rejected"],
            "one row at a time: {one_row_at_a_time}; {report}"
        );
        let (code, failed_op_id): (String, Option<i64>) =
            sqlx::query_as("SELECT code, failed_op_id FROM uplink.dead_letters")
                .fetch_one(&app.db_pool)
                .await
                .unwrap();
        assert_eq!((code.as_str(), failed_op_id), ("check_violation", Some(1)));
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM docs")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }
}
