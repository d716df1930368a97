//! MariaDB refuses JSON nested 32 levels deep, and uplink keeps rejected
//! entries as JSON there: start-up refuses a body depth whose entries it
//! could not keep, and an entry nested to the limit is dead-lettered whole
//! (not a 500 the device would retry forever).

use serde_json::{Value, json};
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::support::app::{TestApp, with_admin_key};
use crate::support::fixtures::tables_from_yaml;

const TABLES: &str = "write:\n  tables:\n    items: {}\n";

/// An entry whose `qty` (an integer column) is `levels` nested arrays: the
/// body nests `levels + 4` deep (body, batch, entry, data).
fn nested_batch(levels: usize) -> Value {
    let mut qty = json!([]);
    for _ in 1..levels {
        qty = json!([qty]);
    }
    json!({"batch": [{"op": "PUT", "type": "items", "id": Uuid::new_v4().to_string(),
        "data": {"qty": qty}}]})
}

fn builder() -> crate::support::app::TestAppBuilder {
    TestApp::builder()
        .schema("CREATE TABLE items (id CHAR(36) PRIMARY KEY, qty INT)")
        .config(|s| {
            s.write.tables = tables_from_yaml(TABLES);
            with_admin_key(s);
        })
}

#[tokio::test]
async fn start_up_refuses_a_body_depth_mariadb_could_not_keep() {
    let error = builder()
        .config(|s| s.limits.max_json_depth = 33)
        .spawn_mysql_error()
        .await;

    assert!(error.contains("limits.max_json_depth"), "{error}");
    assert!(error.contains("above 32"), "{error}");
}

#[tokio::test]
async fn an_entry_nested_to_the_limit_is_dead_lettered_whole() {
    let app: TestApp<MySqlPool> = builder()
        .config(|s| s.limits.max_json_depth = 32)
        .spawn_mysql()
        .await;
    let token = app.token_for("alice").await;

    let too_deep = app.send_batch(&token, &nested_batch(29)).await;
    assert_eq!(too_deep.status(), 400, "33 levels: refused before parsing");
    let batch = nested_batch(28);
    let (status, _) = app.post_batch(&token, &batch).await;
    assert_eq!(status, 200, "32 levels: the entry is rejected and kept");

    let listed: Value = app
        .admin(reqwest::Method::GET, "/api/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["entries"][0]["data"], batch["batch"][0]["data"]);
}
