//! The app the policy scenarios run against (a table per conflict policy or
//! write rule), on Postgres or MySQL/MariaDB, and a client that numbers its
//! operations like a PowerSync client does.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::backend::Backend;
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

/// `SCHEMA` on MySQL: uuids as text, a DATETIME for the timestamp policy
/// (uplink writes it in UTC), a JSON column for the per-field times.
pub const MYSQL_SCHEMA: &str = r#"
CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL, owner_id VARCHAR(64));
CREATE TABLE inventory (id CHAR(36) PRIMARY KEY, product TEXT, quantity INT NOT NULL DEFAULT 0 CHECK (quantity >= 0));
CREATE TABLE documents (id CHAR(36) PRIMARY KEY, content TEXT, version BIGINT NOT NULL DEFAULT 1);
CREATE TABLE tasks (id CHAR(36) PRIMARY KEY, title TEXT, modified_at DATETIME(6));
CREATE TABLE notes (id CHAR(36) PRIMARY KEY, title TEXT, body TEXT, field_timestamps JSON);
CREATE TABLE orders (id CHAR(36) PRIMARY KEY, status VARCHAR(16) NOT NULL DEFAULT 'pending', note TEXT, approved_by TEXT);
CREATE TABLE events (id CHAR(36) PRIMARY KEY, kind TEXT NOT NULL);
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

/// The app with `POLICIES` on a fresh database of kind `P`.
pub async fn spawn<P: Backend>() -> TestApp<P> {
    spawn_with::<P>(POLICIES).await
}

/// The app with these tables' policies (YAML) on `SCHEMA`.
pub async fn spawn_with<P: Backend>(policies: &str) -> TestApp<P> {
    let policies = policies.to_owned();
    P::spawn(
        TestApp::builder()
            .schema(P::dialect(SCHEMA, MYSQL_SCHEMA))
            .config(move |s| s.write.tables = tables_from_yaml(&policies)),
    )
    .await
}

pub struct Client<'a, P = sqlx::PgPool> {
    pub app: &'a TestApp<P>,
    pub token: String,
    pub client_id: String,
    pub op_id: i64,
}

impl<'a, P> Client<'a, P> {
    pub async fn new(app: &'a TestApp<P>, user: &str) -> Self {
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

/// The one text `sql` selects, which must not be NULL.
pub async fn text<P: Backend>(app: &TestApp<P>, sql: &str) -> String {
    app.text(sql)
        .await
        .unwrap_or_else(|| panic!("{sql} selects NULL"))
}
