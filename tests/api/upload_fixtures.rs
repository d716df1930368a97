//! Every recorded SDK scenario (tests/fixtures/sdk-batches, plus any folder in
//! UPLINK_SDK_FIXTURES, colon-separated) through the real HTTP endpoint.
//! A scenario added to a folder is covered without code changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::support::app::TestApp;
use crate::support::fixtures::fixture_write_settings;
use crate::support::repo::repo_root;

fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![repo_root().join("tests/fixtures/sdk-batches")];
    if let Ok(extra) = std::env::var("UPLINK_SDK_FIXTURES") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    dirs
}

fn scenarios(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Runs one scenario file; returns a description of every mismatch.
async fn run_scenario(schema: &str, path: &Path) -> Vec<String> {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = scenario["name"].as_str().unwrap_or("?").to_owned();
    let app = TestApp::builder()
        .schema(schema)
        .config(fixture_write_settings)
        .spawn()
        .await;
    let token = app.token_for("fixture-user").await;
    let mut problems = Vec::new();
    let mut rejected: BTreeSet<(i64, String)> = BTreeSet::new();

    for (i, batch) in scenario["batches"].as_array().unwrap().iter().enumerate() {
        let response = app
            .client
            .post(app.url("/api/data"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(batch.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            problems.push(format!("{name}: batch {i} answered {status}: {body}"));
            continue;
        }
        for result in body["results"].as_array().into_iter().flatten() {
            if result["status"] == "rejected" {
                rejected.insert((
                    result["op_id"].as_i64().unwrap_or(-1),
                    result["code"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
    }

    let expected_rejected: BTreeSet<(i64, String)> = scenario["expected_rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["op_id"].as_i64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    if rejected != expected_rejected {
        problems.push(format!(
            "{name}: rejected entries differ\n  expected {expected_rejected:?}\n  got      {rejected:?}"
        ));
    }

    // Compare in Postgres: jsonb equality compares numbers by value and
    // objects structurally, with no precision lost on either side.
    let mut conn = PgConnection::connect(&app.db_url).await.unwrap();
    sqlx::query("SET TimeZone = 'UTC'")
        .execute(&mut conn)
        .await
        .unwrap();
    // Raw text: jsonb numbers in the fixtures exceed f64 precision.
    #[derive(serde::Deserialize)]
    struct Expected {
        expected: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
    }
    let raw: Expected = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (table, rows_text) in &raw.expected {
        let parsed: Value = serde_json::from_str(rows_text.get()).unwrap();
        let rows = parsed.as_array().unwrap();
        let columns: Vec<String> = rows
            .first()
            .and_then(Value::as_object)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_else(|| vec!["id".to_owned()]);
        let select = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let (equal, actual): (bool, Value) = sqlx::query_as(&format!(
            "WITH actual AS (SELECT COALESCE(jsonb_object_agg(t.id::text, to_jsonb(t)), '{{}}') AS v \
                             FROM (SELECT {select} FROM \"{table}\") t), \
                  expected AS (SELECT COALESCE(jsonb_object_agg(e->>'id', e), '{{}}') AS v \
                               FROM jsonb_array_elements($1::jsonb) e) \
             SELECT actual.v = expected.v, actual.v FROM actual, expected"
        ))
        .bind(rows_text.get())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if !equal {
            problems.push(format!(
                "{name}: table {table} differs\n  expected {}\n  actual   {actual}",
                rows_text.get()
            ));
        }
    }
    app.stop().await;
    problems
}

#[tokio::test]
async fn every_recorded_sdk_scenario_ends_in_the_expected_state() {
    let mut problems = Vec::new();
    let mut count = 0;
    for dir in fixture_dirs() {
        let schema = std::fs::read_to_string(dir.join("schema.sql"))
            .unwrap_or_else(|e| panic!("{}: no schema.sql: {e}", dir.display()));
        for path in scenarios(&dir) {
            count += 1;
            problems.extend(run_scenario(&schema, &path).await);
        }
    }
    assert!(
        count >= 40,
        "expected the 40 recorded scenario files, found {count}"
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
