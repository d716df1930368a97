//! Policies that do not fit the schema stop start-up with a clear error.

use uplink::config::Secret;
use uplink::startup::Application;

use crate::support::app::test_settings;
use crate::support::database::fresh_database;
use crate::support::fixtures::tables_from_yaml;
use crate::support::policies::SCHEMA;

async fn build_error(yaml: &str) -> String {
    let database = fresh_database(&[SCHEMA]).await;
    let mut settings = test_settings(&database.url);
    settings.database.url = Some(Secret::new(database.url));
    settings.write.tables = tables_from_yaml(yaml);
    match Application::build(settings).await {
        Ok(_) => panic!("start-up must fail for {yaml}"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn policies_naming_missing_or_unfit_columns_stop_start_up() {
    let cases = [
        (
            "write:\n  tables:\n    lists: { owner_column: owner }\n",
            "lists.owner",
        ),
        (
            "write:\n  tables:\n    inventory: { delta_columns: [product] }\n",
            "inventory.product",
        ),
        (
            "write:\n  tables:\n    documents: { conflict: { strategy: version, column: content } }\n",
            "documents.content",
        ),
        (
            "write:\n  tables:\n    orders: { locked_when: { column: state, values: [x] } }\n",
            "orders.state",
        ),
        ("write:\n  tables:\n    nowhere: {}\n", "nowhere"),
        (
            "write:\n  tables:\n    orders: { transitions: { column: status, allowed: { open: [closed], closed: [open] } } }\n",
            "orders.transitions.initial",
        ),
    ];
    for (yaml, named) in cases {
        let message = build_error(yaml).await;
        assert!(
            message.contains(named),
            "{yaml}: message should name `{named}`: {message}"
        );
        assert!(
            message.contains("write.tables."),
            "{yaml}: message should name the key: {message}"
        );
    }
}
