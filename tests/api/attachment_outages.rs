//! Readiness reports the storage, and an unreachable store or database
//! answers 503 and records nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, on_both_backends, request_upload, state_of,
};
use crate::support::backend::on_both_databases;
use crate::support::database::Outage;
use crate::support::responses::error_code;

on_both_backends!(readiness_reports_storage);
on_both_databases!(unreachable_s3_is_not_ready_and_complete_answers_503);

async fn readiness_reports_storage<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let ready = t.app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["storage"], "ok", "{body}");
}

async fn unreachable_s3_is_not_ready_and_complete_answers_503<P: Database>() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let t = AttachmentApp::<P>::spawn_with(Backend::S3, move |s| {
        s.attachments.s3.endpoint = Some(format!("http://127.0.0.1:{closed_port}"));
    })
    .await;
    let ready = t.app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(ready).await, "unavailable");

    // Signing needs no network; the storage round trip of `complete` does.
    request_upload(&t, ALICE, json!({"id": "down", "filename": "a.png"})).await;
    let complete = t.complete(ALICE, "down").await;
    assert_eq!(complete.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(complete.headers().contains_key("retry-after"));
    assert_eq!(state_of(&t, "down").await.as_deref(), Some("pending"));
}

/// On Postgres, whose server the outage helper stops.
#[tokio::test]
async fn database_down_answers_503_and_records_nothing() {
    let t = AttachmentApp::<sqlx::PgPool>::spawn(Backend::Local).await;
    let token = t.token(ALICE).await;
    let outage = Outage::begin(&t.app.db_name).await;

    let response = t
        .app
        .client
        .post(t.app.url("/api/attachments/upload-url"))
        .bearer_auth(&token)
        .json(&json!({"id": "offline", "filename": "a.png"}))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");
    outage.end().await;
    let check = sqlx::PgPool::connect(&t.app.db_url)
        .await
        .expect("reconnect");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM uplink.attachments")
        .fetch_one(&check)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    // The retry succeeds once the database is back.
    assert_eq!(
        t.upload_url(ALICE, json!({"id": "offline", "filename": "a.png"}))
            .await
            .status(),
        StatusCode::OK
    );
}
