//! Every recorded SDK scenario (tests/fixtures/sdk-batches, plus any folder in
//! UPLINK_SDK_FIXTURES, colon-separated) through the real HTTP endpoint, on
//! Postgres and on MySQL. A scenario added to a folder is covered without
//! code changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::{Connection, MySqlPool, PgConnection};

use crate::support::app::TestApp;
use crate::support::fixtures::fixture_write_settings;
use crate::support::mysql::{rows_by_id, same_value};
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

#[derive(Clone, Copy, PartialEq)]
enum Database {
    Postgres,
    MySql,
}

/// The schema of a fixture folder for `database`: `schema.sql` for
/// Postgres; for MySQL `schema.mysql.sql` beside it, or the repository's
/// translation when the folder uses the repository's Postgres schema.
fn schema_for(dir: &Path, database: Database) -> String {
    let postgres = std::fs::read_to_string(dir.join("schema.sql"))
        .unwrap_or_else(|e| panic!("{}: no schema.sql: {e}", dir.display()));
    if database == Database::Postgres {
        return postgres;
    }
    if let Ok(mysql) = std::fs::read_to_string(dir.join("schema.mysql.sql")) {
        return mysql;
    }
    let ours = repo_root().join("tests/fixtures/sdk-batches/schema.sql");
    assert_eq!(
        std::fs::read_to_string(ours).ok().as_deref(),
        Some(postgres.as_str()),
        "{}: its schema.sql differs from the fixtures' schema; add its MySQL translation as schema.mysql.sql",
        dir.display()
    );
    std::fs::read_to_string(repo_root().join("tests/fixtures/mysql/schema.sql"))
        .expect("tests/fixtures/mysql/schema.sql")
}

/// Runs one scenario file; returns a description of every mismatch.
async fn run_scenario(database: Database, schema: &str, path: &Path) -> Vec<String> {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = scenario["name"].as_str().unwrap_or("?").to_owned();
    let builder = TestApp::builder()
        .schema(schema)
        .config(fixture_write_settings);
    let (mut problems, rejected, rows, handle) = match database {
        Database::Postgres => {
            let app = builder.spawn().await;
            let (problems, rejected) = post_batches(&app, &scenario, &name).await;
            let rows = Rows::Postgres(app.db_url.clone());
            (problems, rejected, rows, app.handle)
        }
        Database::MySql => {
            let app = builder.spawn_mysql().await;
            let (problems, rejected) = post_batches(&app, &scenario, &name).await;
            let rows = Rows::MySql(app.db_pool.clone());
            (problems, rejected, rows, app.handle)
        }
    };

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

    // Raw text: jsonb numbers in the fixtures exceed f64 precision.
    #[derive(serde::Deserialize)]
    struct Expected {
        expected: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
    }
    let raw: Expected = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (table, rows_text) in &raw.expected {
        if let Some(difference) = rows.differ(table, rows_text.get()).await {
            problems.push(format!(
                "{name}: table {table} differs\n  expected {}\n  actual   {difference}",
                rows_text.get()
            ));
        }
    }
    handle.stop(true).await;
    problems
}

/// Posts the scenario's batches; what went wrong, and the entries rejected.
async fn post_batches<Pool>(
    app: &TestApp<Pool>,
    scenario: &Value,
    name: &str,
) -> (Vec<String>, BTreeSet<(i64, String)>) {
    let token = app.token_for("fixture-user").await;
    let mut problems = Vec::new();
    let mut rejected = BTreeSet::new();
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
    (problems, rejected)
}

/// Where the rows a scenario left are read.
enum Rows {
    Postgres(String),
    MySql(MySqlPool),
}

impl Rows {
    /// The table's rows when they differ from `expected` (a JSON array of
    /// rows as Postgres' `to_jsonb` gives them).
    async fn differ(&self, table: &str, expected: &str) -> Option<Value> {
        let parsed: Value = serde_json::from_str(expected).unwrap();
        let rows = parsed.as_array().unwrap();
        let columns: Vec<String> = rows
            .first()
            .and_then(Value::as_object)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_else(|| vec!["id".to_owned()]);
        match self {
            Self::Postgres(url) => postgres_differs(url, table, &columns, expected).await,
            Self::MySql(pool) => {
                let actual = rows_by_id(pool, table, &columns).await;
                let expected: std::collections::BTreeMap<String, &Value> = rows
                    .iter()
                    .map(|r| (r["id"].as_str().unwrap().to_owned(), r))
                    .collect();
                let same = actual.len() == expected.len()
                    && expected
                        .iter()
                        .all(|(id, e)| actual.get(id).is_some_and(|a| same_value(e, a)));
                (!same).then(|| serde_json::to_value(&actual).unwrap())
            }
        }
    }
}

/// Compared in Postgres: jsonb equality compares numbers by value and
/// objects structurally, with no precision lost on either side.
async fn postgres_differs(
    url: &str,
    table: &str,
    columns: &[String],
    expected: &str,
) -> Option<Value> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query("SET TimeZone = 'UTC'")
        .execute(&mut conn)
        .await
        .unwrap();
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
    .bind(expected)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    (!equal).then_some(actual)
}

async fn every_scenario_on(database: Database) {
    let mut problems = Vec::new();
    let mut count = 0;
    for dir in fixture_dirs() {
        let schema = schema_for(&dir, database);
        for path in scenarios(&dir) {
            count += 1;
            problems.extend(run_scenario(database, &schema, &path).await);
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

#[tokio::test]
async fn every_recorded_sdk_scenario_ends_in_the_expected_state() {
    every_scenario_on(Database::Postgres).await;
}

#[tokio::test]
async fn every_recorded_sdk_scenario_ends_in_the_expected_state_on_mysql() {
    every_scenario_on(Database::MySql).await;
}
