//! No write is lost or reported applied unwritten: a PUT never resets a
//! policy's version, an update without a comparable time does not win
//! over a newer row, a version column cannot silently turn the policy off,
//! and integers are never rounded. Each case runs on Postgres and on
//! MySQL/MariaDB.

use serde_json::{Value, json};
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;

const PG_SCHEMA: &str = "
CREATE TABLE docs (id text PRIMARY KEY, title text, version integer NOT NULL DEFAULT 1);
CREATE TABLE tasks (id text PRIMARY KEY, title text, modified_at timestamptz);
CREATE TABLE counts (id text PRIMARY KEY, n bigint);
CREATE TABLE loose (id text PRIMARY KEY, title text, version integer);
CREATE TABLE cards (id uuid PRIMARY KEY, title text);
";

const MYSQL_SCHEMA: &str = "
CREATE TABLE docs (id VARCHAR(64) PRIMARY KEY, title TEXT, version INT NOT NULL DEFAULT 1);
CREATE TABLE tasks (id VARCHAR(64) PRIMARY KEY, title TEXT, modified_at DATETIME(6));
CREATE TABLE counts (id VARCHAR(64) PRIMARY KEY, n BIGINT);
CREATE TABLE loose (id VARCHAR(64) PRIMARY KEY, title TEXT, version INT);
CREATE TABLE cards (id BINARY(16) PRIMARY KEY, title TEXT);
";

const TABLES: &str = r#"
write:
  tables:
    docs:
      columns: [title, version]
      conflict: { strategy: version, column: version, on_conflict: reject }
    counts: {}
    cards: {}
"#;

/// The timestamp strategy.
const TIMESTAMPED: &str = r#"
    tasks:
      conflict: { strategy: timestamp, column: modified_at, on_conflict: record }
"#;

async fn spawn<P: Backend>(schema: &str) -> TestApp<P> {
    spawn_with::<P>(schema, TABLES.to_owned()).await
}

async fn spawn_with<P: Backend>(schema: &str, tables: String) -> TestApp<P> {
    P::spawn(
        TestApp::builder()
            .schema(schema)
            .config(move |s| s.write.tables = tables_from_yaml(&tables)),
    )
    .await
}

/// A batch of one entry (its own client transaction) for client `c`.
fn one(op_id: i64, op: &str, table: &str, id: &str, data: Value) -> Value {
    json!({"client_id": "c", "batch": [
        {"op_id": op_id, "op": op, "type": table, "id": id, "data": data}]})
}

async fn a_put_keeps_the_version_a_stale_client_is_judged_by<P: Backend>(schema: &str) {
    let app = spawn::<P>(schema).await;
    let token = app.token_for("alice").await;
    app.post_batch(&token, &one(1, "PUT", "docs", "d", json!({"title": "t0"})))
        .await;
    for (op_id, seen) in (2..=5).zip(1..) {
        let (_, report) = app
            .post_batch(
                &token,
                &one(
                    op_id,
                    "PATCH",
                    "docs",
                    "d",
                    json!({"title": "t", "version": seen}),
                ),
            )
            .await;
        assert_eq!(report["applied"], 1, "{report}");
    }
    // `columns` lists the version, but a PUT of the existing row keeps it.
    let (_, report) = app
        .post_batch(
            &token,
            &one(6, "PUT", "docs", "d", json!({"title": "put", "version": 5})),
        )
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(
        app.text("SELECT version FROM docs WHERE id = 'd'")
            .await
            .as_deref(),
        Some("6")
    );

    // A client that last saw version 1 is stale, and loses.
    let (status, report) = app
        .post_batch(
            &token,
            &one(
                7,
                "PATCH",
                "docs",
                "d",
                json!({"title": "stale", "version": 1}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["results"][0]["code"], "stale_version", "{report}");
    assert_eq!(
        app.text("SELECT title FROM docs WHERE id = 'd'")
            .await
            .as_deref(),
        Some("put")
    );
}

#[tokio::test]
async fn a_put_keeps_the_version_a_stale_client_is_judged_by_on_postgres() {
    a_put_keeps_the_version_a_stale_client_is_judged_by::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn a_put_keeps_the_version_a_stale_client_is_judged_by_on_mysql() {
    a_put_keeps_the_version_a_stale_client_is_judged_by::<MySqlPool>(MYSQL_SCHEMA).await;
}

async fn an_update_without_a_time_does_not_overwrite_a_newer_row<P: Backend>(schema: &str) {
    let app = spawn_with::<P>(schema, format!("{TABLES}{TIMESTAMPED}")).await;
    let token = app.token_for("alice").await;
    let created = json!({"title": "newest", "modified_at": "2026-03-01T12:00:00Z"});
    app.post_batch(&token, &one(1, "PUT", "tasks", "t", created))
        .await;

    for (op_id, data) in [
        (2, json!({"title": "no time"})),
        (3, json!({"title": "null time", "modified_at": null})),
        (
            4,
            json!({"title": "not a time", "modified_at": "yesterday"}),
        ),
    ] {
        let (status, report) = app
            .post_batch(&token, &one(op_id, "PATCH", "tasks", "t", data))
            .await;
        assert_eq!(status, 200);
        assert_eq!(report["results"][0]["status"], "conflict", "{report}");
        assert_eq!(
            report["results"][0]["code"], "timestamp_required",
            "{report}"
        );
    }
    assert_eq!(
        app.text("SELECT title FROM tasks WHERE id = 't'")
            .await
            .as_deref(),
        Some("newest")
    );
    assert!(
        app.text("SELECT modified_at FROM tasks WHERE id = 't'")
            .await
            .is_some()
    );
    assert_eq!(
        app.text(
            "SELECT COUNT(*) FROM uplink.write_conflicts WHERE conflict_type = 'timestamp_required'"
        )
        .await
        .as_deref(),
        Some("3")
    );

    // A newer write wins; deleting needs no time.
    let newer = json!({"title": "newer", "modified_at": "2026-03-02T12:00:00Z"});
    let (_, report) = app
        .post_batch(&token, &one(5, "PATCH", "tasks", "t", newer))
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    let (_, report) = app
        .post_batch(&token, &one(6, "DELETE", "tasks", "t", Value::Null))
        .await;
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(
        app.text("SELECT COUNT(*) FROM tasks").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn an_update_without_a_time_does_not_overwrite_a_newer_row_on_postgres() {
    an_update_without_a_time_does_not_overwrite_a_newer_row::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn an_update_without_a_time_does_not_overwrite_a_newer_row_on_mysql() {
    an_update_without_a_time_does_not_overwrite_a_newer_row::<MySqlPool>(MYSQL_SCHEMA).await;
}

async fn a_version_column_without_default_stops_start_up<P: Backend>(schema: &str) {
    let message = P::spawn_error(TestApp::builder().schema(schema).config(|s| {
        s.write.tables = tables_from_yaml(
            "write:\n  tables:\n    loose: { conflict: { strategy: version, column: version } }\n",
        )
    }))
    .await;
    assert!(
        message.contains("write.tables.loose.conflict.column"),
        "{message}"
    );
    assert!(message.contains("has no DEFAULT"), "{message}");
}

#[tokio::test]
async fn a_version_column_without_default_stops_start_up_on_postgres() {
    a_version_column_without_default_stops_start_up::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn a_version_column_without_default_stops_start_up_on_mysql() {
    a_version_column_without_default_stops_start_up::<MySqlPool>(MYSQL_SCHEMA).await;
}

async fn integers_are_stored_exactly_or_refused<P: Backend>(schema: &str) {
    let app = spawn::<P>(schema).await;
    let token = app.token_for("alice").await;
    // Each entry its own transaction; the numbers as the client wrote them.
    let body = r#"{"client_id": "c", "batch": [
        {"op_id": 1, "tx_id": 1, "op": "PUT", "type": "counts", "id": "fraction", "data": {"n": 12345678901234567.5}},
        {"op_id": 2, "tx_id": 2, "op": "PUT", "type": "counts", "id": "tiny", "data": {"n": 1.0000000000000001}},
        {"op_id": 3, "tx_id": 3, "op": "PUT", "type": "counts", "id": "exact", "data": {"n": 12345678901234567.0}},
        {"op_id": 4, "tx_id": 4, "op": "PUT", "type": "counts", "id": "exponent", "data": {"n": 2.5e1}}
    ]}"#;

    let (status, report) = app.post_batch_text(&token, body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 2, "{report}");
    for (result, id) in report["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["fraction", "tiny"])
    {
        assert_eq!(result["id"], id, "{report}");
        assert_eq!(result["code"], "invalid_value", "{report}");
        assert_eq!(result["column"], "n", "{report}");
    }
    assert_eq!(
        app.text("SELECT n FROM counts WHERE id = 'exact'")
            .await
            .as_deref(),
        Some("12345678901234567")
    );
    assert_eq!(
        app.text("SELECT n FROM counts WHERE id = 'exponent'")
            .await
            .as_deref(),
        Some("25")
    );
    assert_eq!(
        app.text("SELECT COUNT(*) FROM counts").await.as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn integers_are_stored_exactly_or_refused_on_postgres() {
    integers_are_stored_exactly_or_refused::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn integers_are_stored_exactly_or_refused_on_mysql() {
    integers_are_stored_exactly_or_refused::<MySqlPool>(MYSQL_SCHEMA).await;
}

/// Two spellings of one uuid in a batch: the second entry sees the first,
/// as one entry at a time would (never two writes of one row in one
/// statement, where the second would not see the first).
async fn two_spellings_of_one_key_apply_in_order<P: Backend>(schema: &str) {
    let app = spawn::<P>(schema).await;
    let token = app.token_for("alice").await;
    let id = "0a1b2c3d-0000-4000-8000-00000000000a";
    let batch = json!({"client_id": "c", "batch": [
        {"op_id": 1, "tx_id": 1, "op": "PUT", "type": "cards", "id": id, "data": {"title": "new"}},
        {"op_id": 2, "tx_id": 2, "op": "DELETE", "type": "cards", "id": id.to_uppercase()},
        {"op_id": 3, "tx_id": 3, "op": "PUT", "type": "cards", "id": "0A1B2C3D-0000-4000-8000-00000000000B", "data": {"title": "first"}},
        {"op_id": 4, "tx_id": 4, "op": "PATCH", "type": "cards", "id": "0a1b2c3d-0000-4000-8000-00000000000b", "data": {"title": "second"}},
    ]});

    let (status, report) = app.post_batch(&token, &batch).await;

    assert_eq!((status, &report["applied"]), (200, &json!(4)), "{report}");
    assert_eq!(
        app.text("SELECT COUNT(*) FROM cards").await.as_deref(),
        Some("1"),
        "the deleted card is gone"
    );
    assert_eq!(
        app.text("SELECT title FROM cards").await.as_deref(),
        Some("second")
    );
}

#[tokio::test]
async fn two_spellings_of_one_key_apply_in_order_on_postgres() {
    two_spellings_of_one_key_apply_in_order::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn two_spellings_of_one_key_apply_in_order_on_mysql() {
    two_spellings_of_one_key_apply_in_order::<MySqlPool>(MYSQL_SCHEMA).await;
}
