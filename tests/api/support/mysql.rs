//! The MySQL (or MariaDB) server the tests run on, a fresh database per
//! test, comparing its rows with the Postgres rows the fixtures expect, and
//! the app the MySQL write-path tests share.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, MySqlConnection, MySqlPool};
use uuid::Uuid;

use super::app::TestApp;
use super::fixtures::tables_from_yaml;

/// The MySQL server the tests create their databases on.
pub fn server_url() -> String {
    std::env::var("UPLINK_TEST_MYSQL_URL").expect(
        "set UPLINK_TEST_MYSQL_URL to a MySQL or MariaDB server, e.g. mysql://root@127.0.0.1:3306/ \
         (scripts/test starts a throwaway MariaDB and sets it)",
    )
}

/// `sql` with uplink's tables, written `uplink.<table>` as on Postgres, in
/// the database where uplink keeps them beside `pool`'s (by default).
pub async fn own_tables_in(pool: &MySqlPool, sql: &str) -> String {
    let app: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .expect("the test database's name");
    let own = uplink::db::own::schema_name(
        None,
        uplink::config::sections::DatabaseKind::MySql,
        Some(&app),
    );
    sql.replace("uplink.", &format!("`{own}`."))
}

/// A fresh database with the app's tables loaded.
pub struct TestMySqlDatabase {
    pub name: String,
    pub url: String,
    pub pool: MySqlPool,
}

/// Creates a database with a unique name and runs each of `schema` on it.
pub async fn fresh_database<S: AsRef<str>>(schema: &[S]) -> TestMySqlDatabase {
    let name = format!("uplink_test_{}", Uuid::new_v4().simple());
    let server = server_url();
    let mut conn = MySqlConnection::connect(&server)
        .await
        .expect("Failed to connect to the test MySQL server");
    conn.execute(
        format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").as_str(),
    )
    .await
    .expect("Failed to create the test database");
    let url = format!("{}/{name}", server.trim_end_matches('/'));
    let pool = MySqlPool::connect(&url)
        .await
        .expect("Failed to connect to the test database");
    for sql in schema {
        sqlx::raw_sql(sql.as_ref())
            .execute(&pool)
            .await
            .expect("Failed to load the test schema");
    }
    TestMySqlDatabase { name, url, pool }
}

/// The rows of `table` by id, each a JSON object of `columns` as MySQL's
/// JSON_OBJECT gives them.
pub async fn rows_by_id(
    pool: &MySqlPool,
    table: &str,
    columns: &[String],
) -> BTreeMap<String, Value> {
    let members: Vec<String> = columns.iter().map(|c| format!("'{c}', `{c}`")).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT CAST(`id` AS CHAR), CAST(JSON_OBJECT({}) AS CHAR) FROM `{table}`",
        members.join(", ")
    ))
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("reading {table}: {e}"));
    rows.into_iter()
        .map(|(id, row)| (id, serde_json::from_str(&row).expect("JSON_OBJECT is JSON")))
        .collect()
}

/// Whether MySQL's `actual` is the value Postgres' `expected` stands for:
/// booleans are 0/1 in MySQL, timestamps have no offset (UTC), numbers
/// compare by value, text arrays are JSON arrays.
pub fn same_value(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Bool(b), Value::Number(n)) => n.as_i64() == Some(i64::from(*b)),
        (Value::Number(e), Value::Number(a)) => {
            e == a || e.as_f64().is_some_and(|e| a.as_f64() == Some(e))
        }
        (Value::String(e), Value::String(a)) if e != a => {
            instant(e).is_some_and(|e| instant(a) == Some(e))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| same_value(e, a))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|a| same_value(v, a)))
        }
        _ => expected == actual,
    }
}

/// A timestamp or date as an instant (no offset: UTC).
fn instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The tables of the MySQL write-path tests.
pub const SCHEMA: &str = r#"
CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL, owner_id VARCHAR(255));
CREATE TABLE documents (id CHAR(36) PRIMARY KEY, content TEXT, version BIGINT NOT NULL DEFAULT 1);
CREATE TABLE items (
    id CHAR(36) PRIMARY KEY,
    qty INT,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    due_at DATETIME(6),
    seen_at TIMESTAMP(3) NULL,
    attrs JSON,
    ref BINARY(16),
    code VARCHAR(8) UNIQUE
);
"#;

/// The policies of `SCHEMA`'s tables.
pub const POLICIES: &str = r#"
write:
  tables:
    lists: { owner_column: owner_id }
    documents: { conflict: { strategy: version, column: version, on_conflict: record } }
    items: {}
"#;

/// An app on a fresh MySQL database with `SCHEMA` and `POLICIES`.
pub async fn spawn() -> TestApp<MySqlPool> {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml(POLICIES))
        .spawn_mysql()
        .await
}

pub fn code_of(report: &Value) -> Option<&str> {
    report["results"][0]["code"].as_str()
}

/// MySQL types text in a binary collation (as uplink's tables and the test
/// databases use) as bytes: the queries read text with `CAST(… AS CHAR)`.
pub async fn scalar<T>(app: &TestApp<MySqlPool>, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql> + Send + Unpin,
{
    let sql = own_tables_in(&app.db_pool, sql).await;
    sqlx::query_scalar(&sql)
        .fetch_one(&app.db_pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub fn put(op_id: i64, table: &str, id: &str, data: Value) -> Value {
    json!({"op_id": op_id, "op": "PUT", "type": table, "id": id, "data": data})
}
