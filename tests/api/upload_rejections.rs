//! What the write path refuses and how it says so: hostile names per entry,
//! envelope and transport errors in the JSON shape, values longer than their
//! column.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::fixtures::{
    fixture_schema, fixture_write_settings, put_list, spawn_fixture_app, tables_from_yaml,
};
use crate::support::responses::error_code;
use crate::support::statement_relay::StatementRelay;

#[tokio::test]
async fn unknown_and_hostile_names_are_rejected_per_entry_and_never_reach_sql() {
    let relay = StatementRelay::start().await;
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(relay.route())
        .spawn()
        .await;
    let token = app.token_for("mallory").await;
    let good = Uuid::new_v4().to_string();
    let hostile_tables = [
        "nope",
        "lists\"; DROP TABLE lists; --",
        "public.lists",
        "lists;",
        "lіsts", // Cyrillic i
        "client_progress",
        &"x".repeat(10_000),
    ];
    let hostile_columns = [
        "nope",
        "name\" = 'x'; --",
        "lists.name",
        "name;",
        "nаme",
        "id\"\"",
    ];
    let mut batch = Vec::new();
    let mut op_id = 0;
    for table in hostile_tables {
        op_id += 1;
        batch.push(json!({"op_id": op_id, "op": "PUT", "type": table, "id": Uuid::new_v4().to_string(), "tx_id": op_id, "data": {"name": "x"}}));
    }
    for column in hostile_columns {
        op_id += 1;
        batch.push(json!({"op_id": op_id, "op": "PATCH", "type": "lists", "id": good, "tx_id": op_id, "data": {column: "x"}}));
    }
    op_id += 1;
    batch.push(put_list(op_id, op_id, &good, "legit"));
    let before = relay.statements().len();

    let (status, report) = app.post_batch(&token, &json!({"batch": batch})).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), hostile_tables.len() + hostile_columns.len());
    for result in &results[..hostile_tables.len()] {
        assert_eq!(result["code"], "unknown_table", "{result}");
    }
    for result in &results[hostile_tables.len()..] {
        assert_eq!(result["code"], "unknown_column", "{result}");
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 1);
    let name: String = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "legit");
    let statements = relay.statements().split_off(before);
    assert!(
        statements
            .iter()
            .any(|s| s.contains(r#"INSERT INTO "lists""#)),
        "the relay records uplink's statements: {statements:#?}"
    );
    for name in hostile_tables.iter().chain(&hostile_columns) {
        // The name as an identifier, quoted as uplink quotes one.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // uplink's own statements name its own table, unquoted.
        let own = name.starts_with("uplink_");
        for statement in &statements {
            assert!(
                !statement.contains(&quoted) && (own || !statement.contains(*name)),
                "{name:?} reached SQL: {statement}"
            );
        }
    }
}

#[tokio::test]
async fn envelope_errors_are_400_with_the_json_shape() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("dave").await;
    let cases: &[(&str, &str, &str)] = &[
        ("not json at all", "invalid_json", "a body that is not JSON"),
        ("{}", "invalid_envelope", "no batch"),
        (
            r#"{"batch": [{"type": "lists", "id": "1"}]}"#,
            "invalid_envelope",
            "entry without op",
        ),
        (
            r#"{"batch": [{"op": "PUT", "id": "1"}]}"#,
            "invalid_envelope",
            "entry without type",
        ),
        (
            r#"{"batch": [{"op": "PUT", "type": "lists"}]}"#,
            "invalid_envelope",
            "entry without id",
        ),
        (
            r#"{"batch": [{"op": "MERGE", "type": "lists", "id": "1"}]}"#,
            "invalid_envelope",
            "unknown op",
        ),
    ];
    for (body, code, case) in cases {
        let response = app
            .client
            .post(app.url("/api/data"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(error_code(response).await, *code, "{case}");
    }
}

#[tokio::test]
async fn transport_errors_have_the_json_shape() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(|s| {
            fixture_write_settings(s);
            s.server.max_body_bytes = 4096;
        })
        .spawn()
        .await;
    let token = app.token_for("erin").await;

    let no_token = app
        .post_raw("/api/data", "application/json", r#"{"batch": []}"#)
        .await;
    assert_eq!(no_token.status(), 401);
    assert!(no_token.headers().contains_key("www-authenticate"));
    assert_eq!(error_code(no_token).await, "missing_token");

    let not_json = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body(r#"{"batch": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    assert_eq!(error_code(not_json).await, "unsupported_media_type");

    let big = format!(r#"{{"batch": [], "pad": "{}"}}"#, "x".repeat(8192));
    let too_big = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(error_code(too_big).await, "payload_too_large");
}

#[tokio::test]
async fn length_limited_columns_refuse_longer_values_and_never_match_a_prefix() {
    let app = TestApp::builder()
        .schema(
            "CREATE TABLE codes (id varchar(4) PRIMARY KEY, code char(3), label varchar(5));
             INSERT INTO codes VALUES ('abcd', 'xyz', 'kept');",
        )
        .config(|s| s.write.tables = tables_from_yaml("write:\n  tables:\n    codes: {}\n"))
        .spawn()
        .await;
    let token = app.token_for("erin").await;
    let body = json!({"batch": [
        // An id longer than the key must not reach the row with its prefix.
        {"op_id": 1, "op": "DELETE", "type": "codes", "id": "abcde", "tx_id": 1},
        {"op_id": 2, "op": "PATCH", "type": "codes", "id": "abcde", "tx_id": 2, "data": {"label": "lost"}},
        {"op_id": 3, "op": "PUT", "type": "codes", "id": "new1", "tx_id": 3, "data": {"code": "ab", "label": "toolong"}},
        {"op_id": 4, "op": "PUT", "type": "codes", "id": "new2", "tx_id": 4, "data": {"code": "ab", "label": "fits"}},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(report["results"][0]["op_id"], 3, "{report}");
    assert_eq!(report["results"][0]["code"], "invalid_value", "{report}");
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, code, label FROM codes ORDER BY id")
            .fetch_all(&app.db_pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("abcd".to_owned(), "xyz".to_owned(), "kept".to_owned()),
            ("new2".to_owned(), "ab ".to_owned(), "fits".to_owned()),
        ]
    );
}
