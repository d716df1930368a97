//! Error bodies speak to the client: no framework internals (`Debug` output
//! of I/O errors, "Path deserialize error", Rust type names).

use crate::support::app::{TestApp, with_admin_key};
use crate::support::fixtures::spawn_fixture_app;

/// Fragments of internal error text that must never reach a client.
const INTERNALS: &[&str] = &[
    "Custom {",
    "Some(",
    "kind:",
    "deserialize error",
    "i64",
    "Error that occur",
];

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error code: {body}"))
        .to_owned();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("an error message: {body}"))
        .to_owned();
    assert!(!message.trim().is_empty(), "{code}: an empty message");
    for internal in INTERNALS {
        assert!(!message.contains(internal), "{code}: {message}");
    }
    (status, code, message)
}

#[tokio::test]
async fn path_and_query_errors_are_plain_messages() {
    let app = TestApp::builder().config(with_admin_key).spawn().await;
    let get = |path: &'static str| app.admin(reqwest::Method::GET, path);

    let (status, code, message) = error_of(get("/api/admin/dead-letters/abc").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_path"), "{message}");

    let (status, code, message) = error_of(get("/api/admin/dead-letters?limit=many").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"), "{message}");
    assert!(message.contains("query string"), "{message}");
}

#[tokio::test]
async fn an_undecodable_body_gets_a_plain_message() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let response = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body("this is not gzip")
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_gzip"), "{message}");
    assert!(message.contains("gzip"), "{message}");
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        0
    );
}

#[tokio::test]
async fn body_shape_errors_name_json_types_not_rust_ones() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let cases = [
        (
            "/api/data",
            r#"{"batch":[{"op_id":"x","op":"PUT","type":"lists","id":"a"}]}"#,
            "expected an integer",
        ),
        (
            "/api/attachments/upload-url",
            r#"{"filename":"a.jpg","size":"x"}"#,
            "expected an integer",
        ),
        ("/api/attachments/upload-url", "[]", "expected an object"),
    ];
    for (path, body, plain) in cases {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, message) = error_of(response).await;
        assert_eq!(status, 400, "{body}: {message}");
        assert!(message.contains(plain), "{body}: {message}");
        for rust in ["u64", "struct", "UploadUrlBody"] {
            assert!(!message.contains(rust), "{body}: {message}");
        }
    }
}
