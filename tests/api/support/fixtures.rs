//! What the tests load into apps: the SDK batch fixtures' schema and
//! writable columns, the todo example as shipped, and `write.tables` from
//! YAML.

use std::collections::BTreeMap;

use uplink::settings::Settings;
use uplink::upload::TableSettings;

use super::app::{TestApp, TestAppBuilder};
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
    let schema = std::fs::read_to_string(repo_root().join("examples/todo/schema.sql"))
        .expect("examples/todo/schema.sql is readable");
    let example = Settings::load(Some(&repo_root().join("examples/todo/uplink.yaml")))
        .expect("examples/todo/uplink.yaml loads");
    TestApp::builder()
        .schema(schema)
        .config(move |s| s.write = example.write)
}
