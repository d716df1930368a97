//! `uplink-bench` against a running app: it drives every workload and both
//! baselines and writes a well-formed report. No timing is asserted.

use clap::Parser;
use uplink_bench::BenchArgs;

use crate::support::app::TestApp;
use crate::support::fixtures::todo_example;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

/// The todo demo; with `policies`, its todos have an owner (`created_by`),
/// a timestamp conflict column (`completed_at`) and a state machine on
/// `status`, as `uplink-bench --spawn` configures them.
async fn todo_app(policies: bool) -> TestApp {
    let mut builder = todo_example();
    if policies {
        builder = builder
            .schema("ALTER TABLE todos ADD COLUMN status text NOT NULL DEFAULT 'open'")
            .config(|s| {
                let todos = s.write.tables.get_mut("todos").expect("todos are writable");
                todos.owner_column = Some("created_by".to_owned());
                todos.conflict = Some(
                    serde_json::from_value(
                        serde_json::json!({"strategy": "timestamp", "column": "completed_at"}),
                    )
                    .expect("a conflict policy"),
                );
                todos.transitions = Some(
                    serde_json::from_value(
                        serde_json::json!({"column": "status", "allowed": {"open": ["done"]}}),
                    )
                    .expect("transitions"),
                );
                if let Some(columns) = &mut todos.columns {
                    columns.push("status".to_owned());
                }
            });
    }
    builder.spawn().await
}

#[tokio::test]
async fn bench_runs_every_workload_and_writes_a_report() {
    // Arrange
    let app = todo_app(false).await;
    let secure = todo_app(true).await;
    let report_path = app.data_dir.join("bench.json");
    let cli = Cli::parse_from([
        "bench",
        "--url",
        &app.address,
        "--policy-url",
        &secure.address,
        "--database-url",
        &app.db_url,
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--connections",
        "2",
        "--batch-size",
        "20",
        "--workload",
        "put100,mixed,put100-owner,mixed-policies,presign,tokens",
        "--json",
        report_path.to_str().expect("utf-8 path"),
    ]);

    // Act
    uplink_bench::run(cli.args)
        .await
        .expect("the benchmark runs");

    // Assert
    let text = std::fs::read_to_string(&report_path).expect("the report is written");
    let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let cases = report["cases"].as_array().expect("cases");
    let case = |workload: &str, target: &str| {
        cases
            .iter()
            .find(|c| c["workload"] == workload && c["target"] == target)
            .unwrap_or_else(|| panic!("no case {workload} {target} in {text}"))
    };
    for (workload, target) in [
        ("put100", "uplink"),
        ("put100", "naive"),
        ("put100", "sql-limit"),
        ("mixed", "uplink"),
        ("mixed", "naive"),
        ("mixed", "sql-limit"),
        ("put100-owner", "uplink"),
        ("mixed-policies", "uplink"),
        ("presign", "uplink"),
        ("tokens", "uplink"),
    ] {
        let c = case(workload, target);
        assert_eq!(c["errors"], 0, "{workload} {target} had errors: {c}");
        assert!(
            c["ops"].as_u64().is_some_and(|n| n > 0),
            "{workload} {target} did nothing: {c}"
        );
        let latency = &c["latency_ms"];
        let [p50, p99, max] = ["p50", "p99", "max"].map(|at| {
            latency[at].as_f64().unwrap_or_else(|| {
                panic!("{workload} {target}: latency {at} is a number: {latency}")
            })
        });
        assert!(
            p50 <= p99 && p99 <= max,
            "percentiles are ordered: {latency}"
        );
    }
    assert_eq!(
        case("tokens", "uplink")["alg"],
        "EdDSA",
        "the dev key signs with EdDSA"
    );
    for workload in ["put100", "mixed"] {
        for ratio in ["uplink_over_naive", "uplink_over_sql_limit"] {
            assert!(
                report["ratios"][workload][ratio]
                    .as_f64()
                    .is_some_and(|r| r > 0.0),
                "{workload} {ratio} is reported: {}",
                report["ratios"]
            );
        }
    }
    for (workload, ratio) in [
        ("put100-owner", "uplink_over_put100"),
        ("mixed-policies", "uplink_over_mixed"),
    ] {
        assert!(
            report["ratios"][workload][ratio]
                .as_f64()
                .is_some_and(|r| r > 0.0),
            "{workload} {ratio} is reported: {}",
            report["ratios"]
        );
    }
    assert!(report["targets"].as_array().is_some_and(|t| t.len() == 7));

    // The policy cases wrote through the policies: every todo is the
    // user's, and the PATCHes of mixed-policies moved rows to `done`.
    let (mine, others, done): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE created_by = 'bench'), \
                count(*) FILTER (WHERE created_by IS DISTINCT FROM 'bench'), \
                count(*) FILTER (WHERE status = 'done') FROM todos",
    )
    .fetch_one(&secure.db_pool)
    .await
    .expect("count todos");
    assert!(
        mine > 0 && others == 0,
        "{mine} todos of the user, {others} of others"
    );
    assert!(done > 0, "PATCHes moved rows from open to done");

    // The rows really are in the database: each write case left its todos.
    let todos: i64 = sqlx::query_scalar("SELECT count(*) FROM todos")
        .fetch_one(&app.db_pool)
        .await
        .expect("count todos");
    assert!(todos > 0, "the benchmark wrote todos");
    let progress: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM uplink.client_progress WHERE client_id LIKE 'bench-%' AND last_op_id > 0",
    )
    .fetch_one(&app.db_pool)
    .await
    .expect("count progress rows");
    assert!(
        progress >= 4,
        "uplink and sql-limit each kept progress per virtual client"
    );
}
