//! Policies that do not fit the schema stop start-up with a clear error.

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::tables_from_yaml;
use crate::support::policies::{MYSQL_SCHEMA, SCHEMA};

async fn build_error<P: Backend>(yaml: &str) -> String {
    let tables = yaml.to_owned();
    P::spawn_error(
        TestApp::builder()
            .schema(P::dialect(SCHEMA, MYSQL_SCHEMA))
            .config(move |s| s.write.tables = tables_from_yaml(&tables)),
    )
    .await
}

async fn policies_naming_missing_or_unfit_columns_stop_start_up<P: Backend>() {
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
        (
            "write:\n  tables:\n    tasks: { conflict: { strategy: timestamp, column: title } }\n",
            "tasks.title",
        ),
        (
            "write:\n  tables:\n    notes: { conflict: { strategy: field_timestamps, column: body } }\n",
            "notes.body",
        ),
        ("write:\n  tables:\n    nowhere: {}\n", "nowhere"),
        (
            "write:\n  tables:\n    orders: { transitions: { column: status, allowed: { open: [closed], closed: [open] } } }\n",
            "orders.transitions.initial",
        ),
    ];
    for (yaml, named) in cases {
        let message = build_error::<P>(yaml).await;
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

on_both_databases!(policies_naming_missing_or_unfit_columns_stop_start_up);
