//! `/metrics` over real HTTP: write-path outcomes, requests by route, tokens,
//! dead letters, pool gauges, the metrics listener apart from the API's
//! port, and the dead-letter gauge kept by a periodic job, not by scrapes.

use serde_json::json;
use uuid::Uuid;

use crate::support::app::{TestApp, spawn_app};
use crate::support::fixtures::{
    fixture_schema, fixture_write_settings, spawn_fixture_app, tables_from_yaml,
};

/// The value of one sample of the Prometheus text format, matched by name
/// and (a subset of) its labels.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let present: Vec<(&str, &str)> = label_text
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k, v.trim_matches('"')))
                })
                .collect();
            labels
                .iter()
                .all(|wanted| present.contains(wanted))
                .then(|| value.parse().ok())
                .flatten()
        })
}

#[tokio::test]
async fn a_batch_with_applied_duplicate_and_rejected_entries_is_counted_once_each() {
    // Arrange: one applied entry, so that resending it is a duplicate.
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let list = Uuid::new_v4().to_string();
    let put_list = json!({"op_id": 1, "op": "PUT", "type": "lists", "id": list, "tx_id": 1, "data": {"name": "groceries"}});
    let (status, _) = app
        .post_batch(&token, &json!({"client_id": "phone", "batch": [put_list]}))
        .await;
    assert_eq!(status, 200);

    // Act: the duplicate, a new PATCH, and a todo whose list does not exist.
    let body = json!({"client_id": "phone", "batch": [
        put_list,
        {"op_id": 2, "op": "PATCH", "type": "lists", "id": list, "tx_id": 2, "data": {"name": "food"}},
        {"op_id": 3, "op": "PUT", "type": "todos", "id": Uuid::new_v4().to_string(), "tx_id": 3,
         "data": {"description": "milk", "list_id": Uuid::new_v4().to_string()}},
    ]});
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["applied"],
            &report["duplicates"],
            &report["rejected"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{report}"
    );
    let text = app.scrape().await;

    // Assert
    let entries = |table, op, outcome| {
        sample(
            &text,
            "uplink_write_entries_total",
            &[("table", table), ("op", op), ("outcome", outcome)],
        )
    };
    assert_eq!(entries("lists", "PUT", "applied"), Some(1.0), "{text}");
    assert_eq!(entries("lists", "PUT", "duplicate"), Some(1.0));
    assert_eq!(entries("lists", "PATCH", "applied"), Some(1.0));
    assert_eq!(entries("todos", "PUT", "rejected"), Some(1.0));
    assert_eq!(entries("todos", "PUT", "applied"), None);
    assert_eq!(sample(&text, "uplink_dead_letters_total", &[]), Some(1.0));
    assert_eq!(
        sample(&text, "uplink_write_batch_entries_count", &[]),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "uplink_write_batch_entries_sum", &[]),
        Some(4.0)
    );
    // Each applied batch waited for its connection once; none was retried.
    assert_eq!(
        sample(&text, "uplink_db_connection_wait_seconds_count", &[]),
        Some(2.0)
    );
    assert_eq!(sample(&text, "uplink_write_retries_total", &[]), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "uplink_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/data"),
                ("status", "200")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "uplink_tokens_issued_total",
            &[("identity_mode", "dev")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn unknown_tables_share_one_label_and_unmatched_paths_one_route() {
    let app = spawn_fixture_app().await;
    let token = app.token_for("alice").await;
    let body = json!({"batch": [
        {"op": "PUT", "type": "no_such_table_1", "id": "a", "data": {}},
        {"op": "PUT", "type": "no_such_table_2", "id": "b", "data": {}},
    ]});
    let (status, _) = app.post_batch(&token, &body).await;
    assert_eq!(status, 200);
    for n in 0..3 {
        assert_eq!(app.get(&format!("/random/path/{n}")).await.status(), 404);
    }

    let text = app.scrape().await;

    assert!(!text.contains("no_such_table"), "{text}");
    assert_eq!(
        sample(
            &text,
            "uplink_write_entries_total",
            &[("table", "other"), ("outcome", "rejected")]
        ),
        Some(2.0)
    );
    assert!(!text.contains("/random/path"));
    assert_eq!(
        sample(
            &text,
            "uplink_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn latency_pool_and_build_info_are_reported() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    // The probe's connection goes back to the pool in a task of its own:
    // under load a first scrape may still count it in use.
    let mut text = app.scrape().await;
    for _ in 0..100 {
        if sample(&text, "uplink_db_pool_connections", &[("state", "idle")])
            .is_some_and(|n| n >= 1.0)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        text = app.scrape().await;
    }

    assert_eq!(
        sample(
            &text,
            "uplink_http_request_duration_seconds_count",
            &[("route", "/health/ready"), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "uplink_db_pool_max_connections", &[]),
        Some(f64::from(app.settings.database.max_connections))
    );
    let idle = sample(&text, "uplink_db_pool_connections", &[("state", "idle")]);
    assert!(idle.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "uplink_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn metrics_are_on_their_own_listener_never_on_the_api_port() {
    let app = spawn_app().await;

    let on_api_port = app.get("/metrics").await;
    let text = app.scrape().await;

    assert_eq!(
        on_api_port.status(),
        404,
        "the API's port serves no metrics"
    );
    assert!(text.contains("uplink_build_info"), "{text}");
    assert_ne!(app.metrics_port, Some(app.port));
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = TestApp::builder()
        .config(|s| s.metrics.enabled = false)
        .spawn()
        .await;

    assert_eq!(app.metrics_port, None, "no metrics listener");
    assert_eq!(app.get("/metrics").await.status(), 404);
}

/// Rejects one client transaction of `user` (a todo in a list that does
/// not exist), which stores one dead letter.
async fn dead_letter_one(app: &TestApp, user: &str) {
    let token = app.token_for(user).await;
    let body = json!({"batch": [{"op": "PUT", "type": "todos", "id": Uuid::new_v4().to_string(),
        "data": {"description": "milk", "list_id": Uuid::new_v4().to_string()}}]});
    let (status, report) = app.post_batch(&token, &body).await;
    assert_eq!((status, &report["rejected"]), (200, &json!(1)), "{report}");
}

/// Scrapes until the pending dead-letter gauge reads `expected`.
async fn pending_gauge_reaches(app: &TestApp, expected: f64) -> String {
    // Only a guard against a hanging test: the gauge is refreshed every second.
    for _ in 0..600 {
        let text = app.scrape().await;
        if sample(&text, "uplink_dead_letters_pending", &[]) == Some(expected) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("uplink_dead_letters_pending never reached {expected}");
}

#[tokio::test]
async fn a_scrape_never_counts_dead_letters_the_periodic_job_does() {
    // Refreshed once at start, then not for an hour: whatever a scrape shows
    // afterwards was not read by the scrape.
    let app = TestApp::builder()
        .schema(fixture_schema())
        .seed(
            "INSERT INTO uplink.dead_letters (user_id, entries, code, message) \
             VALUES ('alice', '[]', 'forbidden', 'stored before start')",
        )
        .config(|s| {
            fixture_write_settings(s);
            s.metrics.refresh_interval = std::time::Duration::from_secs(3600);
        })
        .spawn()
        .await;
    pending_gauge_reaches(&app, 1.0).await;

    dead_letter_one(&app, "alice").await;
    let mut scrapes = Vec::new();
    for _ in 0..20 {
        scrapes.push(sample(
            &app.scrape().await,
            "uplink_dead_letters_pending",
            &[],
        ));
    }

    assert!(
        scrapes.iter().all(|v| *v == Some(1.0)),
        "scrapes do not query the database: {scrapes:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM uplink.dead_letters").await,
        2
    );
}

#[tokio::test]
async fn the_pending_gauge_follows_the_database_every_refresh() {
    let app = spawn_fixture_app().await;
    pending_gauge_reaches(&app, 0.0).await;

    dead_letter_one(&app, "alice").await;
    dead_letter_one(&app, "bob").await;

    pending_gauge_reaches(&app, 2.0).await;
}

#[tokio::test]
async fn a_stale_version_is_counted_as_a_conflict() {
    let app = TestApp::builder()
        .schema(
            "CREATE TABLE documents (id uuid PRIMARY KEY, content text, version bigint NOT NULL DEFAULT 1)",
        )
        .config(|s| {
            s.write.tables = tables_from_yaml(
                "write:\n  tables:\n    documents: { conflict: { strategy: version, column: version, on_conflict: record } }\n",
            )
        })
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let doc = Uuid::new_v4().to_string();
    let edit = |op_id: i64, content: &str| json!({"op_id": op_id, "op": "PATCH", "type": "documents", "id": doc, "tx_id": op_id, "data": {"content": content, "version": 1}});
    sqlx::query("INSERT INTO documents (id, content) VALUES ($1::uuid, 'v1')")
        .bind(&doc)
        .execute(&app.db_pool)
        .await
        .unwrap();

    // Both edits saw version 1: the second one loses.
    let (_, report) = app
        .post_batch(
            &token,
            &json!({"client_id": "tablet", "batch": [edit(1, "first"), edit(2, "second")]}),
        )
        .await;
    assert_eq!(report["conflicts"], 1, "{report}");
    let text = app.scrape().await;

    let entries = |outcome| {
        sample(
            &text,
            "uplink_write_entries_total",
            &[
                ("table", "documents"),
                ("op", "PATCH"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(entries("applied"), Some(1.0), "{text}");
    assert_eq!(entries("conflict"), Some(1.0));
    assert_eq!(sample(&text, "uplink_dead_letters_total", &[]), Some(0.0));
}

#[tokio::test]
async fn invented_methods_share_one_label_and_add_no_series() {
    let app = spawn_app().await;
    let send_invented = |round: usize| {
        let app = &app;
        async move {
            for n in 0..50 {
                let method =
                    reqwest::Method::from_bytes(format!("INVENTED{round}X{n}").as_bytes()).unwrap();
                for path in ["/api/data", &format!("/no/such/path/{round}/{n}")] {
                    let response = app
                        .client
                        .request(method.clone(), app.url(path))
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_client_error(), "{}", response.status());
                }
            }
        }
    };
    app.scrape().await;

    send_invented(1).await;
    let after_first = app.scrape().await;
    send_invented(2).await;
    let after_second = app.scrape().await;

    assert!(!after_second.contains("INVENTED"), "{after_second}");
    assert!(!after_second.contains("/no/such/path"));
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        series(&after_first),
        series(&after_second),
        "50 more invented methods add no series"
    );
    assert_eq!(
        sample(
            &after_second,
            "uplink_http_requests_total",
            &[("method", "other"), ("route", "unmatched")]
        ),
        Some(100.0)
    );
}

#[test]
fn by_default_metrics_listen_on_this_machine_apart_from_the_api() {
    let output = crate::support::process::uplink_command()
        .arg("check-config")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/db")
        .output()
        .expect("run uplink check-config");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let effective: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");

    let metrics = &effective["metrics"];
    assert_eq!(metrics["enabled"], true);
    assert_eq!(metrics["host"], "127.0.0.1", "{metrics}");
    assert_eq!(metrics["port"], 9464, "{metrics}");
    assert_ne!(metrics["port"], effective["server"]["port"]);
}

/// Each replica reports the requests it is serving: a request whose body is
/// still arriving counts until its client goes away.
#[tokio::test]
async fn requests_in_flight_are_counted_until_they_end() {
    use tokio::io::AsyncWriteExt;

    let app = spawn_app().await;
    let in_flight = |text: String| sample(&text, "uplink_http_requests_in_flight", &[]);
    assert_eq!(in_flight(app.scrape().await), Some(0.0));

    let token = app.token_for("alice").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"batch\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = None;
    for _ in 0..500 {
        seen = in_flight(app.scrape().await);
        if seen == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, Some(1.0), "the half-sent request is in flight");

    drop(stream);
    for _ in 0..500 {
        seen = in_flight(app.scrape().await);
        if seen == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, Some(0.0), "the request ended with its connection");
}
