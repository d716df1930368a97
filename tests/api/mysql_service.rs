//! uplink's service on MySQL/MariaDB: checkpoints, health, and what start-up
//! refuses that MySQL lacks (or would misread).

use serde_json::{Value, json};

use crate::support::app::test_settings;
use crate::support::fixtures::tables_from_yaml;
use crate::support::mysql::spawn;

#[tokio::test]
async fn checkpoints_count_up_per_client() {
    let app = spawn().await;
    app.checkpoints_count_per_user_and_client(["alice", "bob"], ["device-1", "device-2"])
        .await;
}

#[tokio::test]
async fn health_reports_the_database_and_attachments_off() {
    let app = uplink_with_attachments_off().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "database": "ok", "storage": "disabled"})
    );
    let response = app
        .client
        .post(app.url("/api/attachments/upload-url"))
        .bearer_auth(app.token_for("alice").await)
        .json(&json!({"filename": "a.png", "content_type": "image/png", "size": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "attachment routes are not served");
}

#[test]
fn start_up_refuses_what_mysql_lacks_naming_the_key() {
    type Customize = fn(&mut uplink::settings::Settings);
    let cases: [(&str, Customize); 3] = [
        ("database.rls", |s| {
            s.database.rls = Some(uplink::config::RlsSettings { role: "app".into() });
        }),
        ("write.schema", |s| {
            s.write.schema = "sales".into();
        }),
        // A Postgres query: MySQL binds `?`s, and would misread `$1`.
        ("attachments.read_sql", |s| {
            s.attachments.read_policy = uplink::attachments::ReadPolicy::Sql;
            s.attachments.read_sql = Some(
                "SELECT EXISTS (SELECT 1 FROM shares WHERE user_id = $1 AND id = $2 \
                 AND owner_id = $3)"
                    .into(),
            );
        }),
    ];
    for (key, customize) in cases {
        let mut settings = test_settings("mysql://root@127.0.0.1:3306/app");
        customize(&mut settings);
        let err = settings.validate().expect_err(key).to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("MySQL"), "{key}: {err}");
    }
}

#[test]
fn every_policy_attachments_and_the_admin_api_are_accepted_on_mysql() {
    let mut settings = test_settings("mysql://root@127.0.0.1:3306/app");
    settings.admin.api_key_sha256 = Some("0".repeat(64));
    settings.write.tables = tables_from_yaml(
        "write: { tables: {
           stock: { delta_columns: [n] },
           notes: { conflict: { strategy: timestamp, column: at } },
           cards: { conflict: { strategy: field_timestamps } },
           orders: { transitions: { column: status, allowed: { a: [b] } },
                     locked_when: { column: status, values: [b] } } } }",
    );
    settings
        .validate()
        .expect("every policy is offered on MySQL");
}

/// The service with `attachments.enabled: false`.
async fn uplink_with_attachments_off() -> crate::support::app::TestApp<sqlx::MySqlPool> {
    crate::support::app::TestApp::builder()
        .config(|s| s.attachments.enabled = false)
        .spawn_mysql()
        .await
}
