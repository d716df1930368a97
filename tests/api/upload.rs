//! The write path over real HTTP: replays, rejections, dead letters,
//! transient failures, hostile names, envelope errors.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::database::Outage;
use crate::support::fixtures::{
    fixture_schema, fixture_write_settings, spawn_fixture_app, tables_from_yaml,
};
use crate::support::process::uplink_command;
use crate::support::responses::error_code;
use crate::support::statement_relay::StatementRelay;

fn put_list(op_id: i64, tx_id: i64, id: &str, name: &str) -> Value {
    json!({"op_id": op_id, "op": "PUT", "type": "lists", "id": id, "tx_id": tx_id, "data": {"name": name}})
}

#[tokio::test]
async fn the_same_batch_twice_applies_once_and_reports_duplicates() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let inventory = Uuid::new_v4().to_string();
    let body = json!({"client_id": "device-1", "batch": [
        {"op_id": 1, "op": "PUT", "type": "inventory", "id": inventory, "tx_id": 1, "data": {"product": "apple", "quantity": 1}},
        {"op_id": 2, "op": "PATCH", "type": "inventory", "id": inventory, "tx_id": 2, "data": {"quantity": 5}},
    ]});

    let (status, first) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["applied"], 2);
    let (status, second) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);

    assert_eq!(second["applied"], 0);
    assert_eq!(second["duplicates"], 2);
    assert!(
        second["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate")
    );
    let last: i64 = sqlx::query_scalar(
        "SELECT last_op_id FROM uplink.client_progress WHERE user_id = 'alice' AND client_id = 'device-1'",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(last, 2);
}

#[tokio::test]
async fn overlapping_batches_apply_only_the_new_entries() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let ids: Vec<String> = (0..4).map(|_| Uuid::new_v4().to_string()).collect();
    let entries: Vec<Value> = (0..4)
        .map(|i| put_list(i + 1, i + 1, &ids[i as usize], "x"))
        .collect();

    let (_, first) = app
        .post_batch(&token, &json!({"client_id": "c", "batch": entries[..2]}))
        .await;
    // The header carries the client id this time.
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("PowerSync-Client-Id", "c")
        .json(&json!({"batch": entries[1..]}))
        .send()
        .await
        .unwrap();
    let second: Value = response.json().await.unwrap();

    assert_eq!(first["applied"], 2);
    assert_eq!(second["applied"], 2, "{second}");
    assert_eq!(second["duplicates"], 1);
    assert_eq!(second["results"][0]["op_id"], 2);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 4);
}

#[tokio::test]
async fn concurrent_requests_of_one_client_apply_each_entry_once() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let lists: Vec<String> = (0..20).map(|_| Uuid::new_v4().to_string()).collect();
    let entries: Vec<Value> = lists
        .iter()
        .enumerate()
        .map(|(i, id)| put_list(i as i64 + 1, i as i64 + 1, id, "concurrent"))
        .collect();
    let body = json!({"client_id": "same-device", "batch": entries});

    let (a, b, c) = tokio::join!(
        app.post_batch(&token, &body),
        app.post_batch(&token, &body),
        app.post_batch(&token, &body)
    );

    let reports = [a, b, c];
    assert!(reports.iter().all(|(status, _)| *status == 200));
    let applied: i64 = reports
        .iter()
        .map(|(_, r)| r["applied"].as_i64().unwrap())
        .sum();
    let duplicates: i64 = reports
        .iter()
        .map(|(_, r)| r["duplicates"].as_i64().unwrap())
        .sum();
    assert_eq!(
        applied, 20,
        "each entry applied exactly once across the requests"
    );
    assert_eq!(duplicates, 40);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 20);
}

#[tokio::test]
async fn a_failing_client_transaction_is_rolled_back_and_dead_lettered_alone() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("bob").await;
    let list = Uuid::new_v4().to_string();
    let good_todo = Uuid::new_v4().to_string();
    let orphan = Uuid::new_v4().to_string();
    let missing_list = Uuid::new_v4().to_string();
    let body = json!({"client_id": "phone", "batch": [
        put_list(1, 1, &list, "Groceries"),
        // tx 2: a list rename, then a todo for a list that does not exist.
        {"op_id": 2, "op": "PATCH", "type": "lists", "id": list, "tx_id": 2, "data": {"name": "Renamed"}},
        {"op_id": 3, "op": "PUT", "type": "todos", "id": orphan, "tx_id": 2, "data": {"list_id": missing_list, "description": "orphan"}},
        // tx 3: a bad uuid
        {"op_id": 4, "op": "PUT", "type": "todos", "id": "not-a-uuid", "tx_id": 3, "data": {"description": "bad"}},
        // tx 4: fine
        {"op_id": 5, "op": "PUT", "type": "todos", "id": good_todo, "tx_id": 4, "data": {"list_id": list, "description": "milk"}},
        // tx 5: check violation
        {"op_id": 6, "op": "PUT", "type": "inventory", "id": Uuid::new_v4().to_string(), "tx_id": 5, "data": {"quantity": -1}},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 2);
    assert_eq!(report["rejected"], 4);
    let codes: Vec<(i64, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["op_id"].as_i64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (2, "transaction_rejected".to_owned()),
            (3, "foreign_key_violation".to_owned()),
            (4, "invalid_value".to_owned()),
            (6, "check_violation".to_owned()),
        ]
    );
    let fk = &report["results"][1];
    assert_eq!(fk["constraint"], "todos_list_id_fkey");
    // The rename of tx 2 was rolled back with it; tx 1 and tx 4 stand.
    let name: String = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "Groceries");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 1);
    // Three dead letters, with their codes and entries.
    let dead: Vec<(String, Option<String>, Value)> = sqlx::query_as(
        "SELECT code, constraint_name, entries FROM uplink.dead_letters ORDER BY id",
    )
    .fetch_all(&app.db_pool)
    .await
    .unwrap();
    let dead_codes: Vec<&str> = dead.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(
        dead_codes,
        ["foreign_key_violation", "invalid_value", "check_violation"]
    );
    assert_eq!(dead[0].1.as_deref(), Some("todos_list_id_fkey"));
    assert_eq!(dead[0].2.as_array().unwrap().len(), 2);
    assert_eq!(dead[0].2[1]["data"]["description"], "orphan");
}

#[tokio::test]
async fn database_down_answers_503_and_the_same_batch_applies_later() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("carol").await;
    let id = Uuid::new_v4().to_string();
    let body = json!({"client_id": "c1", "batch": [put_list(1, 1, &id, "kept")]});
    // Make the database refuse connections and drop uplink's open ones.
    let outage = Outage::begin(&app.db_name).await;

    let response = app.send_batch(&token, &body).await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");

    outage.end().await;
    let check = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM lists")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(before, 0, "nothing applied by the 503 request");
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 1);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM lists")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(after, 1);
}

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
async fn node_demo_compatibility_routes_write_single_rows() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("frank").await;
    let id = Uuid::new_v4().to_string();
    for (method, body) in [
        (
            reqwest::Method::PUT,
            json!({"table": "lists", "data": {"id": id, "name": "a"}}),
        ),
        (
            reqwest::Method::PATCH,
            json!({"table": "lists", "data": {"id": id, "name": "b"}}),
        ),
    ] {
        let response = app
            .client
            .request(method, app.url("/api/data"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let name: String = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    assert_eq!(name, "b");
    let response = app
        .client
        .delete(app.url("/api/data"))
        .bearer_auth(&token)
        .json(&json!({"table": "lists", "data": {"id": id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn write_checkpoints_increase_per_user_and_client() {
    let app = spawn_fixture_app().await;
    let users = [
        ("gina", app.token_for("gina").await),
        ("hal", app.token_for("hal").await),
    ];
    // Interleaved: each (user, client) counts its own checkpoints only.
    for round in 1..=3 {
        for (user, token) in &users {
            for client in ["tablet", "phone"] {
                let response = app
                    .client
                    .put(app.url("/api/data/checkpoint"))
                    .bearer_auth(token)
                    .json(&json!({"client_id": client}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["checkpoint"], round.to_string(), "{user}/{client}");
            }
        }
    }
    let missing = app
        .client
        .put(app.url("/api/data/checkpoint"))
        .bearer_auth(&users[0].1)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

/// Runs the `uplink` CLI against the test database with the fixture tables allowed.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let config = std::env::temp_dir().join(format!("uplink-cli-{}.yaml", Uuid::new_v4().simple()));
    std::fs::write(
        &config,
        "write:\n  tables:\n    lists: { columns: [name] }\n    todos: { columns: [description, list_id, completed] }\n",
    )
    .unwrap();
    uplink_command()
        .env("DATABASE_URL", &app.db_url)
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_dead_letter_replays_once_after_the_cause_is_fixed() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("hank").await;
    let list = Uuid::new_v4().to_string();
    let todo = Uuid::new_v4().to_string();
    let (_, report) = app
        .post_batch(&token, &json!({"batch": [
            {"op_id": 1, "op": "PUT", "type": "todos", "id": todo, "tx_id": 1, "data": {"list_id": list, "description": "later"}}
        ]}))
        .await;
    assert_eq!(report["rejected"], 1, "{report}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM uplink.dead_letters")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    let listed = cli(&app, &["dead-letters", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("foreign_key_violation"));

    // Still failing: the outcome says so and nothing changes.
    let again = cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("foreign_key_violation"));
    // Fix the cause, then replay.
    sqlx::query("INSERT INTO lists (id, name) VALUES ($1::uuid, 'restored')")
        .bind(&list)
        .execute(&app.db_pool)
        .await
        .unwrap();
    let replayed = cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 1);
    let twice = cli(&app, &["dead-letters", "replay", &id.to_string()]);
    assert!(
        !twice.status.success(),
        "a replayed dead letter is not applied twice"
    );
    assert!(String::from_utf8_lossy(&twice.stdout).contains("already_replayed"));

    let discarded = cli(&app, &["dead-letters", "discard", &id.to_string()]);
    assert!(discarded.status.success());
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        0
    );
}

#[tokio::test]
async fn schema_prints_an_allow_list_for_the_live_database() {
    let app = spawn_fixture_app().await;
    let output = cli(&app, &["schema"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "write:",
        "  tables:",
        "    items:",
        "        - tags  # text[]",
        "        - status  # item_status",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert!(
        !yaml.contains("- id "),
        "the row id is not a client column:\n{yaml}"
    );
    assert!(
        !yaml.contains("client_progress:\n      columns"),
        "uplink's own tables have no `id` key"
    );
}

#[tokio::test]
async fn a_deferred_constraint_rejects_its_own_client_transaction() {
    let app = TestApp::builder()
        .schema(
            "CREATE TABLE parents (id uuid PRIMARY KEY, name text);
             CREATE TABLE children (id uuid PRIMARY KEY,
                 parent_id uuid REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .config(|s| {
            s.write.tables =
                tables_from_yaml("write:\n  tables:\n    parents: {}\n    children: {}\n")
        })
        .spawn()
        .await;
    let token = app.token_for("dora").await;
    let parent = Uuid::new_v4().to_string();
    let body = json!({"batch": [
        {"op_id": 1, "op": "PUT", "type": "children", "id": Uuid::new_v4().to_string(), "tx_id": 1,
         "data": {"parent_id": Uuid::new_v4().to_string()}},
        {"op_id": 2, "op": "PUT", "type": "parents", "id": parent, "tx_id": 2, "data": {"name": "kept"}},
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["results"][0]["code"], "foreign_key_violation");
    assert_eq!(app.count("SELECT count(*) FROM parents").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM children").await, 0);
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

/// The (op_id, status, code) of each entry the report lists.
fn listed(report: &Value) -> Vec<(i64, String, String)> {
    report["results"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            (
                r["op_id"].as_i64().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn list_names(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM lists ORDER BY name")
        .fetch_all(&app.db_pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn op_ids_that_are_not_positive_are_rejected_not_dropped() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let body = json!({"client_id": "new-device", "batch": [
        put_list(0, 1, &Uuid::new_v4().to_string(), "zero"),
        put_list(-5, 2, &Uuid::new_v4().to_string(), "negative"),
        put_list(1, 3, &Uuid::new_v4().to_string(), "first"),
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["applied"],
            &report["duplicates"],
            &report["rejected"]
        ),
        (&json!(1), &json!(0), &json!(2)),
        "{report}"
    );
    let rejected = |op_id| (op_id, "rejected".to_owned(), "invalid_op_id".to_owned());
    assert_eq!(listed(&report), [rejected(0), rejected(-5)], "{report}");
    assert_eq!(list_names(&app).await, ["first"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters WHERE code = 'invalid_op_id'")
            .await,
        2
    );
}

#[tokio::test]
async fn an_op_id_not_above_the_previous_one_rejects_its_transaction_and_a_replay_is_duplicate() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let id = || Uuid::new_v4().to_string();
    let body = json!({"client_id": "device-1", "batch": [
        put_list(5, 1, &id(), "a"),
        // A lower op_id after a higher one: its whole client transaction is rejected.
        put_list(3, 2, &id(), "b"),
        put_list(6, 2, &id(), "c"),
        put_list(7, 3, &id(), "d"),
        // An equal one is not an increase either.
        put_list(7, 4, &id(), "e"),
    ]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["applied"],
            &report["duplicates"],
            &report["rejected"]
        ),
        (&json!(2), &json!(0), &json!(3)),
        "{report}"
    );
    let entry = |op_id, code: &str| (op_id, "rejected".to_owned(), code.to_owned());
    assert_eq!(
        listed(&report),
        [
            entry(3, "op_id_not_increasing"),
            entry(6, "transaction_rejected"),
            entry(7, "op_id_not_increasing"),
        ],
        "{report}"
    );
    assert_eq!(list_names(&app).await, ["a", "d"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters WHERE code = 'op_id_not_increasing'")
            .await,
        2
    );

    // The same request again is a genuine replay: every entry is a duplicate.
    let (status, replay) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(
        (
            &replay["applied"],
            &replay["duplicates"],
            &replay["rejected"]
        ),
        (&json!(0), &json!(5), &json!(0)),
        "{replay}"
    );
    assert_eq!(list_names(&app).await, ["a", "d"]);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        2
    );
}
