//! Credentials: the token endpoint, JWKS, the development key, and `AuthUser`.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::support::app::{TestApp, spawn_app};
use crate::support::responses::error_code;

async fn me(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/api/auth/me"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.expect("Failed to call /api/auth/me")
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("payload is base64url");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

#[tokio::test]
async fn dev_mode_issues_a_token_for_the_requested_user() {
    let app = spawn_app().await;

    let response = app.get("/api/auth/token?user_id=alice").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], "alice");
    assert_eq!(body["powersync_url"], app.settings.auth.powersync_url);
    let token = body["token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], app.settings.auth.issuer);
    assert_eq!(claims["aud"], "powersync");
    let ttl = app.settings.auth.token_ttl.as_secs() as i64;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        ttl
    );
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("expires_at is RFC 3339");
    assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
    assert!(
        claims.get("parameters").is_none(),
        "no parameters were asked for"
    );
}

#[tokio::test]
async fn post_with_a_body_sets_user_and_parameters_and_the_default_user_is_dev_user() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({"userId": "bob", "parameters": {"org": "acme", "level": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = claims_of(body["token"].as_str().unwrap());
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["parameters"], json!({"org": "acme", "level": 3}));

    let body: Value = app.get("/api/auth/token").await.json().await.unwrap();
    assert_eq!(body["user_id"], "dev-user");
}

#[tokio::test]
async fn bad_token_requests_are_400_with_the_error_shape() {
    let app = spawn_app().await;
    let long = "x".repeat(300);
    let cases = [
        (
            "/api/auth/token?user_id=",
            "invalid_user_id",
            "empty user id",
        ),
        (
            "/api/auth/token?user_id=a%0Ab",
            "invalid_user_id",
            "control character",
        ),
        (
            "/api/auth/token?user_id=alice%20",
            "invalid_user_id",
            "trailing space (a padding database would take it for alice)",
        ),
        (
            "/api/auth/token?parameters=%5B1%5D",
            "invalid_query",
            "parameters not an object",
        ),
    ];
    for (path, code, why) in cases {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{why}");
        assert_eq!(error_code(response).await, code, "{why}");
    }
    let response = app.get(&format!("/api/auth/token?user_id={long}")).await;
    assert_eq!(response.status(), 400, "user id too long");
    let response = app
        .post_raw("/api/auth/token", "application/json", "{not json")
        .await;
    assert_eq!(response.status(), 400, "malformed body");
    assert_eq!(error_code(response).await, "invalid_body");
}

#[tokio::test]
async fn jwks_publishes_public_keys_only_with_cache_headers() {
    let app = spawn_app().await;

    for path in ["/.well-known/jwks.json", "/api/auth/keys"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        let jwks: Value = response.json().await.unwrap();
        let keys = jwks["keys"].as_array().expect("keys is an array");
        assert_eq!(keys.len(), 1, "the development key");
        for key in keys {
            for member in ["kty", "kid", "alg"] {
                assert!(key[member].is_string(), "{member} missing in {key}");
            }
            assert_eq!(key["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(
                    key.get(private).is_none(),
                    "private member {private} in {key}"
                );
            }
        }
        assert_eq!(keys[0]["alg"], "EdDSA");
        assert_eq!(keys[0]["crv"], "Ed25519");
    }
}

#[tokio::test]
async fn the_dev_key_is_persisted_privately_and_survives_a_restart() {
    let first = spawn_app().await;
    let token = first.token_for("carol").await;
    let key_file = first.data_dir.join("dev-signing-key.pem");
    let mode = std::fs::metadata(&key_file)
        .expect("the dev key is written under the data directory")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the key file is readable by its owner only"
    );
    let jwks_before: Value = first
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    first.stop().await;

    let data_dir = first.data_dir.clone();
    let second = TestApp::builder()
        .config(move |s| s.server.data_dir = data_dir)
        .spawn()
        .await;

    let jwks_after: Value = second
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "same key after the restart");
    let response = me(&second, Some(&format!("Bearer {token}"))).await;
    assert_eq!(
        response.status(),
        200,
        "a token from before the restart still verifies"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], "carol");
}

#[tokio::test]
async fn auth_user_accepts_bearer_and_token_schemes() {
    let app = spawn_app().await;
    let token = app.token_for("dave").await;

    for scheme in ["Bearer", "Token", "bearer"] {
        let response = me(&app, Some(&format!("{scheme} {token}"))).await;
        assert_eq!(response.status(), 200, "scheme {scheme}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user_id"], "dave");
        assert_eq!(body["claims"]["sub"], "dave");
        assert_eq!(body["claims"]["aud"], "powersync");
    }
}

#[tokio::test]
async fn auth_user_refuses_missing_and_bad_tokens_with_401_and_a_challenge() {
    let app = spawn_app().await;
    let token = app.token_for("erin").await;
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = {
        use base64::Engine;
        let mut claims = claims_of(&token);
        claims["sub"] = json!("mallory");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let tampered = format!("{head}.{forged_payload}.{signature}");
    let cases = [
        (None, "missing_token", "no header"),
        (Some("Bearer ".to_owned()), "missing_token", "empty token"),
        (
            Some(format!("Basic {token}")),
            "invalid_token",
            "wrong scheme",
        ),
        (
            Some("Bearer not.a.jwt".to_owned()),
            "invalid_token",
            "garbage",
        ),
        (
            Some(format!("Bearer {tampered}")),
            "invalid_token",
            "tampered payload",
        ),
    ];
    for (header, code, why) in cases {
        let response = me(&app, header.as_deref()).await;
        assert_eq!(response.status(), 401, "{why}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
        assert_eq!(error_code(response).await, code, "{why}");
    }
}
