//! Start-up of the real binary: the dev identity warning, serving while
//! Postgres is down, prompt exit on SIGTERM.

use crate::shutdown::ServerProcess;

const BANNER: &str = "DEV IDENTITY IS ON";

async fn startup_log(extra_env: &[(&str, &str)]) -> String {
    let log = std::env::temp_dir().join(format!("uplink-log-{}.log", uuid::Uuid::new_v4()));
    let server = ServerProcess::start_with_log(extra_env, Some(&log)).await;
    server.signal("TERM");
    assert_eq!(server.wait_exit().await, Some(0));
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test]
async fn dev_identity_prints_a_loud_warning_at_start_up() {
    let log = startup_log(&[]).await;
    let lines: Vec<&str> = log.lines().collect();
    let banner = lines
        .iter()
        .position(|line| line.contains(BANNER))
        .unwrap_or_else(|| panic!("no dev identity warning in the log:\n{log}"));
    assert!(
        lines[..banner]
            .iter()
            .rev()
            .take(3)
            .any(|line| line.contains("WARN")),
        "the banner is logged as a warning:\n{log}"
    );
    assert!(log.contains("a token for any user"), "{log}");

    let api_keys =
        serde_json::json!([{ "sha256": "a".repeat(64), "user_id": "service" }]).to_string();
    let quiet = startup_log(&[
        ("UPLINK__AUTH__IDENTITY__MODE", "api_key"),
        ("UPLINK__AUTH__IDENTITY__API_KEY__KEYS", &api_keys),
    ])
    .await;
    assert!(
        !quiet.contains(BANNER),
        "no warning without dev identity:\n{quiet}"
    );
}
