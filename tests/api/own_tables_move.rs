//! An earlier release kept uplink's tables in the app's schema (on MySQL,
//! the app's database). The first start of this one moves them, rows and
//! migration history included, into uplink's own, and carries on counting
//! from where they were.

use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use uplink::db::migrate::{MIGRATOR, MYSQL_MIGRATOR};

/// The first migration of the release that moved the tables.
const MOVED_IN: i64 = 20261211000001;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The app's database as an earlier release left it: its migrations run in
/// the app's schema and recorded there, a dead letter and a checkpoint.
fn earlier_release(migrator: &Migrator, history: &str, checksum: fn(&str) -> String) -> String {
    let mut sql = format!("{history};\n");
    for migration in migrator.iter().filter(|m| m.version < MOVED_IN) {
        sql += &format!(
            "{};\nINSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES ({}, '{}', true, {}, 0);\n",
            migration.sql.trim().trim_end_matches(';'),
            migration.version,
            migration.description.replace('\'', "''"),
            checksum(&hex(&migration.checksum)),
        );
    }
    sql + "INSERT INTO uplink_dead_letters (user_id, entries, code, message) \
           VALUES ('alice', '[]', 'forbidden', 'kept across the move');
           INSERT INTO checkpoints (user_id, client_id, checkpoint) VALUES ('alice', 'phone', 7);"
}

fn earlier_release_on_postgres() -> String {
    earlier_release(
        &MIGRATOR,
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
        |hex| format!("'\\x{hex}'"),
    )
}

fn earlier_release_on_mysql() -> String {
    earlier_release(
        &MYSQL_MIGRATOR,
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
        |hex| format!("X'{hex}'"),
    )
}

async fn an_earlier_releases_tables_move<P: Backend>(
    earlier: String,
    left_in_the_apps_schema: &str,
    migrations: &Migrator,
) {
    let app = P::spawn(TestApp::builder().schema(&earlier)).await;
    let token = app.token_for("alice").await;

    assert_eq!(
        app.text("SELECT message FROM uplink.dead_letters")
            .await
            .as_deref(),
        Some("kept across the move")
    );
    let response = app
        .client
        .put(app.url("/api/data/checkpoint"))
        .bearer_auth(&token)
        .json(&json!({"client_id": "phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["checkpoint"],
        "8"
    );
    assert_eq!(
        app.text(left_in_the_apps_schema).await.as_deref(),
        Some("0"),
        "uplink's tables are still in the app's schema"
    );
    assert_eq!(
        app.text("SELECT count(*) FROM uplink._sqlx_migrations WHERE success")
            .await,
        Some(migrations.iter().count().to_string())
    );
}

#[tokio::test]
async fn an_earlier_releases_tables_move_on_postgres() {
    an_earlier_releases_tables_move::<PgPool>(
        earlier_release_on_postgres(),
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        &MIGRATOR,
    )
    .await;
}

#[tokio::test]
async fn an_earlier_releases_tables_move_on_mysql() {
    an_earlier_releases_tables_move::<MySqlPool>(
        earlier_release_on_mysql(),
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
        &MYSQL_MIGRATOR,
    )
    .await;
}
