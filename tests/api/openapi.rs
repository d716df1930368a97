//! The OpenAPI description: served, committed, complete, and true to the routes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::app::spawn_app;
use crate::support::repo::repo_root;

#[tokio::test]
async fn the_committed_openapi_json_is_what_the_server_serves() {
    let app = spawn_app().await;

    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().await.unwrap();
    let committed = std::fs::read_to_string(repo_root().join("openapi.json"))
        .expect("openapi.json is committed at the repository root");
    assert!(
        served == committed,
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json` and commit it"
    );
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
}

fn document() -> Value {
    serde_json::from_str(&uplink::openapi::document()).unwrap()
}

/// Every `(method, path)` the description lists.
fn described() -> BTreeSet<(String, String)> {
    let document = document();
    let mut out = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Route paths registered in the source: string literals given to
/// `route(`, `resource(` and the route macros. The attachment file route is
/// built from a constant and added by hand; the metrics listener's
/// `/metrics` is not the API (another port) and is left out.
fn registered_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![repo_root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.components().any(|c| c.as_os_str() == "openapi")
                || path.ends_with("metrics/listener.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in [
                ".route(\"",
                "resource(\"",
                "#[get(\"",
                "#[post(\"",
                "#[put(\"",
                "#[delete(\"",
            ] {
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        paths.insert(rest[..end].to_owned());
                    }
                }
            }
        }
    }
    paths.insert("/api/attachments/files/{key}".to_owned());
    paths
}

#[test]
fn every_registered_route_is_described() {
    let described_paths: BTreeSet<String> = described().into_iter().map(|(_, p)| p).collect();
    let registered = registered_paths();
    for known in [
        "/api/data",
        "/health/live",
        "/api/auth/token",
        "/api/admin/dead-letters",
    ] {
        assert!(
            registered.contains(known),
            "the route scan found {registered:?}"
        );
    }

    let missing: Vec<_> = registered
        .into_iter()
        .filter(|p| !described_paths.contains(p))
        .collect();

    assert!(
        missing.is_empty(),
        "routes without an OpenAPI description (a `#[utoipa::path]` on the handler, listed in src/openapi/mod.rs): {missing:?}"
    );
}

#[tokio::test]
async fn every_described_operation_is_routed() {
    let app = spawn_app().await;

    for (method, path) in described() {
        let concrete = path.replace("{id}", "1").replace("{key}", "k");
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status != 405 && !text.contains("no route for"),
            "{method} {path} is described but not routed ({status}: {text})"
        );
    }
}

#[test]
fn every_error_response_has_the_json_error_shape() {
    let document = document();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
