//! The example app (examples/todo, the to-do lists of the deployment's
//! demo), as shipped, on Postgres and on MySQL/MariaDB: its schema and rules
//! keep each user's lists and todos their own, and a todo names a photo
//! uploaded through the attachment routes, which only its owner may read.

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::app::TestApp;
use crate::support::backend::{Backend, on_both_databases};
use crate::support::fixtures::todo_example_on;
use crate::support::responses::error_code;

on_both_databases!(the_example_app_keeps_each_users_lists_todos_and_photos_their_own);

/// Sends `batch` as `user`'s device; returns the report.
async fn upload<P>(app: &TestApp<P>, user: &str, batch: Json) -> Json {
    let token = app.token_for(user).await;
    let (status, report) = app
        .post_batch(
            &token,
            &json!({"client_id": format!("{user}-device"), "batch": batch}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    report
}

/// A request to the attachment routes as `user`.
async fn attachments<P>(
    app: &TestApp<P>,
    method: reqwest::Method,
    user: &str,
    path: &str,
    body: Option<Json>,
) -> reqwest::Response {
    let token = app.token_for(user).await;
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/attachments{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request to uplink")
}

async fn json_ok(response: reqwest::Response) -> Json {
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).expect("a JSON body")
}

/// Uploads `bytes` as `user`'s photo `id` as a device's attachment queue
/// does: an upload URL, a PUT of the bytes to it, complete.
async fn upload_photo<P>(app: &TestApp<P>, user: &str, id: &str, bytes: &[u8]) {
    let upload = json_ok(
        attachments(
            app,
            reqwest::Method::POST,
            user,
            "/upload-url",
            Some(json!({"id": id, "filename": "photo.png", "contentType": "image/png", "size": bytes.len()})),
        )
        .await,
    )
    .await;
    let mut put = app
        .client
        .put(upload["uploadUrl"].as_str().expect("uploadUrl"));
    for (name, value) in upload["headers"].as_object().expect("headers") {
        if !name.eq_ignore_ascii_case("content-length") {
            put = put.header(name, value.as_str().expect("a header value"));
        }
    }
    let put = put
        .body(bytes.to_vec())
        .send()
        .await
        .expect("PUT to storage");
    assert!(put.status().is_success(), "PUT: {}", put.status());
    let path = format!("/{id}/complete");
    json_ok(attachments(app, reqwest::Method::POST, user, &path, None).await).await;
}

/// The bytes of photo `id` as `user` downloads them.
async fn download_photo<P>(app: &TestApp<P>, user: &str, id: &str) -> Vec<u8> {
    let path = format!("/{id}/download-url");
    let download = json_ok(attachments(app, reqwest::Method::GET, user, &path, None).await).await;
    let response = app
        .client
        .get(download["downloadUrl"].as_str().expect("downloadUrl"))
        .send()
        .await
        .expect("GET from storage");
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.expect("the bytes").to_vec()
}

async fn the_example_app_keeps_each_users_lists_todos_and_photos_their_own<P: Backend>() {
    let app = P::spawn(todo_example_on::<P>()).await;
    let (list, todo, bobs_list) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );

    // Alice's device uploads a photo, then the todo naming it
    // (todos.photo_id), as the SDK's AttachmentQueue does.
    let photo = uuid::Uuid::new_v4().to_string();
    let bytes: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    upload_photo(&app, "alice", &photo, &bytes).await;
    // As the demo apps do, Alice's device names itself in `created_by`; it
    // leaves `owner_id` out, which uplink fills in.
    let created = upload(
        &app,
        "alice",
        json!([
            {"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": list, "data": {"name": "Groceries"}},
            {"op_id": 2, "tx_id": 1, "op": "PUT", "type": "todos", "id": todo,
             "data": {"list_id": list, "description": "Milk", "created_by": "alice", "photo_id": photo}},
        ]),
    )
    .await;
    assert_eq!(created["applied"], 2, "{created}");
    let bob_created = upload(
        &app,
        "bob",
        json!([{"op_id": 1, "tx_id": 1, "op": "PUT", "type": "lists", "id": bobs_list, "data": {"name": "Bob's"}}]),
    )
    .await;
    assert_eq!(bob_created["applied"], 1, "{bob_created}");
    let bobs_photo = uuid::Uuid::new_v4().to_string();
    upload_photo(&app, "bob", &bobs_photo, b"bob's photo").await;

    // Alice's list and todo, one line each, and her photo's record.
    let alices = || async {
        app.db_pool
            .texts(
                "SELECT concat_ws(' | ', l.name, l.owner_id, t.description, t.created_by, t.list_id,
                        CASE WHEN t.completed THEN 'done' ELSE 'open' END, t.photo_id)
                   FROM lists l JOIN todos t ON t.list_id = l.id WHERE l.owner_id = 'alice'",
            )
            .await
    };
    let photo_record = || async {
        app.text(&format!(
            "SELECT concat_ws(' ', owner_id, state, size) FROM uplink.attachments WHERE id = '{photo}'"
        ))
        .await
    };
    let before = alices().await;
    assert_eq!(
        before,
        vec![Some(format!(
            "Groceries | alice | Milk | alice | {list} | open | {photo}"
        ))]
    );
    assert_eq!(
        photo_record().await,
        Some(format!("alice uploaded {}", bytes.len()))
    );
    assert_eq!(download_photo(&app, "alice", &photo).await, bytes);

    // Bob edits, reassigns, replaces and deletes Alice's todo and list, and
    // puts his photo on her todo.
    let attacks = [
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"completed": 1, "completed_by": "bob"}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"list_id": bobs_list}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"created_by": "bob"}}),
        json!({"op": "PATCH", "type": "todos", "id": todo, "data": {"photo_id": bobs_photo}}),
        json!({"op": "PUT", "type": "todos", "id": todo, "data": {"list_id": bobs_list, "description": "mine"}}),
        json!({"op": "DELETE", "type": "todos", "id": todo}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"name": "Bob's now"}}),
        json!({"op": "PATCH", "type": "lists", "id": list, "data": {"owner_id": "bob"}}),
        json!({"op": "PUT", "type": "lists", "id": list, "data": {"name": "replaced"}}),
        json!({"op": "DELETE", "type": "lists", "id": list}),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let mut entry = attack.clone();
        entry["op_id"] = json!(i + 2);
        entry["tx_id"] = json!(i + 2);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{attack} → {report}");
        assert_eq!(
            report["results"][0]["code"], "forbidden",
            "{attack} → {report}"
        );
    }

    // Nor does he put todos of his own into her list.
    let (own_todo, intruder) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let own = upload(
        &app,
        "bob",
        json!([{"op_id": 20, "tx_id": 20, "op": "PUT", "type": "todos", "id": own_todo,
                "data": {"list_id": bobs_list, "description": "Bob's", "photo_id": bobs_photo}}]),
    )
    .await;
    assert_eq!(own["applied"], 1, "{own}");
    let intrusions = [
        json!({"op": "PUT", "type": "todos", "id": intruder, "data": {"list_id": list, "description": "spam"}}),
        json!({"op": "PATCH", "type": "todos", "id": own_todo, "data": {"list_id": list}}),
    ];
    for (i, intrusion) in intrusions.iter().enumerate() {
        let mut entry = intrusion.clone();
        entry["op_id"] = json!(i + 21);
        entry["tx_id"] = json!(i + 21);
        let report = upload(&app, "bob", json!([entry])).await;
        assert_eq!(report["applied"], 0, "{intrusion} → {report}");
        assert_eq!(
            report["results"][0]["code"], "check_violation",
            "{intrusion} → {report}"
        );
    }

    // Nor may he read her photo (read_policy: owner), and deleting her
    // photo's id deletes only his own attachment of that id (none).
    let path = format!("/{photo}/download-url");
    let refused = attachments(&app, reqwest::Method::GET, "bob", &path, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(refused).await, "forbidden");
    let path = format!("/{photo}");
    let deleted = attachments(&app, reqwest::Method::DELETE, "bob", &path, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        alices().await,
        before,
        "Alice's list and todo are unchanged"
    );
    assert_eq!(
        photo_record().await,
        Some(format!("alice uploaded {}", bytes.len())),
        "Alice's photo is hers and still uploaded"
    );
    assert_eq!(download_photo(&app, "alice", &photo).await, bytes);
    let dead = app
        .number(
            "SELECT count(*) FROM uplink.dead_letters WHERE user_id = 'bob' AND code = 'forbidden'",
        )
        .await;
    assert_eq!(
        dead,
        attacks.len() as i64,
        "each refused entry is dead-lettered"
    );
}
