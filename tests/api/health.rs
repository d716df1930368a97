use crate::support::app::{TestApp, spawn_app};
use crate::support::responses::error_code;
use uplink::config::Secret;

#[tokio::test]
async fn live_answers_200() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn ready_answers_503_when_the_database_is_unreachable() {
    // Arrange: a port nothing listens on.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = TestApp::builder()
        .config(move |settings| {
            settings.database.url = Some(Secret::new(format!(
                "postgres://postgres@127.0.0.1:{closed_port}/postgres"
            )));
            settings.database.migrate_on_start = false;
            settings.database.acquire_timeout = std::time::Duration::from_millis(500);
        })
        .spawn()
        .await;

    // Act
    let response = app.get("/health/ready").await;

    // Assert
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health/live").await.status(), 200);
}
