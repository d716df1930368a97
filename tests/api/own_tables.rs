//! uplink's own tables (progress, dead letters, conflicts, checkpoints,
//! attachment records) are never the clients' to write: `uplink schema`
//! does not offer them, and naming one in `write.tables` stops start-up.
//! On Postgres and on MySQL/MariaDB.

use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;
use crate::support::process::uplink_command;

const PG_SCHEMA: &str = "CREATE TABLE lists (id uuid PRIMARY KEY, name text);";
const MYSQL_SCHEMA: &str = "CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT);";

/// Every table uplink creates in the app's database.
const OWN: [&str; 6] = [
    "uplink_client_progress",
    "uplink_dead_letters",
    "write_conflicts",
    "checkpoints",
    "attachments",
    "_sqlx_migrations",
];

async fn schema_offers_only_the_apps_tables<P: Backend>(schema: &str) {
    let app = P::spawn(TestApp::builder().schema(schema)).await;

    let output = uplink_command()
        .env("DATABASE_URL", &app.db_url)
        // Attachments are Postgres-only so far.
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
    for table in OWN {
        assert!(
            !yaml.contains(table),
            "`uplink schema` offers {table}:\n{yaml}"
        );
    }
}

#[tokio::test]
async fn schema_offers_only_the_apps_tables_on_postgres() {
    schema_offers_only_the_apps_tables::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn schema_offers_only_the_apps_tables_on_mysql() {
    schema_offers_only_the_apps_tables::<MySqlPool>(MYSQL_SCHEMA).await;
}

async fn naming_an_own_table_stops_start_up<P: Backend>(schema: &str) {
    for table in OWN {
        let yaml = format!("write:\n  tables:\n    lists: {{}}\n    {table}: {{}}\n");
        let message = P::spawn_error(
            TestApp::builder()
                .schema(schema)
                .config(move |s| s.write.tables = tables_from_yaml(&yaml)),
        )
        .await;
        assert!(
            message.contains(&format!("write.tables.{table}")),
            "{message}"
        );
        assert!(message.contains("uplink's own table"), "{message}");
    }
}

#[tokio::test]
async fn naming_an_own_table_stops_start_up_on_postgres() {
    naming_an_own_table_stops_start_up::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn naming_an_own_table_stops_start_up_on_mysql() {
    naming_an_own_table_stops_start_up::<MySqlPool>(MYSQL_SCHEMA).await;
}
