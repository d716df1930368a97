//! Property: whatever a client sends, its queue never wedges and nothing is
//! lost. Random batches mix valid entries with hostile ones (numbers no
//! float holds, deeply nested JSON, oversized and oddly spelt ids, wrong
//! types, collation clashes, constraint violations) against tables with
//! and without policies. Invariants, on Postgres and on MySQL/MariaDB:
//! every request is answered 200; every entry is applied (and the row
//! shows it), a conflict, or rejected with its client transaction
//! dead-lettered; the same batch again is a replay, never a different
//! failure.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;

const PG_SCHEMA: &str = "
CREATE TABLE items (id text PRIMARY KEY, title varchar(20), qty integer CHECK (qty >= 0),
                    meta jsonb, flag boolean);
CREATE TABLE owned (id text PRIMARY KEY, owner_id text, title text,
                    version integer NOT NULL DEFAULT 1, meta jsonb);
CREATE TABLE keyed (id uuid PRIMARY KEY, title text);
";

const MYSQL_SCHEMA: &str = "
CREATE TABLE items (id VARCHAR(64) PRIMARY KEY, title VARCHAR(20), qty INT CHECK (qty >= 0),
                    meta JSON, flag BOOLEAN);
CREATE TABLE owned (id VARCHAR(64) COLLATE utf8mb4_general_ci PRIMARY KEY, owner_id VARCHAR(64),
                    title TEXT, version INT NOT NULL DEFAULT 1, meta JSON);
CREATE TABLE keyed (id BINARY(16) PRIMARY KEY, title TEXT);
CREATE TABLE legacy (id VARCHAR(40) CHARACTER SET latin1 PRIMARY KEY, title TEXT);
";

const TABLES: &str = "
write:
  tables:
    items: {}
    owned:
      owner_column: owner_id
      conflict: { strategy: version, column: version, on_conflict: record }
    keyed: {}
";

/// What differs between the databases: their hostile ids and how to read
/// a column of the row an id names (as the database compares keys).
trait Dialect: Backend {
    const SCHEMA: &'static str;
    const TABLES: &'static [&'static str];
    fn long_id() -> String;
    fn column_of(table: &str, column: &str, id: &str) -> String;
    /// One text for every spelling of an id that names the same row.
    fn row_key(table: &str, id: &str) -> String;
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Dialect for PgPool {
    const SCHEMA: &'static str = PG_SCHEMA;
    const TABLES: &'static [&'static str] = &["items", "owned", "keyed"];

    /// Over the btree limit of an index row, incompressible.
    fn long_id() -> String {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect()
    }

    fn column_of(table: &str, column: &str, id: &str) -> String {
        let key = if table == "keyed" {
            format!("{}::uuid", quoted(id))
        } else {
            quoted(id)
        };
        format!("SELECT {column}::text FROM {table} WHERE id = {key}")
    }

    /// A uuid in any case; text keys compare exactly.
    fn row_key(table: &str, id: &str) -> String {
        match table {
            "keyed" => id.to_lowercase(),
            _ => id.to_owned(),
        }
    }
}

impl Dialect for MySqlPool {
    const SCHEMA: &'static str = MYSQL_SCHEMA;
    const TABLES: &'static [&'static str] = &["items", "owned", "keyed", "legacy"];

    fn long_id() -> String {
        "x".repeat(300)
    }

    fn column_of(table: &str, column: &str, id: &str) -> String {
        let key = if table == "keyed" {
            format!("UNHEX(REPLACE({}, '-', ''))", quoted(id))
        } else {
            quoted(id)
        };
        format!("SELECT CAST({column} AS CHAR) FROM {table} WHERE id = {key}")
    }

    /// A uuid in any case; VARCHAR keys are PAD SPACE (trailing spaces do
    /// not count), and `_ci` ones ignore case too.
    fn row_key(table: &str, id: &str) -> String {
        match table {
            "keyed" | "owned" | "legacy" => id.to_lowercase().trim_end().to_owned(),
            _ => id.trim_end().to_owned(),
        }
    }
}

const UUID: &str = "0a1b2c3d-0000-4000-8000-00000000000a";

/// Ids: plain, spelt otherwise (case, a trailing space), a uuid in two
/// spellings, one that is not a uuid, an emoji, an oversized one.
fn id<P: Dialect>() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["A", "b "]).prop_map(str::to_owned),
        2 => prop::sample::select(vec![UUID.to_owned(), UUID.to_uppercase(), "zz".to_owned()]),
        1 => Just("\u{1F600}".to_owned()),
        1 => Just(P::long_id()),
    ]
    .boxed()
}

/// A value as the JSON text the client sends; `Some(text)` when it is a
/// string whose text a text column stores as it is.
fn value(column: &'static str) -> BoxedStrategy<(String, Option<String>)> {
    let deep = serde_json::to_string(&format!("{}1{}", "[".repeat(127), "]".repeat(127))).unwrap();
    let texts = |values: &[&str]| {
        prop::sample::select(
            values
                .iter()
                .map(|t| (format!("\"{t}\""), Some((*t).to_owned())))
                .collect::<Vec<_>>(),
        )
    };
    let raw = |values: Vec<String>| {
        prop::sample::select(values.into_iter().map(|v| (v, None)).collect::<Vec<_>>())
    };
    match column {
        "title" => prop_oneof![
            3 => texts(&["x", "y", "\u{e9}t\u{e9}"]),
            1 => texts(&["a title far too long for twenty characters"]),
            1 => raw(vec!["{\"obj\": 1}".into(), "[1, 2]".into(), "7".into(), "null".into()]),
        ]
        .boxed(),
        "qty" => raw(vec![
            "1".into(),
            "-1".into(),
            "2.5".into(),
            "1e400".into(),
            "\"abc\"".into(),
            "25.0".into(),
        ])
        .boxed(),
        "meta" => raw(vec![
            "{\"a\": 1}".into(),
            "{\"x\": 1e400}".into(),
            deep,
            "\"not json\"".into(),
        ])
        .boxed(),
        "flag" => raw(vec!["true".into(), "2".into(), "\"maybe\"".into()]).boxed(),
        _ => raw(vec!["1".into(), "\"1\"".into(), "99".into()]).boxed(),
    }
}

#[derive(Debug, Clone)]
struct Entry {
    op: &'static str,
    table: &'static str,
    id: String,
    /// Column, value as JSON text, its text when it is a plain string.
    data: Vec<(&'static str, String, Option<String>)>,
    new_tx: bool,
}

fn columns(table: &str) -> &'static [&'static str] {
    match table {
        "items" => &["title", "qty", "meta", "flag"],
        "owned" => &["title", "version", "meta"],
        _ => &["title"],
    }
}

fn entry<P: Dialect>() -> impl Strategy<Value = Entry> {
    (
        prop::sample::select(P::TABLES.to_vec()),
        prop::sample::select(vec!["PUT", "PUT", "PATCH", "DELETE"]),
        id::<P>(),
        prop::bool::weighted(0.6),
    )
        .prop_flat_map(|(table, op, id, new_tx)| {
            let data = columns(table)
                .iter()
                .map(|c| {
                    proptest::option::weighted(0.6, value(c).prop_map(move |v| (*c, v.0, v.1)))
                })
                .collect::<Vec<_>>();
            data.prop_map(move |data| Entry {
                op,
                table,
                id: id.clone(),
                data: if op == "DELETE" {
                    Vec::new()
                } else {
                    data.into_iter().flatten().collect()
                },
                new_tx,
            })
        })
}

/// The batch as the body's text (numbers no float holds go as written).
fn body(client_id: &str, entries: &[Entry]) -> String {
    let mut tx = 0;
    let entries: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 || e.new_tx {
                tx += 1;
            }
            let data: Vec<String> = e.data.iter().map(|(c, v, _)| format!("\"{c}\": {v}")).collect();
            format!(
                r#"{{"op_id": {}, "tx_id": {tx}, "op": "{}", "type": "{}", "id": {}, "data": {{{}}}}}"#,
                i + 1,
                e.op,
                e.table,
                serde_json::to_string(&e.id).unwrap(),
                data.join(", ")
            )
        })
        .collect();
    format!(
        r#"{{"client_id": "{client_id}", "batch": [{}]}}"#,
        entries.join(", ")
    )
}

async fn dead_letters<P: Backend>(app: &TestApp<P>) -> i64 {
    app.text("SELECT COUNT(*) FROM uplink.dead_letters")
        .await
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Checks one batch's answer and effects; `case` names the client id.
async fn check<P: Dialect>(app: &TestApp<P>, token: &str, case: usize, entries: &[Entry]) {
    let client_id = format!("case-{case}");
    let body = body(&client_id, entries);
    let before = dead_letters(app).await;

    let (status, report) = app.post_batch_text(token, &body).await;

    assert_eq!(status, 200, "{report}\n{body}");
    let results = report["results"].as_array().unwrap();
    let listed: BTreeMap<i64, &Value> = results
        .iter()
        .map(|r| (r["op_id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(listed.len(), results.len(), "{report}");
    let count = |key: &str| report[key].as_u64().unwrap() as usize;
    assert_eq!(
        count("applied") + count("duplicates") + count("conflicts") + count("rejected"),
        entries.len(),
        "{report}"
    );
    for result in results {
        assert!(
            ["conflict", "rejected"].contains(&result["status"].as_str().unwrap()),
            "{report}"
        );
    }
    // Each rejected client transaction is one new dead letter.
    let rejected_txs = results
        .iter()
        .filter(|r| r["status"] == "rejected" && r["code"] != "transaction_rejected")
        .count() as i64;
    assert_eq!(
        dead_letters(app).await - before,
        rejected_txs,
        "{report}\n{body}"
    );

    // The last applied write of each row shows in it.
    let mut last: BTreeMap<(&str, String), &Entry> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if !listed.contains_key(&(i as i64 + 1)) {
            last.insert((e.table, P::row_key(e.table, &e.id)), e);
        }
    }
    for e in last.values() {
        for (column, _, text) in &e.data {
            let Some(text) = text else { continue };
            let stored = app
                .db_pool
                .texts(&P::column_of(e.table, column, &e.id))
                .await;
            // A PATCH of a missing row does nothing (deletes win).
            if e.op == "PUT" || !stored.is_empty() {
                assert_eq!(
                    stored,
                    [Some(text.clone())],
                    "{} {} {column}\n{report}\n{body}",
                    e.table,
                    e.id
                );
            }
        }
        if e.op == "DELETE" {
            let stored = app.db_pool.texts(&P::column_of(e.table, "id", &e.id)).await;
            assert!(
                stored.is_empty(),
                "{} {} deleted\n{report}\n{body}",
                e.table,
                e.id
            );
        }
    }

    let (status, again) = app.post_batch_text(token, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(count_of(&again, "duplicates"), entries.len(), "{again}");
}

fn count_of(report: &Value, key: &str) -> usize {
    report[key].as_u64().unwrap_or_default() as usize
}

fn hostile_batches_never_wedge<P: Dialect>() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, tokens) = runtime.block_on(async {
        let app = P::spawn(TestApp::builder().schema(P::SCHEMA).config(|s| {
            let mut tables = tables_from_yaml(TABLES);
            if P::TABLES.contains(&"legacy") {
                tables.extend(tables_from_yaml("write:\n  tables:\n    legacy: {}\n"));
            }
            s.write.tables = tables;
        }))
        .await;
        let tokens = [app.token_for("alice").await, app.token_for("bob").await];
        (app, tokens)
    });
    let config = ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let case = std::sync::atomic::AtomicUsize::new(0);
    proptest!(config, |(entries in prop::collection::vec(entry::<P>(), 1..12), user in 0..2usize)| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(check(&app, &tokens[user], case, &entries));
    });
}

#[test]
fn hostile_batches_never_wedge_on_postgres() {
    hostile_batches_never_wedge::<PgPool>();
}

#[test]
fn hostile_batches_never_wedge_on_mysql() {
    hostile_batches_never_wedge::<MySqlPool>();
}
