//! The policy decision on a row and an entry: a client's batch against a
//! stored row of an owned, versioned table and of an owned state machine
//! with a locked state. Whatever the bytes: another user's row is never
//! written, a written row never names another owner, a new order starts
//! in an initial state, and a shipped (locked) order never changes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use uplink::upload::WriteSettings;
use uplink::upload::envelope::{Batch, Op};
use uplink::upload::schema::{Catalog, Column, RowKey, Table, ValueKind};
use uplink::upload::{Decision, decide_batch};

const USER: &str = "alice";

fn column(name: &str, kind: ValueKind) -> Column {
    let numeric = matches!(kind, ValueKind::Integer);
    Column {
        name: name.to_owned(),
        sql_type: if numeric { "bigint" } else { "text" }.to_owned(),
        cast_type: if numeric { "bigint" } else { "text" }.to_owned(),
        kind,
        numeric,
        not_null: false,
        // A versioned table's version column starts at its DEFAULT.
        default: (name == "version").then(|| "1".to_owned()),
        writable: true,
    }
}

fn table(name: &str, columns: &[(&str, ValueKind)]) -> Table {
    let mut table = Table::new(
        name.to_owned(),
        columns.iter().map(|(n, k)| column(n, k.clone())).collect(),
    );
    table.id_type = "text".to_owned();
    table.row_key = RowKey::Exact;
    table.id_is_key = true;
    table.rows_independent = true;
    table
}

fn setup() -> &'static (Catalog, WriteSettings) {
    static SETUP: OnceLock<(Catalog, WriteSettings)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let text = ValueKind::Other;
        let mut catalog = Catalog::default();
        for t in [
            table(
                "docs",
                &[
                    ("id", text.clone()),
                    ("owner_id", text.clone()),
                    ("body", text.clone()),
                    ("version", ValueKind::Integer),
                ],
            ),
            table(
                "orders",
                &[
                    ("id", text.clone()),
                    ("owner_id", text.clone()),
                    ("status", text.clone()),
                    ("note", text.clone()),
                ],
            ),
        ] {
            catalog.tables.insert(t.name.clone(), t);
        }
        let settings: WriteSettings = serde_json::from_value(json!({"tables": {
            "docs": {"owner_column": "owner_id",
                     "conflict": {"strategy": "version", "column": "version", "on_conflict": "reject"}},
            "orders": {"owner_column": "owner_id",
                       "transitions": {"column": "status", "initial": ["new"],
                                       "allowed": {"new": ["paid", "cancelled"], "paid": ["shipped"]}},
                       "locked_when": {"column": "status", "values": ["shipped"]}},
        }}))
        .expect("write settings");
        // Positive control: both policies are in force (a table whose
        // policy did not resolve would be refused as unknown).
        let control = json!({"batch": [
            {"op_id": 1, "op": "PUT", "type": "docs", "id": "d", "data": {"body": "x"}},
            {"op_id": 2, "op": "PUT", "type": "orders", "id": "o", "data": {"status": "paid"}},
        ]})
        .to_string();
        let decisions = decide_batch(&catalog, &settings, control.as_bytes(), USER, None)
            .expect("a batch");
        assert!(matches!(decisions[0], Decision::Write(_)), "{decisions:?}");
        assert!(matches!(decisions[1], Decision::Refused(_)), "{decisions:?}");
        (catalog, settings)
    })
}

fn value<'v>(values: &'v [(String, Option<String>)], name: &str) -> Option<&'v str> {
    values
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (catalog, settings) = setup();
    let owner = ["alice", "bob"][usize::from(mode & 1)];
    let status = ["new", "paid", "shipped", "lost"][usize::from(mode >> 1 & 3)];
    let stored = json!({"id": "x", "owner_id": owner, "body": "old", "version": 3,
                        "status": status, "note": null})
    .to_string();
    let current = (mode & 8 == 0).then_some(stored.as_str());

    let Some(decisions) = decide_batch(catalog, settings, body, USER, current) else {
        return;
    };
    assert_eq!(
        decide_batch(catalog, settings, body, USER, current),
        Some(decisions.clone())
    );
    let batch = Batch::parse(body, Some("fuzz-client")).expect("parsed once");
    let entries = batch.transactions.iter().flat_map(|t| &t.entries);
    for (entry, decision) in entries.zip(&decisions) {
        let Decision::Write(values) = decision else {
            continue;
        };
        let table = entry.table.as_ref();
        assert!(
            value(values, "owner_id").is_none_or(|o| o == USER),
            "a row written for another owner: {values:?}"
        );
        if current.is_some() {
            assert_eq!(owner, USER, "another user's row written: {entry:?}");
            if table == "orders" {
                assert_ne!(status, "shipped", "a locked order changed: {values:?}");
            }
        } else if table == "orders" && entry.op == Op::Put {
            assert!(
                value(values, "status").is_none_or(|s| s == "new"),
                "a new order not in an initial state: {values:?}"
            );
        }
    }
});
