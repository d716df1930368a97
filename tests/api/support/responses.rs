//! Assertions on the API's answers shared by the test files.

/// Asserts the JSON error shape and returns the code.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_owned();
    assert!(
        body["error"]["message"].is_string(),
        "no error.message in {body}"
    );
    code
}
