//! A value the database refuses is reported with its column and what the
//! column takes, so the developer knows what to fix: a set-based statement
//! does not say which of its values failed, so uplink finds out. On
//! Postgres and on MySQL/MariaDB.

use serde_json::json;
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;

const PG_SCHEMA: &str = "CREATE TABLE tasks (id text PRIMARY KEY, title varchar(8), due date, list_id uuid, qty integer);";
const MYSQL_SCHEMA: &str = "CREATE TABLE tasks (id VARCHAR(64) PRIMARY KEY, title VARCHAR(8), due DATE, list_id CHAR(36), qty INT);";

async fn a_refused_value_names_its_column<P: Backend>(
    schema: &str,
    cases: &[(&str, serde_json::Value, &str)],
) {
    let app = P::spawn(
        TestApp::builder()
            .schema(schema)
            .config(|s| s.write.tables = tables_from_yaml("write:\n  tables:\n    tasks: {}\n")),
    )
    .await;
    let token = app.token_for("alice").await;
    for (i, (column, value, type_words)) in cases.iter().enumerate() {
        // Beside a valid entry of the same table: one statement for both.
        let (status, report) = app
            .post_batch(&token, &json!({"batch": [
                {"op": "PUT", "type": "tasks", "id": format!("ok-{i}"), "tx_id": 1, "data": {"title": "fine"}},
                {"op": "PUT", "type": "tasks", "id": format!("bad-{i}"), "tx_id": 2, "data": {*column: value}},
            ]}))
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["applied"], 1, "{report}");
        let result = &report["results"][0];
        assert_eq!(result["code"], "invalid_value", "{report}");
        assert_eq!(result["column"], *column, "{report}");
        let message = result["message"].as_str().unwrap();
        assert!(message.contains(column), "{message}");
        assert!(
            message.to_lowercase().contains(type_words),
            "{type_words:?} not in {message:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_value_names_its_column_on_postgres() {
    a_refused_value_names_its_column::<PgPool>(
        PG_SCHEMA,
        &[
            ("due", json!("next tuesday"), "date"),
            ("list_id", json!("not-a-uuid"), "uuid"),
            ("title", json!("longer than eight"), "8 characters"),
            ("qty", json!("many"), "integer"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_refused_value_names_its_column_on_mysql() {
    a_refused_value_names_its_column::<MySqlPool>(
        MYSQL_SCHEMA,
        &[
            ("due", json!("next tuesday"), "date"),
            ("title", json!("longer than eight"), "too long"),
            ("qty", json!("many"), "integer"),
        ],
    )
    .await;
}
