//! CORS allow-list, rate limits (429 with Retry-After), JSON depth and batch size.

use serde_json::{Value, json};

use crate::support::app::{TestApp, spawn_app};
use crate::support::fixtures::{fixture_schema, fixture_write_settings, spawn_fixture_app};
use crate::support::responses::error_code;

const ALLOWED: &str = "https://app.example.com";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/data"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_succeeds_and_from_another_is_refused() {
    let app = TestApp::builder()
        .config(|s| s.server.cors_origins = vec![ALLOWED.to_owned()])
        .spawn()
        .await;

    let allowed = preflight(&app, ALLOWED).await;
    let other = preflight(&app, "https://evil.example.net").await;

    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        ALLOWED,
        "the allowed origin is echoed"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    assert!(!other.status().is_success(), "{}", other.status());
    assert!(
        !other.headers().contains_key("access-control-allow-origin"),
        "a refused origin gets no CORS grant"
    );
}

#[tokio::test]
async fn an_actual_cross_origin_request_carries_the_grant() {
    let app = TestApp::builder()
        .config(|s| s.server.cors_origins = vec![ALLOWED.to_owned()])
        .spawn()
        .await;

    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED);
}

#[tokio::test]
async fn without_configured_origins_no_cors_grant_is_given() {
    let app = spawn_app().await;

    let preflight = preflight(&app, ALLOWED).await;
    let get = app
        .client
        .get(app.url("/health/live"))
        .header("Origin", ALLOWED)
        .send()
        .await
        .unwrap();

    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(
        get.status(),
        200,
        "non-browser clients sending Origin still work"
    );
    assert!(!get.headers().contains_key("access-control-allow-origin"));
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds")
}

#[tokio::test]
async fn a_burst_over_the_per_user_token_limit_gets_429_with_retry_after() {
    let app = TestApp::builder()
        .config(|s| {
            // One token per 100 s: no refill can happen during the test.
            s.limits.token_per_user.per_second = 0.01;
            s.limits.token_per_user.burst = 3;
        })
        .spawn()
        .await;
    let ask = |user: &'static str| {
        app.client
            .get(app.url(&format!("/api/auth/token?user_id={user}")))
            .send()
    };

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ask("alice").await.unwrap().status().as_u16());
    }
    let limited = ask("alice").await.unwrap();
    let other_user = ask("bob").await.unwrap();

    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(limited.status(), 429);
    let wait = retry_after(&limited);
    assert!(
        (90..=100).contains(&wait),
        "Retry-After is the time one token takes to refill: {wait}"
    );
    assert_eq!(error_code(limited).await, "rate_limited");
    assert_eq!(other_user.status(), 200, "the limit is per user");
}

#[tokio::test]
async fn a_burst_over_the_per_ip_token_limit_gets_429_whoever_is_asked_for() {
    let app = TestApp::builder()
        .config(|s| {
            s.limits.token_per_ip.per_second = 0.01;
            s.limits.token_per_ip.burst = 2;
        })
        .spawn()
        .await;

    let mut statuses = Vec::new();
    for user in ["u1", "u2", "u3"] {
        let response = app
            .client
            .post(app.url("/api/auth/token"))
            .json(&json!({ "user_id": user }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(retry_after(&response) >= 1);
        }
    }

    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn a_burst_of_uploads_over_the_per_user_limit_gets_429_and_applies_nothing() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(|s| {
            s.limits.upload_per_user.per_second = 0.01;
            s.limits.upload_per_user.burst = 2;
        })
        .spawn()
        .await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    let batch = |name: &str| json!({"batch": [{"op": "PUT", "type": "lists", "id": uuid::Uuid::new_v4().to_string(), "data": {"name": name}}]});

    let mut statuses = Vec::new();
    for n in 0..3 {
        let (status, _) = app.post_batch(&alice, &batch(&format!("a{n}"))).await;
        statuses.push(status);
    }
    let limited = app
        .client
        .post(app.url("/api/data"))
        .bearer_auth(&alice)
        .json(&batch("late"))
        .send()
        .await
        .unwrap();
    let (bob_status, _) = app.post_batch(&bob, &batch("b")).await;

    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(limited.status(), 429);
    assert!(retry_after(&limited) >= 1);
    assert_eq!(bob_status, 200, "the limit is per user");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 3);
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn json_nested_deeper_than_20_levels_is_refused_with_400() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    // The envelope and entry take 4 levels ({ batch: [ { data: { v: … } } ] }).
    let body = |value_depth: usize| {
        format!(
            r#"{{"batch": [{{"op": "PUT", "type": "items", "id": "{}", "data": {{"title": "t", "attrs": {}}}}}]}}"#,
            uuid::Uuid::new_v4(),
            nested(value_depth)
        )
    };
    let post = |text: String| {
        app.client
            .post(app.url("/api/data"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(text)
            .send()
    };

    let at_limit = post(body(16)).await.unwrap();
    let too_deep = post(body(17)).await.unwrap();
    let token_body = app
        .client
        .post(app.url("/api/auth/token"))
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"parameters": {{"x": {}}}}}"#, nested(25)))
        .send()
        .await
        .unwrap();

    assert_eq!(at_limit.status(), 200);
    let at_limit: Value = at_limit.json().await.unwrap();
    assert_eq!(at_limit["applied"], 1, "{at_limit}");
    assert_eq!(too_deep.status(), 400);
    assert_eq!(error_code(too_deep).await, "json_too_deep");
    assert_eq!(token_body.status(), 400, "every JSON route has the limit");
    assert_eq!(error_code(token_body).await, "json_too_deep");
    assert_eq!(app.count("SELECT count(*) FROM items").await, 1);
}

#[tokio::test]
async fn brackets_inside_strings_do_not_count_as_nesting() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let title = format!("{}{}", "[".repeat(40), "{".repeat(40));
    let body = json!({"batch": [{"op": "PUT", "type": "lists", "id": uuid::Uuid::new_v4().to_string(), "data": {"name": title}}]});

    let (status, report) = app.post_batch(&token, &body).await;

    assert_eq!(status, 200);
    assert_eq!(report["applied"], 1, "{report}");
}

#[tokio::test]
async fn a_batch_over_max_entries_per_batch_is_refused_whole() {
    let app = TestApp::builder()
        .schema(fixture_schema())
        .config(fixture_write_settings)
        .config(|s| s.write.max_entries_per_batch = 2)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let entries: Vec<Value> = (0..3)
        .map(|n| json!({"op": "PUT", "type": "lists", "id": uuid::Uuid::new_v4().to_string(), "data": {"name": format!("l{n}")}}))
        .collect();

    let (status, body) = app.post_batch(&token, &json!({ "batch": entries })).await;

    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "too_many_entries");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}
