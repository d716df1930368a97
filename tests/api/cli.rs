//! The `uplink` command line as a newcomer meets it: output into a pipe that
//! closes early, `token` signing with the server's key or refusing, the
//! dead-letter commands on a database uplink never migrated, `check-config`
//! against the database, and configuration errors in the settings' terms.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::database::{create_database, database_url, migrate};
use crate::support::process::{ServerProcess, uplink_command};

/// A database URL nothing listens on.
const UNREACHABLE: &str = "postgres://postgres@127.0.0.1:1/db";

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `command`, reads `take` bytes of its stdout and closes the pipe.
fn read_then_close(
    mut command: Command,
    take: usize,
) -> (std::process::ExitStatus, Vec<u8>, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start uplink");
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0; take];
    stdout.read_exact(&mut head).expect("the first bytes");
    drop(stdout);
    let output = child.wait_with_output().expect("uplink exits");
    (output.status, head, stderr_of(&output))
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    // openapi.json is larger than a pipe's buffer: the write meets the
    // closed pipe (`uplink openapi | head -c 1`).
    let mut command = uplink_command();
    command.arg("openapi");
    let (status, head, stderr) = read_then_close(command, 1);
    assert_eq!(head, b"{");
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert_eq!(stderr, "", "nothing on stderr, no panic");
}

#[tokio::test]
async fn a_dead_letter_list_into_a_pipe_closed_early_ends_quietly() {
    // More lines than a pipe holds (`uplink dead-letters list | head -1`).
    let url = database_url(&create_database().await);
    migrate(&url).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO uplink.dead_letters (user_id, entries, code, message) \
         SELECT 'user-' || n, '[]', 'check_violation', 'refused' FROM generate_series(1, 2000) n",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut command = uplink_command();
    command
        .env("DATABASE_URL", &url)
        .args(["dead-letters", "list", "--limit", "2000"]);
    let (status, head, stderr) = read_then_close(command, 8);
    assert_eq!(head, b"    id  ");
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert_eq!(stderr, "", "nothing on stderr, no panic");
}

#[tokio::test]
async fn the_dead_letter_commands_on_an_unmigrated_database_say_so() {
    let url = database_url(&create_database().await);
    for args in [vec!["list"], vec!["show", "3"], vec!["replay", "3"]] {
        let output = uplink_command()
            .env("DATABASE_URL", &url)
            .arg("dead-letters")
            .args(&args)
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr.contains("uplink's tables are not in this database (was it migrated?)"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn token_without_the_servers_key_refuses_and_creates_none() {
    let data_dir =
        std::env::temp_dir().join(format!("uplink-cli-{}", uuid::Uuid::new_v4().simple()));
    let output = uplink_command()
        .env_remove("DATABASE_URL")
        .env("UPLINK__SERVER__DATA_DIR", &data_dir)
        .args(["token", "--sub", "alice"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no token printed");
    assert!(stderr.contains("no signing key"), "{stderr}");
    assert!(
        stderr.contains("dev-signing-key.pem"),
        "names the file: {stderr}"
    );
    assert!(!data_dir.exists(), "no key was made up");
}

#[tokio::test]
async fn token_signs_with_the_running_servers_key_without_a_database_url() {
    let data_dir =
        std::env::temp_dir().join(format!("uplink-cli-{}", uuid::Uuid::new_v4().simple()));
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let server = ServerProcess::start(&[("UPLINK__SERVER__DATA_DIR", &data_dir_text)]).await;

    let output = uplink_command()
        .env_remove("DATABASE_URL")
        .env("UPLINK__SERVER__DATA_DIR", &data_dir)
        .args(["token", "--sub", "alice"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let token = String::from_utf8(output.stdout).unwrap();

    // The server accepts it: an empty batch is applied for alice.
    let response = reqwest::Client::new()
        .post(server.url("/api/data"))
        .bearer_auth(token.trim())
        .json(&json!({"batch": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// `check-config` on the database at `url`, with `lists` allow-listed.
fn check_config_allowing_lists(url: &str) -> std::process::Output {
    let config =
        std::env::temp_dir().join(format!("uplink-cli-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &config,
        "write:\n  tables:\n    lists: { columns: [name] }\n",
    )
    .unwrap();
    uplink_command()
        .env("DATABASE_URL", url)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap()
}

#[tokio::test]
async fn check_config_refuses_a_table_the_database_lacks() {
    let url = database_url(&create_database().await);
    let output = check_config_allowing_lists(&url);
    let stderr = stderr_of(&output);
    assert!(!output.status.success(), "serve would refuse it: {stderr}");
    assert!(stderr.contains("write.tables.lists"), "{stderr}");
    assert!(stderr.contains("table `lists` does not exist"), "{stderr}");
}

#[tokio::test]
async fn check_config_passes_a_table_the_database_has() {
    let url = database_url(&create_database().await);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE lists (id uuid PRIMARY KEY, name text)")
        .execute(&pool)
        .await
        .unwrap();
    migrate(&url).await;
    let output = check_config_allowing_lists(&url);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("checked write.tables against the database"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn check_config_says_when_it_could_not_reach_the_database() {
    let output = uplink_command()
        .env("DATABASE_URL", UNREACHABLE)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "the settings are valid: {stderr}");
    assert!(
        stderr.contains("could not reach the database")
            && stderr.contains("write.tables not checked"),
        "{stderr}"
    );
}

#[test]
fn configuration_errors_list_valid_values_and_examples() {
    let config =
        std::env::temp_dir().join(format!("uplink-cli-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&config, "auth:\n  token_ttl: 5\n").unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "UPLINK__AUTH__IDENTITY__MODE",
            "jwks",
            &[
                "auth.identity.mode",
                "`jwks` is not one of dev | jwt | api_key",
            ],
        ),
        (
            "UPLINK__LOG__FORMAT",
            "text",
            &["log.format", "`text` is not one of auto | json | pretty"],
        ),
        (
            "UPLINK__ATTACHMENTS__STORAGE",
            "gcs",
            &["attachments.storage", "`gcs` is not one of local | s3"],
        ),
        (
            "UPLINK__DATABASE__ACQUIRE_TIMEOUT",
            "5",
            &[
                "database.acquire_timeout",
                "`5` is not a duration",
                "`30s`, `5m`",
            ],
        ),
    ];
    for (var, value, expected) in cases {
        let output = uplink_command()
            .env("DATABASE_URL", UNREACHABLE)
            .env(var, value)
            .arg("check-config")
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{var}={value}");
        for text in expected {
            assert!(
                stderr.contains(text),
                "{var}={value}: wants {text:?}, got: {stderr}"
            );
        }
        assert!(!stderr.contains("enum "), "no Rust type names: {stderr}");
    }
    // The same from a file, which the message names.
    let output = uplink_command()
        .env("DATABASE_URL", UNREACHABLE)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    for text in ["auth.token_ttl", "`5` is not a duration", "`30s`, `5m`"] {
        assert!(stderr.contains(text), "wants {text:?}, got: {stderr}");
    }
}
