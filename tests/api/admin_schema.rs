//! Schema reload through the admin API: a new column becomes writable, and a
//! schema that no longer fits the configuration is refused with the reason.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::app::{TestApp, with_admin_key};

const NOTES: &str = "CREATE TABLE notes (id uuid PRIMARY KEY, body text)";

fn notes_allowed(settings: &mut uplink::settings::Settings) {
    settings.write.tables = BTreeMap::from([("notes".to_owned(), Default::default())]);
}

#[tokio::test]
async fn reloading_the_schema_makes_a_new_column_writable() {
    let app = TestApp::builder()
        .schema(NOTES)
        .config(notes_allowed)
        .config(with_admin_key)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    let with_color = |id: Uuid| json!({"batch": [{"op": "PUT", "type": "notes", "id": id.to_string(), "data": {"body": "b", "color": "red"}}]});
    sqlx::query("ALTER TABLE notes ADD COLUMN color text")
        .execute(&app.db_pool)
        .await
        .unwrap();
    let (_, before) = app.post_batch(&token, &with_color(Uuid::new_v4())).await;
    assert_eq!(before["rejected"], 1, "{before}");

    let reload = app
        .admin(reqwest::Method::POST, "/api/admin/schema/reload")
        .await;

    assert_eq!(reload.status(), 200);
    assert_eq!(
        reload.json::<Value>().await.unwrap(),
        json!({"reloaded": true})
    );
    let (_, after) = app.post_batch(&token, &with_color(Uuid::new_v4())).await;
    assert_eq!(after["applied"], 1, "{after}");
    assert_eq!(
        app.count("SELECT count(*) FROM notes WHERE color = 'red'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_schema_that_no_longer_fits_the_config_is_refused_with_the_reason() {
    let app = TestApp::builder()
        .schema(NOTES)
        .config(|s| {
            s.write.tables = BTreeMap::from([(
                "notes".to_owned(),
                uplink::upload::TableSettings {
                    columns: Some(vec!["body".to_owned()]),
                    ..Default::default()
                },
            )]);
        })
        .config(with_admin_key)
        .spawn()
        .await;
    let token = app.token_for("alice").await;
    sqlx::query("ALTER TABLE notes DROP COLUMN body")
        .execute(&app.db_pool)
        .await
        .unwrap();

    let reload = app
        .admin(reqwest::Method::POST, "/api/admin/schema/reload")
        .await;

    assert_eq!(reload.status(), 409);
    let body: Value = reload.json().await.unwrap();
    assert_eq!(body["error"]["code"], "schema_mismatch");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("body"),
        "{body}"
    );
    // The previous schema stays in use: a write of the column still reaches
    // the database, which refuses the missing column in the report.
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"batch": [{"op": "PUT", "type": "notes", "id": Uuid::new_v4().to_string(), "data": {"body": "hello"}}]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let result = &report["results"][0];
    assert_eq!(result["code"], "schema_mismatch", "{report}");
    assert!(
        result["message"]
            .as_str()
            .unwrap_or_default()
            .contains("body"),
        "{report}"
    );
    assert_eq!(app.count("SELECT count(*) FROM notes").await, 0);
}
