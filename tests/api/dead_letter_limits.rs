//! Dead letters are bounded per user in bytes as well as in rows, on both
//! databases, and the admin listing pages by size: a few large letters no
//! longer make uplink build (and hold) a response of their full size.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::support::app::{TestApp, with_admin_key};
use crate::support::fixtures::tables_from_yaml;
use crate::support::mysql::own_tables_in;
use crate::support::responses::error_code;

const TABLES: &str = "write:\n  tables:\n    items: {}\n";
/// Each rejected transaction stores a note of this many bytes.
const NOTE: usize = 40_000;
/// Two such dead letters fit, a third does not.
const CAP: u64 = 100_000;

/// One transaction that uplink rejects (text in an integer column) carrying
/// `note_bytes` of text: stored whole as a dead letter.
fn rejected_batch(note_bytes: usize) -> Value {
    json!({"batch": [{"op": "PUT", "type": "items", "id": Uuid::new_v4().to_string(),
        "data": {"qty": "many", "note": "n".repeat(note_bytes)}}]})
}

/// Sends rejected transactions until one is refused; the statuses.
async fn fill<P>(app: &TestApp<P>, note_bytes: usize, sends: usize) -> Vec<u16> {
    let token = app.token_for("mallory").await;
    let mut statuses = Vec::new();
    for _ in 0..sends {
        let response = app.send_batch(&token, &rejected_batch(note_bytes)).await;
        let status = response.status().as_u16();
        if status != 200 {
            assert_eq!(error_code(response).await, "dead_letter_limit");
        }
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn the_byte_cap_holds_on_postgres() {
    let app = TestApp::builder()
        .schema("CREATE TABLE items (id uuid PRIMARY KEY, qty int, note text)")
        .config(|s| {
            s.write.tables = tables_from_yaml(TABLES);
            s.write.dead_letters.max_bytes_per_user = CAP;
        })
        .spawn()
        .await;

    let statuses = fill(&app, NOTE, 4).await;

    assert_eq!(
        statuses,
        vec![200, 200, 429, 429],
        "the third is over the cap"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        2
    );
    let stored = app
        .count("SELECT sum(octet_length(entries::text))::bigint FROM uplink.dead_letters")
        .await;
    assert!(stored <= CAP as i64, "{stored} bytes stored");
    // Another user is not affected by mallory's letters.
    let token = app.token_for("alice").await;
    let (status, _) = app.post_batch(&token, &rejected_batch(NOTE)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_byte_cap_holds_on_mysql() {
    let app: TestApp<MySqlPool> = TestApp::builder()
        .schema("CREATE TABLE items (id CHAR(36) PRIMARY KEY, qty INT, note LONGTEXT)")
        .config(|s| {
            s.write.tables = tables_from_yaml(TABLES);
            s.write.dead_letters.max_bytes_per_user = CAP;
        })
        .spawn_mysql()
        .await;

    let statuses = fill(&app, NOTE, 4).await;

    assert_eq!(
        statuses,
        vec![200, 200, 429, 429],
        "the third is over the cap"
    );
    let sql = own_tables_in(
        &app.db_pool,
        "SELECT count(*), CAST(coalesce(sum(LENGTH(entries)), 0) AS SIGNED) FROM uplink.dead_letters",
    )
    .await;
    let (rows, bytes): (i64, i64) = sqlx::query_as(&sql).fetch_one(&app.db_pool).await.unwrap();
    assert_eq!(rows, 2);
    assert!(bytes <= CAP as i64, "{bytes} bytes stored");
}

#[tokio::test]
async fn one_letter_larger_than_the_cap_is_kept_when_none_is_pending() {
    let app = TestApp::builder()
        .schema("CREATE TABLE items (id uuid PRIMARY KEY, qty int, note text)")
        .config(|s| {
            s.write.tables = tables_from_yaml(TABLES);
            s.write.dead_letters.max_bytes_per_user = 1_000;
        })
        .spawn()
        .await;

    // Refusing it would leave the device retrying it forever.
    let statuses = fill(&app, NOTE, 2).await;

    assert_eq!(statuses, vec![200, 429]);
}

#[tokio::test]
async fn the_admin_list_pages_by_size_and_leaves_large_entries_to_show() {
    let app = TestApp::builder()
        .schema("CREATE TABLE items (id uuid PRIMARY KEY, qty int, note text)")
        .config(|s| {
            s.write.tables = tables_from_yaml(TABLES);
            with_admin_key(s);
        })
        .spawn()
        .await;
    // Twelve large letters (listed without their entries) and forty small
    // ones of 40 KB (listed with them: about 26 fit in a 1 MiB page).
    let large = fill(&app, 300_000, 12).await;
    let small = fill(&app, NOTE, 40).await;
    assert!(large.iter().chain(&small).all(|s| *s == 200));

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(id) => format!("/api/admin/dead-letters?limit=1000&before={id}"),
            None => "/api/admin/dead-letters?limit=1000".to_owned(),
        };
        let response = app.admin(reqwest::Method::GET, &path).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        pages.push(text.len());
        let page: Value = serde_json::from_str(&text).unwrap();
        for letter in page["dead_letters"].as_array().unwrap() {
            let size = letter["size_bytes"].as_i64().unwrap();
            let truncated = letter["entries_truncated"].as_bool().unwrap();
            assert_eq!(truncated, size > 64 * 1024, "{}", letter["id"]);
            assert_eq!(letter["entries"].is_null(), truncated);
            seen.push((letter["id"].as_i64().unwrap(), truncated));
        }
        match page["next_before"].as_i64() {
            Some(id) => before = Some(id),
            None => break,
        }
    }

    assert!(
        pages.iter().all(|bytes| *bytes < 1_200_000),
        "every page stays near 1 MiB: {pages:?}"
    );
    assert!(pages.len() >= 2, "{pages:?}");
    let ids: std::collections::BTreeSet<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 52, "every letter listed once");
    assert_eq!(seen.iter().filter(|(_, t)| *t).count(), 12);
    let (large_id, _) = seen.iter().find(|(_, t)| *t).unwrap();
    let shown: Value = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/admin/dead-letters/{large_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let note = shown["entries"][0]["data"]["note"].as_str().unwrap();
    assert_eq!(note.len(), 300_000, "the full letter, by id");
}
