//! The app the policy scenarios run against (a table per conflict policy or
//! write rule) and a client that numbers its operations like a PowerSync
//! client does.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::tables_from_yaml;

/// The tables of the policy scenarios, one per policy.
pub const SCHEMA: &str = r#"
CREATE TABLE lists (id uuid PRIMARY KEY, name text NOT NULL, owner_id text);
CREATE TABLE inventory (id uuid PRIMARY KEY, product text, quantity integer NOT NULL DEFAULT 0 CHECK (quantity >= 0));
CREATE TABLE documents (id uuid PRIMARY KEY, content text, version bigint NOT NULL DEFAULT 1);
CREATE TABLE tasks (id uuid PRIMARY KEY, title text, modified_at timestamptz);
CREATE TABLE notes (id uuid PRIMARY KEY, title text, body text, field_timestamps jsonb);
CREATE TABLE orders (id uuid PRIMARY KEY, status text NOT NULL DEFAULT 'pending', note text, approved_by text);
CREATE TABLE events (id uuid PRIMARY KEY, kind text NOT NULL);
"#;

/// One policy per table of `SCHEMA`.
pub const POLICIES: &str = r#"
write:
  tables:
    lists: { owner_column: owner_id }
    inventory: { delta_columns: [quantity] }
    documents: { conflict: { strategy: version, column: version, on_conflict: record } }
    tasks: { conflict: { strategy: timestamp, column: modified_at, on_conflict: record } }
    notes: { columns: [title, body], conflict: { strategy: field_timestamps } }
    orders:
      transitions: { column: status, allowed: { pending: [processing, cancelled], processing: [shipped, cancelled], shipped: [completed] } }
      locked_when: { column: status, values: [shipped, completed, cancelled] }
      read_only_columns: [approved_by]
    events: { insert_only: true }
"#;

pub async fn spawn() -> TestApp {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml(POLICIES))
        .spawn()
        .await
}

pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
    pub client_id: String,
    pub op_id: i64,
}

impl<'a> Client<'a> {
    pub async fn new(app: &'a TestApp, user: &str) -> Self {
        Self {
            app,
            token: app.token_for(user).await,
            client_id: Uuid::new_v4().to_string(),
            op_id: 0,
        }
    }

    /// Sends entries as one client transaction; returns the report.
    pub async fn send(&mut self, entries: &[Value]) -> Value {
        let batch: Vec<Value> = entries
            .iter()
            .map(|e| {
                self.op_id += 1;
                let mut e = e.clone();
                e["op_id"] = json!(self.op_id);
                e["tx_id"] = json!(self.op_id);
                e
            })
            .collect();
        let (status, report) = self
            .app
            .post_batch(
                &self.token,
                &json!({"client_id": self.client_id, "batch": batch}),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        report
    }
}

pub fn code_of(report: &Value) -> Option<&str> {
    report["results"][0]["code"].as_str()
}

pub async fn scalar<T>(app: &TestApp, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .fetch_one(&app.db_pool)
        .await
        .unwrap()
}
