//! Nothing a client sends may block its queue: a value stored in a row,
//! or a database error uplink has no code for, is one entry's refusal (or
//! nothing at all), never a 5xx that the device would retry forever. Each
//! case runs on Postgres and on MySQL/MariaDB.

use serde_json::{Value, json};
use sqlx::{MySqlPool, PgPool};

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::fixtures::tables_from_yaml;

const PG_SCHEMA: &str = r#"
CREATE TABLE notes (id text PRIMARY KEY, owner_id text, meta jsonb, body text,
                    version integer NOT NULL DEFAULT 1);
CREATE TABLE plain (id text PRIMARY KEY, name text);
CREATE TABLE guarded (id text PRIMARY KEY, name text);
CREATE TABLE legacy (id text PRIMARY KEY, name text);
CREATE FUNCTION refuse_odd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'odd' THEN
        RAISE SQLSTATE 'UX001' USING MESSAGE = 'odd names are not welcome here';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER guarded_refuse_odd BEFORE INSERT OR UPDATE ON guarded
    FOR EACH ROW EXECUTE FUNCTION refuse_odd();
"#;

const MYSQL_SCHEMA: &str = r#"
CREATE TABLE notes (id VARCHAR(64) PRIMARY KEY, owner_id VARCHAR(64), meta JSON, body TEXT,
                    version INT NOT NULL DEFAULT 1);
CREATE TABLE plain (id VARCHAR(64) PRIMARY KEY, name TEXT);
CREATE TABLE guarded (id VARCHAR(64) PRIMARY KEY, name TEXT);
CREATE TABLE legacy (id VARCHAR(40) CHARACTER SET latin1 PRIMARY KEY, name TEXT);
CREATE TRIGGER guarded_refuse_odd BEFORE INSERT ON guarded FOR EACH ROW
BEGIN
    IF NEW.name = 'odd' THEN
        SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 31001, MESSAGE_TEXT = 'odd names are not welcome here';
    END IF;
END;
"#;

const TABLES: &str = r#"
write:
  tables:
    notes:
      owner_column: owner_id
      conflict: { strategy: version, column: version, on_conflict: reject }
    plain: {}
    guarded: {}
    legacy: {}
"#;

async fn spawn<P: Backend>(schema: &str) -> TestApp<P> {
    P::spawn(
        TestApp::builder()
            .schema(schema)
            .config(|s| s.write.tables = tables_from_yaml(TABLES)),
    )
    .await
}

fn entry(op_id: i64, op: &str, table: &str, id: &str, data: Value) -> Value {
    json!({"op_id": op_id, "op": op, "type": table, "id": id, "tx_id": op_id, "data": data})
}

/// JSON text nested `depth` levels deep.
fn nested(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

async fn a_stored_value_never_wedges_its_row<P: Backend>(schema: &str) {
    let app = spawn::<P>(schema).await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    // A number no float holds, which serde_json's own values refuse too:
    // the body goes as text.
    let body = format!(
        r#"{{"client_id": "a", "batch": [
            {{"op_id": 1, "op": "PUT", "type": "notes", "id": "huge", "tx_id": 1,
              "data": {{"meta": {{"x": 1e400}}, "body": "a"}}}},
            {{"op_id": 2, "op": "PUT", "type": "notes", "id": "deep", "tx_id": 2,
              "data": {{"meta": {}, "body": "a"}}}}]}}"#,
        json!(nested(127))
    );
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&alice)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let created = response.text().await.unwrap();
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        app.text("SELECT body FROM notes WHERE id = 'huge'")
            .await
            .as_deref(),
        Some("a"),
        "{created}"
    );
    // MySQL keeps JSON to 100 levels (MariaDB to 32): the deep value is
    // refused there, per entry, when it is written.
    let deep_stored = app
        .text("SELECT COUNT(*) FROM notes WHERE id = 'deep'")
        .await;

    // Every later write of those rows is decided as usual, beside an
    // unrelated entry of the same batch.
    let (status, report) = app
        .post_batch(
            &alice,
            &json!({"client_id": "a", "batch": [
                entry(3, "PATCH", "notes", "huge", json!({"body": "b", "version": 1})),
                entry(4, "PATCH", "notes", "deep", json!({"body": "b", "version": 1})),
                entry(5, "PUT", "plain", "p1", json!({"name": "kept"})),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(
        app.text("SELECT body FROM notes WHERE id = 'huge'")
            .await
            .as_deref(),
        Some("b")
    );
    assert_eq!(
        app.text("SELECT version FROM notes WHERE id = 'huge'")
            .await
            .as_deref(),
        Some("2")
    );
    if deep_stored.as_deref() == Some("1") {
        assert_eq!(
            app.text("SELECT body FROM notes WHERE id = 'deep'")
                .await
                .as_deref(),
            Some("b"),
            "{report}"
        );
    }
    assert_eq!(
        app.text("SELECT name FROM plain WHERE id = 'p1'")
            .await
            .as_deref(),
        Some("kept")
    );

    let (status, report) = app
        .post_batch(
            &bob,
            &json!({"batch": [
                entry(1, "PATCH", "notes", "huge", json!({"body": "stolen", "version": 2})),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["results"][0]["code"], "forbidden", "{report}");
    let (status, report) = app
        .post_batch(
            &alice,
            &json!({"client_id": "a", "batch": [
                entry(6, "DELETE", "notes", "huge", json!(null)),
            ]}),
        )
        .await;
    assert_eq!((status, &report["applied"]), (200, &json!(1)), "{report}");
    assert_eq!(
        app.text("SELECT COUNT(*) FROM notes WHERE id = 'huge'")
            .await
            .as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_stored_value_never_wedges_its_row_on_postgres() {
    a_stored_value_never_wedges_its_row::<PgPool>(PG_SCHEMA).await;
}

#[tokio::test]
async fn a_stored_value_never_wedges_its_row_on_mysql() {
    a_stored_value_never_wedges_its_row::<MySqlPool>(MYSQL_SCHEMA).await;
}

/// An entry the database refuses with an error uplink has no specific code
/// for, and words of the database's message the report must carry.
struct Refused<'a> {
    op: &'a str,
    table: &'a str,
    id: &'a str,
    said: &'a str,
}

/// A batch of one-entry transactions, two of them refused by errors uplink
/// has no specific code for: those two are rejected with the database's
/// own words and dead-lettered, the others applied.
async fn unclassified_errors_reject_one_entry<P: Backend>(schema: &str, refused: [Refused<'_>; 2]) {
    let app = spawn::<P>(schema).await;
    let token = app.token_for("alice").await;
    let batch = json!({"client_id": "c", "batch": [
        entry(1, "PUT", "plain", "ok-1", json!({"name": "first"})),
        entry(2, refused[0].op, refused[0].table, refused[0].id, json!({"name": "odd"})),
        entry(3, "PUT", "plain", "ok-2", json!({"name": "second"})),
        entry(4, refused[1].op, refused[1].table, refused[1].id, json!({"name": "x"})),
        entry(5, "PUT", "plain", "ok-3", json!({"name": "third"})),
    ]});

    let (status, report) = app.post_batch(&token, &batch).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");
    let results = report["results"].as_array().unwrap();
    for (refused, result) in refused.iter().zip(results) {
        assert_eq!(result["status"], "rejected", "{report}");
        let message = result["message"].as_str().unwrap();
        assert!(
            message.contains(refused.said),
            "{:?} not in {message:?}",
            refused.said
        );
    }
    assert_eq!(results[0]["op_id"], 2);
    assert_eq!(results[1]["op_id"], 4);
    assert_eq!(
        app.text("SELECT COUNT(*) FROM plain").await.as_deref(),
        Some("3")
    );
    assert_eq!(
        app.text("SELECT COUNT(*) FROM uplink.dead_letters")
            .await
            .as_deref(),
        Some("2")
    );
    // The same batch again: a replay, never a different failure.
    let (status, again) = app.post_batch(&token, &batch).await;
    assert_eq!((status, &again["duplicates"]), (200, &json!(5)), "{again}");
}

#[tokio::test]
async fn unclassified_errors_reject_one_entry_on_postgres() {
    // Incompressible, so the index entry really is over the limit.
    let long_id: String = (0..190)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    unclassified_errors_reject_one_entry::<PgPool>(
        PG_SCHEMA,
        [
            // An app-defined SQLSTATE.
            Refused {
                op: "PUT",
                table: "guarded",
                id: "g-1",
                said: "odd names are not welcome here",
            },
            // An index row too big for its btree (SQLSTATE 54000).
            Refused {
                op: "PUT",
                table: "plain",
                id: &long_id,
                said: "index row",
            },
        ],
    )
    .await;
}

#[tokio::test]
async fn unclassified_errors_reject_one_entry_on_mysql() {
    unclassified_errors_reject_one_entry::<MySqlPool>(
        MYSQL_SCHEMA,
        [
            // An app-defined error number.
            Refused {
                op: "PUT",
                table: "guarded",
                id: "g-1",
                said: "odd names are not welcome here",
            },
            // An emoji compared with a latin1 key (MySQL error 1270).
            Refused {
                op: "PATCH",
                table: "legacy",
                id: "\u{1F600}",
                said: "Illegal mix of collations",
            },
        ],
    )
    .await;
}
