//! uplink keeps its own tables (progress, dead letters, conflicts,
//! checkpoints, attachment records, its migrations) apart from the app's: in
//! a schema of their own on Postgres, a database of their own on MySQL. So
//! `uplink schema` offers only the app's tables, an app that has tables of
//! the same names keeps them (untouched, and writable through the write
//! path), and an earlier release's tables are moved there at start-up.

use serde_json::{Value, json};
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;
use crate::support::process::uplink_command;

const PG_LISTS: &str = "CREATE TABLE lists (id uuid PRIMARY KEY, name text);";
const MYSQL_LISTS: &str = "CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT);";

/// Names uplink's tables have, or had in the app's schema before they
/// moved to their own.
const OWN: [&str; 8] = [
    "client_progress",
    "dead_letters",
    "dead_letter_users",
    "uplink_client_progress",
    "uplink_dead_letters",
    "write_conflicts",
    "checkpoints",
    "_sqlx_migrations",
];

async fn schema_offers_only_the_apps_tables<P: Backend>(schema: &str) {
    let app = P::spawn(TestApp::builder().schema(schema)).await;

    let output = uplink_command()
        .env("DATABASE_URL", &app.db_url)
        .env("UPLINK__ATTACHMENTS__ENABLED", "false")
        .arg("schema")
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8_lossy(&output.stdout);
    assert!(yaml.contains("    lists:\n"), "{yaml}");
    for table in OWN.iter().chain(&["attachments"]) {
        assert!(
            !yaml.contains(table),
            "`uplink schema` offers {table}:\n{yaml}"
        );
    }
}

#[tokio::test]
async fn schema_offers_only_the_apps_tables_on_postgres() {
    schema_offers_only_the_apps_tables::<PgPool>(PG_LISTS).await;
}

#[tokio::test]
async fn schema_offers_only_the_apps_tables_on_mysql() {
    schema_offers_only_the_apps_tables::<MySqlPool>(MYSQL_LISTS).await;
}

/// The tables of an app that served the PowerSync demo backend (whose
/// `checkpoints` the PowerSync docs describe), each with a row of its own.
const PG_APP_NAMESAKES: &str = "
    CREATE TABLE checkpoints (id text PRIMARY KEY, user_id text NOT NULL, checkpoint bigint NOT NULL);
    CREATE TABLE attachments (id text PRIMARY KEY, filename text NOT NULL);
    CREATE TABLE write_conflicts (id text PRIMARY KEY, note text NOT NULL);
    INSERT INTO checkpoints VALUES ('phone', 'alice', 41);
    INSERT INTO attachments VALUES ('a1', 'the app''s file');
    INSERT INTO write_conflicts VALUES ('w1', 'the app''s note');";
const MYSQL_APP_NAMESAKES: &str = "
    CREATE TABLE checkpoints (id VARCHAR(64) PRIMARY KEY, user_id TEXT NOT NULL, checkpoint BIGINT NOT NULL);
    CREATE TABLE attachments (id VARCHAR(64) PRIMARY KEY, filename TEXT NOT NULL);
    CREATE TABLE write_conflicts (id VARCHAR(64) PRIMARY KEY, note TEXT NOT NULL);
    INSERT INTO checkpoints VALUES ('phone', 'alice', 41);
    INSERT INTO attachments VALUES ('a1', 'the app''s file');
    INSERT INTO write_conflicts VALUES ('w1', 'the app''s note');";

const NAMESAKES_WRITABLE: &str = "
write:
  tables:
    checkpoints: {}
    attachments: {}
    write_conflicts: {}
";

/// The app's rows of its three tables, in a stable order.
async fn app_rows<P: Backend>(app: &TestApp<P>) -> Vec<Option<String>> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT CONCAT(id, '/', user_id, '=', checkpoint) FROM checkpoints ORDER BY 1",
        "SELECT CONCAT(id, '=', filename) FROM attachments ORDER BY 1",
        "SELECT CONCAT(id, '=', note) FROM write_conflicts ORDER BY 1",
    ] {
        rows.extend(app.db_pool.texts(sql).await);
    }
    rows
}

async fn checkpoint<P>(app: &TestApp<P>, token: &str) -> Value {
    let response = app
        .client
        .put(app.url("/api/data/checkpoint"))
        .bearer_auth(token)
        .json(&json!({"client_id": "phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["checkpoint"].clone()
}

async fn an_apps_namesakes_are_left_alone_and_writable<P: Backend>(schema: &str) {
    let app = P::spawn(
        TestApp::builder()
            .schema(schema)
            .config(|s| s.write.tables = tables_from_yaml(NAMESAKES_WRITABLE)),
    )
    .await;
    let token = app.token_for("alice").await;
    let before = app_rows(&app).await;

    // uplink's write checkpoints count in its own table, from 1.
    assert_eq!(checkpoint(&app, &token).await, "1");
    assert_eq!(checkpoint(&app, &token).await, "2");
    assert_eq!(
        app.text("SELECT checkpoint FROM uplink.checkpoints WHERE user_id = 'alice'")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        app_rows(&app).await,
        before,
        "uplink touched the app's rows"
    );

    // The app's tables take its clients' writes like any other.
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"client_id": "phone", "batch": [
                {"op_id": 1, "op": "PATCH", "type": "checkpoints", "id": "phone",
                 "data": {"checkpoint": 42}},
                {"op_id": 2, "op": "PUT", "type": "attachments", "id": "a2",
                 "data": {"filename": "second"}},
                {"op_id": 3, "op": "PUT", "type": "write_conflicts", "id": "w2",
                 "data": {"note": "second"}},
            ]}),
        )
        .await;
    assert_eq!(
        (status, report["applied"].clone()),
        (200, json!(3)),
        "{report}"
    );
    assert_eq!(
        app_rows(&app).await,
        [
            "phone/alice=42",
            "a1=the app's file",
            "a2=second",
            "w1=the app's note",
            "w2=second"
        ]
        .map(|r| Some(r.to_owned()))
    );
    // uplink's progress and conflicts are its own.
    assert_eq!(
        app.text("SELECT last_op_id FROM uplink.client_progress")
            .await
            .as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn an_apps_namesakes_are_left_alone_and_writable_on_postgres() {
    an_apps_namesakes_are_left_alone_and_writable::<PgPool>(PG_APP_NAMESAKES).await;
}

#[tokio::test]
async fn an_apps_namesakes_are_left_alone_and_writable_on_mysql() {
    an_apps_namesakes_are_left_alone_and_writable::<MySqlPool>(MYSQL_APP_NAMESAKES).await;
}

/// Attachment routes keep their records in uplink's `attachments`, beside
/// an app's table of that name.
async fn attachments_beside_an_apps_attachments_table<P: Backend>(schema: &str) {
    let app = P::spawn(TestApp::builder().schema(schema)).await;
    let token = app.token_for("alice").await;

    let response = app
        .client
        .post(app.url("/api/attachments/upload-url"))
        .bearer_auth(&token)
        .json(&json!({"id": "a1", "filename": "photo.png", "contentType": "image/png"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        app.text("SELECT filename FROM uplink.attachments WHERE id = 'a1'")
            .await
            .as_deref(),
        Some("photo.png")
    );
    assert_eq!(
        app.text("SELECT filename FROM attachments")
            .await
            .as_deref(),
        Some("the app's file")
    );
}

#[tokio::test]
async fn attachments_beside_an_apps_attachments_table_on_postgres() {
    attachments_beside_an_apps_attachments_table::<PgPool>(PG_APP_NAMESAKES).await;
}

#[tokio::test]
async fn attachments_beside_an_apps_attachments_table_on_mysql() {
    attachments_beside_an_apps_attachments_table::<MySqlPool>(MYSQL_APP_NAMESAKES).await;
}
