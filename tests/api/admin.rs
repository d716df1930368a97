//! The admin API over real HTTP: the key check, dead letters (list, show,
//! replay, discard) and schema reload, against a real database.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::{ADMIN_KEY, TestApp, spawn_app, with_admin_key};
use crate::support::fixtures::{fixture_schema, fixture_write_settings, tables_from_yaml};
use crate::support::process::uplink_command;
use crate::support::responses::error_code;

async fn spawn_admin_app() -> TestApp {
    TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(with_admin_key)
        .spawn()
        .await
}

/// A todo whose list does not exist: its client transaction is rejected and dead-lettered.
async fn dead_letter_a_todo(app: &TestApp, list_id: &str) -> String {
    dead_letter_from(app, "phone", list_id).await
}

/// `dead_letter_a_todo` from another device (each device's first op_id is 1).
async fn dead_letter_from(app: &TestApp, client_id: &str, list_id: &str) -> String {
    let token = app.token_for("alice").await;
    let todo = Uuid::new_v4().to_string();
    let body = json!({"client_id": client_id, "batch": [
        {"op_id": 1, "op": "PUT", "type": "todos", "id": todo, "tx_id": 1,
         "data": {"description": "milk", "list_id": list_id}},
    ]});
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);
    assert_eq!(report["rejected"], 1, "{report}");
    todo
}

#[tokio::test]
async fn the_admin_api_does_not_exist_without_a_configured_key() {
    let app = spawn_app().await;

    let response = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await;

    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn a_missing_or_wrong_admin_key_gets_401() {
    let app = spawn_admin_app().await;
    let user_token = app.token_for("alice").await;
    let cases: [(&str, Option<(&str, String)>); 4] = [
        ("no key", None),
        ("wrong key", Some(("X-Admin-Key", "not-the-key".to_owned()))),
        (
            "a user's token is not the admin key",
            Some(("Authorization", format!("Bearer {user_token}"))),
        ),
        ("empty key", Some(("X-Admin-Key", String::new()))),
    ];

    for (case, header) in cases {
        let mut request = app.client.post(app.url("/api/admin/schema/reload"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{case}"
        );
    }
    let bearer = app
        .client
        .post(app.url("/api/admin/schema/reload"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        200,
        "Authorization: Bearer <admin key> works"
    );
}

#[tokio::test]
async fn an_operator_lists_shows_replays_and_discards_dead_letters() {
    let app = spawn_admin_app().await;
    let list = Uuid::new_v4().to_string();
    let todo = dead_letter_a_todo(&app, &list).await;

    // List
    let response = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await;
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    let id = letters[0]["id"].as_i64().unwrap();
    assert_eq!(letters[0]["user_id"], "alice");
    assert_eq!(letters[0]["code"], "foreign_key_violation");

    // Show
    let response = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/admin/dead-letters/{id}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let shown: Value = response.json().await.unwrap();
    assert_eq!(shown["entries"][0]["id"], todo.as_str());
    assert_eq!(shown["entries"][0]["data"]["description"], "milk");

    // Replay once the list exists: applied, and only once.
    sqlx::query("INSERT INTO lists (id, name) VALUES ($1::uuid, 'groceries')")
        .bind(&list)
        .execute(&app.db_pool)
        .await
        .unwrap();
    let replay = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/dead-letters/{id}/replay"),
        )
        .await;
    assert_eq!(replay.status(), 200);
    let outcome: Value = replay.json().await.unwrap();
    assert_eq!(outcome["outcome"], "applied", "{outcome}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM todos WHERE id = '{todo}' AND description = 'milk'"
        ))
        .await,
        1
    );
    let again = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/dead-letters/{id}/replay"),
        )
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "already_replayed");

    // Replayed ones are hidden unless asked for.
    let pending: Value = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["dead_letters"], json!([]));
    let all: Value = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters?all=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["dead_letters"][0]["replay_outcome"], "applied");

    // Discard
    let discarded = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/admin/dead-letters/{id}"),
        )
        .await;
    assert_eq!(discarded.status(), 204);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        0
    );
    let gone = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/admin/dead-letters/{id}"),
        )
        .await;
    assert_eq!(gone.status(), 404);
    let discard_again = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/admin/dead-letters/{id}"),
        )
        .await;
    assert_eq!(discard_again.status(), 404);
}

#[tokio::test]
async fn a_replay_that_still_fails_is_reported_and_kept() {
    let app = spawn_admin_app().await;
    dead_letter_a_todo(&app, &Uuid::new_v4().to_string()).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM uplink.dead_letters")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();

    let replay = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/dead-letters/{id}/replay"),
        )
        .await;

    assert_eq!(replay.status(), 200);
    let outcome: Value = replay.json().await.unwrap();
    assert_eq!(outcome["outcome"], "rejected", "{outcome}");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 0);
    let kept: Value = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["dead_letters"][0]["id"], id);
}

#[tokio::test]
async fn bad_admin_queries_and_ids_get_400_not_500() {
    let app = spawn_admin_app().await;
    let cases = [
        ("/api/admin/dead-letters?limit=0", "limit below 1"),
        ("/api/admin/dead-letters?limit=100000", "limit above 1000"),
        ("/api/admin/dead-letters?limit=abc", "limit not a number"),
        ("/api/admin/dead-letters/abc", "id not a number"),
    ];
    for (path, case) in cases {
        let response = app.admin(reqwest::Method::GET, path).await;
        assert_eq!(response.status(), 400, "{case}");
        error_code(response).await;
    }
    let missing = app
        .admin(reqwest::Method::POST, "/api/admin/dead-letters/999/replay")
        .await;
    assert_eq!(missing.status(), 404);
}

const NOTES: &str = "CREATE TABLE notes (id uuid PRIMARY KEY, body text)";

fn notes_allowed(settings: &mut uplink::settings::Settings) {
    settings.write.tables = BTreeMap::from([("notes".to_owned(), Default::default())]);
}

#[tokio::test]
async fn reloading_the_schema_makes_a_new_column_writable() {
    let app = TestApp::builder()
        .schema(NOTES)
        .config(notes_allowed)
        .config(with_admin_key)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let with_color = |id: Uuid| json!({"batch": [{"op": "PUT", "type": "notes", "id": id.to_string(), "data": {"body": "b", "color": "red"}}]});
    sqlx::query("ALTER TABLE notes ADD COLUMN color text")
        .execute(&app.db_pool)
        .await
        .unwrap();
    let (_, before) = app.post_batch(&token, &with_color(Uuid::new_v4())).await;
    assert_eq!(before["rejected"], 1, "{before}");

    let reload = app
        .admin(reqwest::Method::POST, "/api/admin/schema/reload")
        .await;

    assert_eq!(reload.status(), 200);
    assert_eq!(
        reload.json::<Value>().await.unwrap(),
        json!({"reloaded": true})
    );
    let (_, after) = app.post_batch(&token, &with_color(Uuid::new_v4())).await;
    assert_eq!(after["applied"], 1, "{after}");
    assert_eq!(
        app.count("SELECT count(*) FROM notes WHERE color = 'red'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_schema_that_no_longer_fits_the_config_is_refused_with_the_reason() {
    let app = TestApp::builder()
        .schema(NOTES)
        .config(|s| {
            s.write.tables = BTreeMap::from([(
                "notes".to_owned(),
                uplink::upload::TableSettings {
                    columns: Some(vec!["body".to_owned()]),
                    ..Default::default()
                },
            )]);
        })
        .config(with_admin_key)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    sqlx::query("ALTER TABLE notes DROP COLUMN body")
        .execute(&app.db_pool)
        .await
        .unwrap();

    let reload = app
        .admin(reqwest::Method::POST, "/api/admin/schema/reload")
        .await;

    assert_eq!(reload.status(), 409);
    let body: Value = reload.json().await.unwrap();
    assert_eq!(body["error"]["code"], "schema_mismatch");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("body"),
        "{body}"
    );
    // The previous schema stays in use: a write of the column still reaches
    // the database, which refuses the missing column in the report.
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"batch": [{"op": "PUT", "type": "notes", "id": Uuid::new_v4().to_string(), "data": {"body": "hello"}}]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let result = &report["results"][0];
    assert_eq!(result["code"], "schema_mismatch", "{report}");
    assert!(
        result["message"]
            .as_str()
            .unwrap_or_default()
            .contains("body"),
        "{report}"
    );
    assert_eq!(app.count("SELECT count(*) FROM notes").await, 0);
}

const DOCUMENTS: &str =
    "CREATE TABLE documents (id uuid PRIMARY KEY, content text, version bigint NOT NULL DEFAULT 1)";

/// Two edits of one document that both saw version 1: the second is recorded as a conflict.
async fn record_a_conflict(app: &TestApp, user: &str) -> String {
    let token = app.token_for(user).await;
    let doc = Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO documents (id, content) VALUES ($1::uuid, 'v1')")
        .bind(&doc)
        .execute(&app.db_pool)
        .await
        .unwrap();
    let edit = |op_id: i64, content: &str| json!({"op_id": op_id, "op": "PATCH", "type": "documents", "id": doc, "tx_id": op_id, "data": {"content": content, "version": 1}});
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"client_id": format!("{user}-phone"), "batch": [edit(1, "first"), edit(2, "second")]}),
        )
        .await;
    assert_eq!(report["conflicts"], 1, "{report}");
    doc
}

#[tokio::test]
async fn an_operator_lists_and_resolves_write_conflicts() {
    let app = TestApp::builder()
        .schema(DOCUMENTS)
        .config(|s| {
            s.write.tables = tables_from_yaml(
                "write:\n  tables:\n    documents: { conflict: { strategy: version, column: version, on_conflict: record } }\n",
            )
        })
        .config(with_admin_key)
        .spawn()
        .await;
    let alices = record_a_conflict(&app, "alice").await;
    record_a_conflict(&app, "bob").await;

    let open: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["conflicts"].as_array().unwrap().len(), 2, "{open}");
    let only_alice: Value = app
        .admin(
            reqwest::Method::GET,
            "/api/admin/conflicts?user_id=alice&table=documents",
        )
        .await
        .json()
        .await
        .unwrap();
    let conflict = &only_alice["conflicts"][0];
    assert_eq!(only_alice["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(conflict["row_id"], alices.as_str());
    assert_eq!(conflict["table_name"], "documents");
    assert_eq!(conflict["client_data"]["content"], "second");
    assert_eq!(conflict["resolved"], false);
    let id = conflict["id"].as_str().unwrap().to_owned();

    let resolved = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{id}/resolve"),
        )
        .await;

    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["resolved"], true);
    assert!(resolved["resolved_at"].is_string());
    let in_db: bool =
        sqlx::query_scalar("SELECT resolved FROM uplink.write_conflicts WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
    assert!(in_db);
    let still_open: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still_open["conflicts"].as_array().unwrap().len(), 1);
    let all: Value = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts?resolved=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["conflicts"].as_array().unwrap().len(), 2);
    let again = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{id}/resolve"),
        )
        .await;
    assert_eq!(again.status(), 200, "resolving is idempotent");
    let unknown = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/conflicts/{}/resolve", Uuid::new_v4()),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let not_uuid = app
        .admin(reqwest::Method::POST, "/api/admin/conflicts/42/resolve")
        .await;
    assert_eq!(not_uuid.status(), 400);
    let bad_filter = app
        .admin(reqwest::Method::GET, "/api/admin/conflicts?resolved=maybe")
        .await;
    assert_eq!(bad_filter.status(), 400);
}

/// A batch whose one entry's `description` nests `depth` arrays, as text:
/// deeper than serde_json's default recursion limit (128) when `depth` is 200.
fn deeply_nested_todo(depth: usize) -> String {
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    format!(
        r#"{{"client_id": "phone", "batch": [{{"op_id": 1, "op": "PUT", "type": "todos",
            "id": "{}", "tx_id": 1, "data": {{"description": {nested}, "list_id": "{}"}}}}]}}"#,
        Uuid::new_v4(),
        Uuid::new_v4()
    )
}

#[tokio::test]
async fn a_deeply_nested_dead_letter_is_listed_shown_and_replayed_by_api_and_cli() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(with_admin_key)
        .config(|s| s.limits.max_json_depth = 300)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let body = deeply_nested_todo(200);
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        1
    );
    let depth: i32 = sqlx::query_scalar(
        "SELECT length(entries #>> '{0,data,description}') / 2 FROM uplink.dead_letters",
    )
    .fetch_one(&app.db_pool)
    .await
    .unwrap();
    assert_eq!(depth, 200, "the entry is stored as sent");

    let listed = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await;
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(
        text.contains(&format!("{}{}", "[".repeat(200), "]".repeat(200))),
        "the listing carries the entry verbatim: {text}"
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM uplink.dead_letters")
        .fetch_one(&app.db_pool)
        .await
        .unwrap();
    let shown = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/admin/dead-letters/{id}"),
        )
        .await;
    assert_eq!(shown.status(), 200);
    let replay = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/dead-letters/{id}/replay"),
        )
        .await;
    assert_eq!(replay.status(), 200, "replay reads the entries back too");

    for args in [vec!["list"], vec!["show", &id.to_string()]] {
        let output = uplink_command()
            .env("DATABASE_URL", &app.db_url)
            .arg("dead-letters")
            .args(&args)
            .output()
            .expect("run uplink dead-letters");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "uplink dead-letters {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("alice"), "{args:?}: {stdout}");
    }
}

fn two_dead_letters_per_user(settings: &mut uplink::settings::Settings) {
    settings.write.dead_letters.max_per_user = 2;
}

#[tokio::test]
async fn a_user_at_the_dead_letter_cap_gets_429_and_nothing_is_applied_or_stored() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(with_admin_key)
        .config(two_dead_letters_per_user)
        .spawn()
        .await;
    dead_letter_from(&app, "phone", &Uuid::new_v4().to_string()).await;
    dead_letter_from(&app, "laptop", &Uuid::new_v4().to_string()).await;
    let token = app.token_for("alice").await;
    let list = Uuid::new_v4().to_string();
    // One good transaction and one the database refuses.
    let body = json!({"client_id": "tablet", "batch": [
        {"op_id": 1, "op": "PUT", "type": "lists", "id": list, "tx_id": 1, "data": {"name": "kept"}},
        {"op_id": 2, "op": "PUT", "type": "todos", "id": Uuid::new_v4().to_string(), "tx_id": 2,
         "data": {"description": "x", "list_id": Uuid::new_v4().to_string()}},
    ]});

    let response = app.send_batch(&token, &body).await;

    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "dead_letter_limit");
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        2,
        "nothing beyond the cap is stored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lists").await,
        0,
        "the batch was refused whole: the device keeps it"
    );
    let other_user = app.token_for("bob").await;
    let (status, report) = app
        .post_batch(
            &other_user,
            &json!({"batch": [{"op": "PUT", "type": "todos", "id": Uuid::new_v4().to_string(),
                "data": {"list_id": Uuid::new_v4().to_string()}}]}),
        )
        .await;
    assert_eq!(
        (status, &report["rejected"]),
        (200, &json!(1)),
        "the cap is per user"
    );

    // Once an operator discards one, the same batch goes through.
    let id: i64 =
        sqlx::query_scalar("SELECT min(id) FROM uplink.dead_letters WHERE user_id = 'alice'")
            .fetch_one(&app.db_pool)
            .await
            .unwrap();
    app.admin(
        reqwest::Method::DELETE,
        &format!("/api/admin/dead-letters/{id}"),
    )
    .await;
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 1);
}

#[tokio::test]
async fn dead_letters_past_their_retention_are_deleted() {
    let app = spawn_admin_app().await;
    dead_letter_from(&app, "phone", &Uuid::new_v4().to_string()).await;
    dead_letter_from(&app, "laptop", &Uuid::new_v4().to_string()).await;
    sqlx::query(
        "UPDATE uplink.dead_letters SET created_at = now() - interval '31 days' \
         WHERE id = (SELECT min(id) FROM uplink.dead_letters)",
    )
    .execute(&app.db_pool)
    .await
    .unwrap();
    let retention = app.settings.write.dead_letters.retention;
    assert_eq!(retention, std::time::Duration::from_secs(30 * 24 * 3600));

    let removed = uplink::store::dead_letters::delete_expired(&app.db_pool, &app.own(), retention)
        .await
        .unwrap();

    assert_eq!(removed, 1);
    let left: Vec<i64> = sqlx::query_scalar(
        "SELECT (now() - created_at < interval '1 day')::int FROM uplink.dead_letters",
    )
    .fetch_all(&app.db_pool)
    .await
    .unwrap()
    .into_iter()
    .map(|fresh: i32| i64::from(fresh))
    .collect();
    assert_eq!(left, vec![1], "only the recent dead letter is kept");
}
