//! The admin API over real HTTP: the key check and dead letters (list, show,
//! replay, discard), against a real database.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::{ADMIN_KEY, TestApp, spawn_app, with_admin_key};
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::{
    dead_letter_a_todo, fixture_schema, fixture_write_settings, spawn_admin_app,
    spawn_dead_letter_app,
};
use crate::support::process::uplink_command;
use crate::support::responses::error_code;

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

async fn an_operator_lists_shows_replays_and_discards_dead_letters<P: Backend>() {
    let app = spawn_dead_letter_app::<P>().await;
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
    app.db_pool
        .execute(&format!(
            "INSERT INTO lists (id, name) VALUES ('{list}', 'groceries')"
        ))
        .await;
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
        app.number(&format!(
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
        app.number("SELECT count(*) FROM uplink.dead_letters").await,
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

async fn a_replay_that_still_fails_is_reported_and_kept<P: Backend>() {
    let app = spawn_dead_letter_app::<P>().await;
    dead_letter_a_todo(&app, &Uuid::new_v4().to_string()).await;
    let id = app.number("SELECT id FROM uplink.dead_letters").await;

    let replay = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/dead-letters/{id}/replay"),
        )
        .await;

    assert_eq!(replay.status(), 200);
    let outcome: Value = replay.json().await.unwrap();
    assert_eq!(outcome["outcome"], "rejected", "{outcome}");
    assert_eq!(app.number("SELECT count(*) FROM todos").await, 0);
    let kept: Value = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["dead_letters"][0]["id"], id);
    assert_eq!(
        kept["dead_letters"][0]["replay_outcome"],
        "rejected again: foreign_key_violation"
    );
}

async fn bad_admin_queries_and_ids_get_400_not_500<P: Backend>() {
    let app = spawn_dead_letter_app::<P>().await;
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

/// `uplink dead-letters` on the database the server writes to: list, show,
/// replay once the cause is fixed, discard.
async fn the_dead_letter_commands_list_show_replay_and_discard<P: Backend>() {
    let app = spawn_dead_letter_app::<P>().await;
    let list = Uuid::new_v4().to_string();
    let todo = dead_letter_a_todo(&app, &list).await;
    let id = app.number("SELECT id FROM uplink.dead_letters").await;
    // The server's allow-list (a replay writes through it); attachments
    // off, as MySQL requires until their records are kept there.
    let config =
        std::env::temp_dir().join(format!("uplink-admin-{}.yaml", Uuid::new_v4().simple()));
    std::fs::write(
        &config,
        "attachments: { enabled: false }\n\
         write: { tables: { lists: { columns: [name] }, todos: { columns: [description, list_id] } } }\n",
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let output = uplink_command()
            .env("DATABASE_URL", &app.db_url)
            .arg("--config")
            .arg(&config)
            .arg("dead-letters")
            .args(&args)
            .output()
            .expect("run uplink dead-letters");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (ok, listed, stderr) = run(vec!["list".into()]);
    assert!(ok, "{stderr}");
    let row = listed
        .lines()
        .find(|l| l.trim_start().starts_with(&id.to_string()))
        .unwrap_or_else(|| panic!("letter {id} listed: {listed}"));
    assert!(row.contains("alice") && row.contains("phone"), "{row}");
    assert!(row.contains("foreign_key_violation"), "{row}");
    let (ok, shown, stderr) = run(vec!["show".into(), id.to_string()]);
    assert!(ok, "{stderr}");
    let shown: Value = serde_json::from_str(&shown).expect("show prints JSON");
    assert_eq!(shown["entries"][0]["id"], todo.as_str());
    assert_eq!(shown["entries"][0]["data"]["description"], "milk");

    let (ok, _, _) = run(vec!["replay".into(), id.to_string()]);
    assert!(!ok, "the list is still missing: the replay is rejected");
    app.db_pool
        .execute(&format!(
            "INSERT INTO lists (id, name) VALUES ('{list}', 'groceries')"
        ))
        .await;
    let (ok, replayed, stderr) = run(vec!["replay".into(), id.to_string()]);
    assert!(ok, "{stderr}");
    assert!(replayed.contains("\"applied\""), "{replayed}");
    assert_eq!(
        app.number(&format!("SELECT count(*) FROM todos WHERE id = '{todo}'"))
            .await,
        1
    );
    let (ok, _, stderr) = run(vec!["discard".into(), id.to_string()]);
    assert!(ok, "{stderr}");
    assert_eq!(
        app.number("SELECT count(*) FROM uplink.dead_letters").await,
        0
    );
    let (ok, _, stderr) = run(vec!["show".into(), id.to_string()]);
    assert!(!ok, "a discarded letter is gone");
    assert!(stderr.contains(&format!("no dead letter {id}")), "{stderr}");
}

on_both_databases!(
    an_operator_lists_shows_replays_and_discards_dead_letters,
    a_replay_that_still_fails_is_reported_and_kept,
    bad_admin_queries_and_ids_get_400_not_500,
    the_dead_letter_commands_list_show_replay_and_discard,
);
