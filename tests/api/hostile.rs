//! Hostile input, table-driven: every case gets its documented answer (400,
//! 413, 431, or 200 with a per-entry outcome), never a 500, and afterwards the
//! database holds only the legitimate rows.

use serde_json::Value;
use uuid::Uuid;

use crate::support::fixtures::spawn_fixture_app;

/// What a case must get.
enum Expect {
    /// The whole request is refused with this status and error code.
    Refused(u16, &'static str),
    /// 200, the one entry applied.
    Applied,
    /// 200, the one entry rejected with this code.
    Rejected(&'static str),
}

struct Case {
    why: &'static str,
    body: Vec<u8>,
    expect: Expect,
}

/// A one-entry batch; `data` is spliced in as raw JSON text.
fn one(op_id: i64, table: &str, id: &str, data: &str) -> Vec<u8> {
    format!(
        r#"{{"client_id": "hostile", "batch": [{{"op_id": {op_id}, "op": "PUT", "type": {table}, "id": {id}, "tx_id": {op_id}, "data": {data}}}]}}"#,
        table = Value::from(table),
        id = Value::from(id),
    )
    .into_bytes()
}

fn uuid() -> String {
    Uuid::new_v4().to_string()
}

fn cases() -> Vec<Case> {
    let deep_envelope = format!(
        r#"{{"batch": [{{"op": "PUT", "type": "lists", "id": "{}", "data": {{"name": {}{}}}}}]}}"#,
        uuid(),
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_jsonb_text = Value::from(format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)));
    let mut invalid_utf8 = one(90, "lists", &uuid(), r#"{"name": "ok"}"#);
    let at = invalid_utf8.len() - 8;
    invalid_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    let many: Vec<String> = (0..100_000)
        .map(|i| format!(r#"{{"op_id":{i},"op":"DELETE","type":"lists","id":"{i}"}}"#))
        .collect();
    let hundred_thousand = format!(r#"{{"batch":[{}]}}"#, many.join(","));
    let oversized = format!(r#"{{"batch": [], "pad": "{}"}}"#, "x".repeat(9 << 20));
    let item = |op_id: i64, column: &str, value: &str| {
        one(
            op_id,
            "items",
            &uuid(),
            &format!(r#"{{"title": "t", {}: {value}}}"#, Value::from(column)),
        )
    };
    use Expect::*;
    vec![
        Case { why: "SQL fragment in a text value", body: one(1, "lists", &uuid(), r#"{"name": "x'); DROP TABLE lists; --"}"#), expect: Applied },
        Case { why: "SQL fragment as a uuid id", body: one(2, "lists", "1' OR '1'='1", r#"{"name": "n"}"#), expect: Rejected("invalid_value") },
        Case { why: "SQL fragment as a text id", body: one(3, "settings", "'; DROP TABLE settings; --", r#"{"font_size": 1}"#), expect: Applied },
        Case { why: "SQL fragment in an integer", body: item(4, "qty", r#""1; DELETE FROM items""#), expect: Rejected("invalid_value") },
        Case { why: "quote in a table name", body: one(5, "lists\"", &uuid(), r#"{"name": "n"}"#), expect: Rejected("unknown_table") },
        Case { why: "dotted table name", body: one(6, "public.lists", &uuid(), r#"{"name": "n"}"#), expect: Rejected("unknown_table") },
        Case { why: "semicolon in a column name", body: one(7, "lists", &uuid(), r#"{"name; --": "n", "name": "n"}"#), expect: Rejected("unknown_column") },
        Case { why: "look-alike column name (Cyrillic a)", body: one(8, "lists", &uuid(), r#"{"n\u0430me": "n"}"#), expect: Rejected("unknown_column") },
        Case { why: "10 KB column name", body: one(9, "lists", &uuid(), &format!(r#"{{"{}": "n"}}"#, "c".repeat(10_240))), expect: Rejected("unknown_column") },
        Case { why: "NUL in a table name", body: one(10, "lists\u{0}", &uuid(), r#"{"name": "n"}"#), expect: Rejected("unknown_table") },
        Case { why: "deep JSON in the envelope", body: deep_envelope.into_bytes(), expect: Refused(400, "json_too_deep") },
        Case { why: "deep JSON text for a jsonb column (Postgres stores it)", body: item(11, "attrs", &deep_jsonb_text.to_string()), expect: Applied },
        Case { why: "huge integer", body: item(12, "qty", "99999999999999999999999"), expect: Rejected("invalid_value") },
        Case { why: "integer beyond f64", body: item(13, "qty", "1e400"), expect: Rejected("invalid_value") },
        Case { why: "bigint overflow", body: item(14, "big_count", "9223372036854775808"), expect: Rejected("invalid_value") },
        Case { why: "numeric overflow", body: item(15, "price", "1e30"), expect: Rejected("invalid_value") },
        Case { why: "double beyond range", body: item(16, "weight", "1e400"), expect: Rejected("invalid_value") },
        Case { why: "NaN for an integer", body: item(17, "qty", r#""NaN""#), expect: Rejected("invalid_value") },
        Case { why: "NaN for a boolean", body: item(18, "is_active", r#""NaN""#), expect: Rejected("invalid_value") },
        Case { why: "NaN for a double (Postgres stores it)", body: item(19, "weight", r#""NaN""#), expect: Applied },
        Case { why: "NUL in a text value", body: one(20, "lists", &uuid(), r#"{"name": "a\u0000b"}"#), expect: Rejected("invalid_value") },
        Case { why: "NUL in a text id", body: one(21, "settings", "a\u{0}b", r#"{"font_size": 1}"#), expect: Rejected("invalid_value") },
        Case { why: "NUL inside JSON text for jsonb", body: item(22, "attrs", r#""{\"a\": \"\\u0000\"}""#), expect: Rejected("invalid_value") },
        Case { why: "lone surrogate in a text value", body: one(23, "lists", &uuid(), r#"{"name": "\ud800"}"#), expect: Rejected("invalid_value") },
        Case { why: "invalid UTF-8 bytes", body: invalid_utf8, expect: Refused(400, "invalid_json") },
        Case { why: "op_id beyond i64", body: br#"{"batch": [{"op_id": 1e30, "op": "PUT", "type": "lists", "id": "x", "data": {}}]}"#.to_vec(), expect: Refused(400, "invalid_envelope") },
        Case { why: "a 100 000-entry batch", body: hundred_thousand.into_bytes(), expect: Refused(400, "too_many_entries") },
        Case { why: "a body over the limit", body: oversized.into_bytes(), expect: Refused(413, "payload_too_large") },
    ]
}

#[tokio::test]
async fn hostile_input_gets_its_documented_status_and_leaves_only_legitimate_rows() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("mallory").await;
    let mut failures = Vec::new();

    for case in cases() {
        let response = app
            .client
            .post(app.url("/api/data"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(case.body)
            .send()
            .await
            .expect("request failed");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let outcome = match (&case.expect, status) {
            (Expect::Refused(want, code), got) => {
                got == *want
                    && body["error"]["code"] == *code
                    && body["error"]["message"].is_string()
            }
            (Expect::Applied, 200) => body["applied"] == 1 && body["rejected"] == 0,
            (Expect::Rejected(code), 200) => {
                body["applied"] == 0 && body["rejected"] == 1 && body["results"][0]["code"] == *code
            }
            _ => false,
        };
        if !outcome {
            let text = body.to_string();
            failures.push(format!(
                "{}: got {status} {}",
                case.why,
                &text[..text.len().min(300)]
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "cases with the wrong answer:\n{}",
        failures.join("\n")
    );
    let lists: Vec<String> = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_all(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(
        lists,
        vec!["x'); DROP TABLE lists; --".to_owned()],
        "only the legitimate list row"
    );
    let settings: Vec<String> = sqlx::query_scalar("SELECT id FROM settings")
        .fetch_all(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(settings, vec!["'; DROP TABLE settings; --".to_owned()]);
    let items: Vec<Option<f64>> = sqlx::query_scalar("SELECT weight FROM items")
        .fetch_all(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(
        items.len(),
        2,
        "only the deep jsonb and the NaN weight items"
    );
    assert!(items.iter().any(|w| w.is_some_and(f64::is_nan)));
}

#[tokio::test]
async fn an_oversized_header_is_refused_without_reaching_the_handler() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("mallory").await;

    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("X-Pad", "p".repeat(1 << 20))
        .json(&serde_json::json!({"batch": [{"op": "PUT", "type": "lists", "id": uuid(), "data": {"name": "n"}}]}))
        .send()
        .await;

    // actix answers 431 or closes the connection; never a 5xx, never a write.
    if let Ok(response) = response {
        assert_eq!(response.status(), 431);
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}
