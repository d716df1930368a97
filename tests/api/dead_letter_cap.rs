//! Dead letters are capped per user (429, nothing applied or stored) and
//! deleted past their retention.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::{TestApp, with_admin_key};
use crate::support::fixtures::{
    dead_letter_from, fixture_schema, fixture_write_settings, spawn_admin_app,
};
use crate::support::responses::error_code;

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
