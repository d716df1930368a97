//! On MySQL a key compares by its column's collation: on a `_ci` or PAD
//! SPACE key `ABC ` names the row `abc`, and a BINARY(16) uuid key takes
//! any spelling of the uuid. Writes must find the row the database finds,
//! and never report `applied` for a row they did not write.

use serde_json::{Value, json};
use sqlx::MySqlPool;

use crate::support::app::TestApp;
use crate::support::fixtures::tables_from_yaml;

const SCHEMA: &str = "
CREATE TABLE ci_docs (id VARCHAR(64) COLLATE utf8mb4_general_ci PRIMARY KEY,
                      owner_id VARCHAR(64), title TEXT);
CREATE TABLE ci_plain (id VARCHAR(64) COLLATE utf8mb4_general_ci PRIMARY KEY, title TEXT);
CREATE TABLE cards (id BINARY(16) PRIMARY KEY, owner_id VARCHAR(64), title TEXT);
";

const TABLES: &str = "
write:
  tables:
    ci_docs: { owner_column: owner_id }
    ci_plain: {}
    cards: { owner_column: owner_id }
";

const CARD_1: &str = "0a1b2c3d-0000-4000-8000-000000000001";
const CARD_2: &str = "0a1b2c3d-0000-4000-8000-000000000002";

async fn spawn() -> TestApp<MySqlPool> {
    TestApp::builder()
        .schema(SCHEMA)
        .config(|s| s.write.tables = tables_from_yaml(TABLES))
        .spawn_mysql()
        .await
}

/// A batch of entries, each its own client transaction.
fn batch(entries: &[(&str, &str, &str, Value)]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, (op, table, id, data))| {
            json!({"op_id": i + 1, "tx_id": i + 1, "op": op, "type": table, "id": id, "data": data})
        })
        .collect();
    json!({"batch": entries})
}

async fn titles(app: &TestApp<MySqlPool>, table: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as(&format!(
        "SELECT CAST(id AS CHAR), CAST(title AS CHAR) FROM {table} ORDER BY id"
    ))
    .fetch_all(&app.db_pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_set_of_policy_writes_finds_rows_by_the_keys_collation() {
    let app = spawn().await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    let (_, report) = app
        .post_batch(
            &alice,
            &batch(&[
                ("PUT", "ci_docs", "abc", json!({"title": "a"})),
                ("PUT", "ci_docs", "def", json!({"title": "d"})),
            ]),
        )
        .await;
    assert_eq!(report["applied"], 2, "{report}");

    // Two entries of one table: the set path, with the ids spelt otherwise.
    let (status, report) = app
        .post_batch(
            &alice,
            &batch(&[
                ("PATCH", "ci_docs", "ABC", json!({"title": "a2"})),
                ("PATCH", "ci_docs", "def ", json!({"title": "d2"})),
            ]),
        )
        .await;
    assert_eq!((status, &report["applied"]), (200, &json!(2)), "{report}");
    assert_eq!(
        titles(&app, "ci_docs").await,
        [
            ("abc".into(), Some("a2".into())),
            ("def".into(), Some("d2".into()))
        ]
    );

    // Another user's spelling of the id does not make the row theirs.
    let (_, report) = app
        .post_batch(
            &bob,
            &batch(&[
                ("PATCH", "ci_docs", "Abc", json!({"title": "stolen"})),
                ("PATCH", "ci_docs", "DEF", json!({"title": "stolen"})),
            ]),
        )
        .await;
    assert_eq!(report["rejected"], 2, "{report}");
    assert_eq!(report["results"][0]["code"], "forbidden", "{report}");

    let (_, report) = app
        .post_batch(
            &alice,
            &batch(&[
                ("DELETE", "ci_docs", "ABC", Value::Null),
                ("DELETE", "ci_docs", "DEF ", Value::Null),
            ]),
        )
        .await;
    assert_eq!(report["applied"], 2, "{report}");
    assert!(titles(&app, "ci_docs").await.is_empty());
}

#[tokio::test]
async fn a_set_of_policy_writes_finds_uuid_keys_in_any_spelling() {
    let app = spawn().await;
    let alice = app.token_for("alice").await;
    app.post_batch(
        &alice,
        &batch(&[
            ("PUT", "cards", CARD_1, json!({"title": "1"})),
            ("PUT", "cards", CARD_2, json!({"title": "2"})),
        ]),
    )
    .await;

    let (_, report) = app
        .post_batch(
            &alice,
            &batch(&[
                (
                    "PATCH",
                    "cards",
                    &CARD_1.to_uppercase(),
                    json!({"title": "one"}),
                ),
                (
                    "PATCH",
                    "cards",
                    &CARD_2.to_uppercase(),
                    json!({"title": "two"}),
                ),
            ]),
        )
        .await;

    assert_eq!(report["applied"], 2, "{report}");
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT CAST(title AS CHAR) FROM cards ORDER BY id")
            .fetch_all(&app.db_pool)
            .await
            .unwrap();
    assert_eq!(stored, [Some("one".into()), Some("two".into())]);
}

#[tokio::test]
async fn two_spellings_of_one_key_in_a_batch_apply_in_order() {
    let app = spawn().await;
    let alice = app.token_for("alice").await;
    for table in ["ci_docs", "ci_plain"] {
        app.post_batch(
            &alice,
            &batch(&[("PUT", table, "abc", json!({"title": "0"}))]),
        )
        .await;
        let (_, report) = app
            .post_batch(
                &alice,
                &batch(&[
                    ("PATCH", table, "abc", json!({"title": "first"})),
                    ("PATCH", table, "ABC", json!({"title": "second"})),
                ]),
            )
            .await;
        assert_eq!(report["applied"], 2, "{table}: {report}");
        assert_eq!(
            titles(&app, table).await,
            [("abc".into(), Some("second".into()))],
            "{table}: the later entry wins, as one at a time"
        );
    }
}
