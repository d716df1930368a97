//! User and client ids on the write path, on both databases: a client id
//! uplink cannot store is a 400 on every route that takes one, checkpoints
//! share the uploads' rate limit, and ids with whitespace at either end
//! (which a padding comparison would confuse) are refused.

use serde_json::{Value, json};
use sqlx::MySqlPool;

use crate::support::app::TestApp;
use crate::support::fixtures::spawn_fixture_app;
use crate::support::mysql::own_tables_in;
use crate::support::responses::error_code;

async fn put_checkpoint<P>(app: &TestApp<P>, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url("/api/data/checkpoint"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("checkpoint request")
}

async fn checkpoint_of<P>(app: &TestApp<P>, token: &str, client_id: &str) -> i64 {
    let response = put_checkpoint(app, token, &json!({ "client_id": client_id })).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["checkpoint"]
        .as_str()
        .expect("a checkpoint")
        .parse()
        .expect("a number")
}

/// Every route that takes a client id answers 400 `invalid_client_id` for
/// one with a NUL or another control character, and stores nothing.
async fn refuses_unstorable_client_ids<P>(app: &TestApp<P>) {
    let token = app.token_for("alice").await;
    for bad in ["pho\0ne", "tab\tbed", &"x".repeat(257)] {
        let checkpoint = put_checkpoint(app, &token, &json!({ "client_id": bad })).await;
        assert_eq!(checkpoint.status(), 400, "checkpoint {bad:?}");
        assert_eq!(error_code(checkpoint).await, "invalid_client_id");

        let batch = json!({"client_id": bad, "batch": [
            {"op_id": 1, "op": "PUT", "type": "lists", "id": "00000000-0000-4000-8000-000000000001",
             "data": {"name": "groceries"}},
        ]});
        let upload = app.send_batch(&token, &batch).await;
        assert_eq!(upload.status(), 400, "upload {bad:?}");
        assert_eq!(error_code(upload).await, "invalid_client_id");
    }
}

#[tokio::test]
async fn a_nul_in_a_client_id_is_a_400_on_postgres() {
    let app = spawn_fixture_app().await;
    refuses_unstorable_client_ids(&app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.checkpoints").await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

const MYSQL_LISTS: &str = "CREATE TABLE lists (id CHAR(36) PRIMARY KEY, name TEXT NOT NULL)";

async fn spawn_mysql() -> TestApp<MySqlPool> {
    TestApp::builder()
        .schema(MYSQL_LISTS)
        .config(|s| {
            s.write.tables =
                crate::support::fixtures::tables_from_yaml("write:\n  tables:\n    lists: {}\n")
        })
        .spawn_mysql()
        .await
}

async fn mysql_count(app: &TestApp<MySqlPool>, sql: &str) -> i64 {
    sqlx::query_scalar(&own_tables_in(&app.db_pool, sql).await)
        .fetch_one(&app.db_pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_nul_in_a_client_id_is_a_400_on_mysql() {
    let app = spawn_mysql().await;
    refuses_unstorable_client_ids(&app).await;
    assert_eq!(
        mysql_count(&app, "SELECT count(*) FROM uplink.checkpoints").await,
        0
    );
    assert_eq!(mysql_count(&app, "SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn checkpoints_share_the_uploads_per_user_rate_limit() {
    let app = TestApp::builder()
        .config(|s| {
            s.limits.upload_per_user.per_second = 0.001;
            s.limits.upload_per_user.burst = 2;
        })
        .spawn()
        .await;
    let token = app.token_for("alice").await;

    let first = checkpoint_of(&app, &token, "phone").await;
    let second = checkpoint_of(&app, &token, "phone").await;
    let third = put_checkpoint(&app, &token, &json!({"client_id": "phone"})).await;

    assert_eq!((first, second), (1, 2));
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(error_code(third).await, "rate_limited");
    assert_eq!(
        app.count("SELECT checkpoint FROM uplink.checkpoints").await,
        2,
        "the refused request did not advance the checkpoint"
    );
    let other_user = app.token_for("bob").await;
    assert_eq!(checkpoint_of(&app, &other_user, "phone").await, 1);
}

#[tokio::test]
async fn ids_with_whitespace_at_either_end_are_refused_on_mysql() {
    // A PAD SPACE comparison would take `x ` for `x`: such ids never reach
    // the database, and the bookkeeping tables compare ids byte for byte.
    let app = spawn_mysql().await;
    let padded = app
        .client
        .get(app.url("/api/auth/token?user_id=x%20"))
        .send()
        .await
        .unwrap();
    assert_eq!(padded.status(), 400);
    assert_eq!(error_code(padded).await, "invalid_user_id");

    let token = app.token_for("x").await;
    let put = |client_id: &str, id: &str| {
        json!({"client_id": client_id, "batch": [
            {"op_id": 1, "op": "PUT", "type": "lists", "id": id, "data": {"name": "n"}},
        ]})
    };
    let (status, first) = app
        .post_batch(&token, &put("c", "00000000-0000-4000-8000-000000000001"))
        .await;
    assert_eq!((status, &first["applied"]), (200, &json!(1)), "{first}");
    let response = app
        .send_batch(&token, &put("c ", "00000000-0000-4000-8000-000000000002"))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_client_id");

    assert_eq!(mysql_count(&app, "SELECT count(*) FROM lists").await, 1);
    assert_eq!(
        mysql_count(&app, "SELECT count(*) FROM uplink.client_progress").await,
        1
    );
}
