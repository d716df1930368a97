//! What the tests load into apps: the SDK batch fixtures' schema and
//! writable columns, the todo example as shipped, and `write.tables` from
//! YAML; a `lists` entry, the CLI with the fixture tables allowed, and the
//! admin app with the dead letters its tests make.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uplink::settings::Settings;
use uplink::upload::TableSettings;
use uuid::Uuid;

use super::app::{TestApp, TestAppBuilder, with_admin_key};
use super::backend::Backend;
use super::process::uplink_command;
use super::repo::repo_root;

/// The client-writable columns of the fixtures' client schema (their README).
pub const FIXTURE_TABLES: &[(&str, &[&str])] = &[
    ("lists", &["name", "owner_id", "created_at"]),
    (
        "todos",
        &[
            "description",
            "list_id",
            "completed",
            "completed_at",
            "created_by",
            "created_at",
        ],
    ),
    (
        "items",
        &[
            "title",
            "qty",
            "big_count",
            "is_active",
            "price",
            "weight",
            "due_at",
            "ship_date",
            "list_id",
            "attrs",
            "tags",
            "status",
            "note",
        ],
    ),
    ("inventory", &["product", "quantity"]),
    ("documents", &["content"]),
    ("events", &["kind", "payload", "occurred_at"]),
    (
        "settings",
        &[
            "theme",
            "font_size",
            "notifications",
            "price_limit",
            "prefs",
            "muted_channels",
            "updated_at",
        ],
    ),
];

/// `write.tables`: the fixture tables with their client-writable columns.
pub fn fixture_write_settings(settings: &mut Settings) {
    settings.write.tables = FIXTURE_TABLES
        .iter()
        .map(|(table, columns)| {
            (
                table.to_string(),
                TableSettings {
                    columns: Some(columns.iter().map(|c| c.to_string()).collect()),
                    ..Default::default()
                },
            )
        })
        .collect();
}

/// The fixtures' app schema (tests/fixtures/sdk-batches/schema.sql).
pub fn fixture_schema() -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/sdk-batches/schema.sql"))
        .expect("fixture schema")
}

/// An app on the fixtures' schema with their writable columns.
pub async fn spawn_fixture_app() -> TestApp {
    TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .spawn()
        .await
}

/// The `write.tables` of a YAML snippet, as the config loader reads it.
pub fn tables_from_yaml(yaml: &str) -> BTreeMap<String, TableSettings> {
    #[derive(serde::Deserialize)]
    struct Write {
        tables: BTreeMap<String, TableSettings>,
    }
    #[derive(serde::Deserialize)]
    struct Root {
        write: Write,
    }
    let root: Root = config::Config::builder()
        .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    root.write.tables
}

/// uplink as `scripts/run` and compose start it: the todo example's schema
/// and its `write` configuration, exactly as shipped (examples/todo).
pub fn todo_example() -> TestAppBuilder {
    todo_example_on::<sqlx::PgPool>()
}

/// The todo example on a database of kind `P`: `schema.sql` on Postgres,
/// `schema.mysql.sql` (a script for the mysql client) on MySQL, with the
/// same `uplink.yaml`.
pub fn todo_example_on<P: Backend>() -> TestAppBuilder {
    let (postgres, mysql) = ("examples/todo/schema.sql", "examples/todo/schema.mysql.sql");
    let file = P::dialect(postgres, mysql);
    let script = std::fs::read_to_string(repo_root().join(file))
        .unwrap_or_else(|e| panic!("{file} is readable: {e}"));
    let statements = if file == mysql {
        mysql_client_statements(&script)
    } else {
        vec![script]
    };
    let example = Settings::load(Some(&repo_root().join("examples/todo/uplink.yaml")))
        .expect("examples/todo/uplink.yaml loads");
    statements
        .into_iter()
        .fold(TestApp::builder(), TestAppBuilder::schema)
        .config(move |s| s.write = example.write)
}

/// The statements of a script for the mysql (or mariadb) client, one per
/// string, as that client sends them: it splits the script at its delimiter,
/// which the script's `DELIMITER` lines change (so that a trigger's body can
/// hold `;`). Comment lines are left out.
pub fn mysql_client_statements(script: &str) -> Vec<String> {
    let mut delimiter = ";".to_owned();
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") {
            continue;
        }
        if let Some(new) = trimmed.strip_prefix("DELIMITER ") {
            assert!(
                current.trim().is_empty(),
                "DELIMITER inside a statement: {current}"
            );
            delimiter = new.trim().to_owned();
            continue;
        }
        match line.trim_end().strip_suffix(delimiter.as_str()) {
            Some(last) => {
                current.push_str(last);
                statements.push(std::mem::take(&mut current).trim().to_owned());
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    assert!(
        current.trim().is_empty(),
        "a statement without its delimiter: {current}"
    );
    statements
}

pub fn put_list(op_id: i64, tx_id: i64, id: &str, name: &str) -> Value {
    json!({"op_id": op_id, "op": "PUT", "type": "lists", "id": id, "tx_id": tx_id, "data": {"name": name}})
}

/// Runs the `uplink` CLI against the test database with the fixture tables allowed.
pub fn fixture_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let config = std::env::temp_dir().join(format!("uplink-cli-{}.yaml", Uuid::new_v4().simple()));
    std::fs::write(
        &config,
        "write:\n  tables:\n    lists: { columns: [name] }\n    todos: { columns: [description, list_id, completed] }\n",
    )
    .unwrap();
    uplink_command()
        .env("DATABASE_URL", &app.db_url)
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .unwrap()
}

pub async fn spawn_admin_app() -> TestApp {
    TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(with_admin_key)
        .spawn()
        .await
}

/// The tables of the dead-letter scenarios on either database: a todo
/// needs its list.
const DEAD_LETTER_SCHEMA: &str = "
CREATE TABLE lists (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE todos (id uuid PRIMARY KEY, description text,
                    list_id uuid REFERENCES lists (id) ON DELETE CASCADE);
";

const DEAD_LETTER_MYSQL_SCHEMA: &str = "
CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE todos (id CHAR(36) PRIMARY KEY, description TEXT, list_id CHAR(36),
                    FOREIGN KEY (list_id) REFERENCES lists (id) ON DELETE CASCADE);
";

/// An app with the admin API on the dead-letter scenarios' tables, on a
/// fresh database of kind `P`.
pub async fn spawn_dead_letter_app<P: Backend>() -> TestApp<P> {
    P::spawn(
        TestApp::builder()
            .schema(P::dialect(DEAD_LETTER_SCHEMA, DEAD_LETTER_MYSQL_SCHEMA))
            .config(|s| {
                s.write.tables = tables_from_yaml(
                    "write: { tables: { lists: { columns: [name] }, todos: { columns: [description, list_id] } } }",
                )
            })
            .config(with_admin_key),
    )
    .await
}

/// A todo whose list does not exist: its client transaction is rejected and dead-lettered.
pub async fn dead_letter_a_todo<P>(app: &TestApp<P>, list_id: &str) -> String {
    dead_letter_from(app, "phone", list_id).await
}

/// `dead_letter_a_todo` from another device (each device's first op_id is 1).
pub async fn dead_letter_from<P>(app: &TestApp<P>, client_id: &str, list_id: &str) -> String {
    let token = app.token_for("alice").await;
    let todo = Uuid::new_v4().to_string();
    let body = json!({"client_id": client_id, "batch": [
        {"op_id": 1, "op": "PUT", "type": "todos", "id": todo, "tx_id": 1,
         "data": {"description": "milk", "list_id": list_id}},
    ]});
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);
    assert_eq!(report["rejected"], 1, "{report}");
    todo
}
