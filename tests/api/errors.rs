//! Every error, ours or the framework's, has the `{"error": {"code", "message"}}` shape.

use crate::support::app::spawn_app;
use crate::support::responses::error_code;

#[tokio::test]
async fn unknown_route_is_404_with_the_json_shape() {
    let app = spawn_app().await;
    let response = app.get("/no/such/route").await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn wrong_method_on_a_known_path_gets_the_json_shape() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    error_code(response).await;
}
