//! Attachment id squatting: ids are scoped per owner, so a user who sees
//! another user's `photo_id` and claims it first only makes an attachment
//! of their own. With the README's `read_sql` (which binds the attachment
//! to the row's owner with `$3`) the other list members download the
//! owner's file, never the squatter's.

use serde_json::{Value, json};
use uplink::attachments::ReadPolicy;

use crate::support::attachments::{AttachmentApp, Backend, Presigned};

/// The list-sharing schema of the README's `read_sql` example.
const SCHEMA: &str = "
CREATE TABLE list_members (list_id text, user_id text);
CREATE TABLE todos (id text PRIMARY KEY, list_id text, created_by text, photo_id text);
INSERT INTO list_members VALUES ('groceries', 'alice'), ('groceries', 'bob'), ('groceries', 'carol');
";

/// The README's and config/base.yaml's example, as documented.
const README_READ_SQL: &str = "SELECT EXISTS (SELECT 1 FROM list_members m JOIN todos t ON t.list_id = m.list_id \
     WHERE m.user_id = $1 AND t.photo_id = $2 AND t.created_by = $3)";

const PHOTO: &str = "5d1c7f0e-8a4b-4c55-9d4e-0e2b7a9c1f00";

async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `user` uploads `bytes` as attachment `PHOTO` and completes it.
async fn upload_photo(t: &AttachmentApp, user: &str, bytes: &[u8]) {
    let request = json!({"id": PHOTO, "filename": "photo.png", "contentType": "image/png",
                         "size": bytes.len()});
    let body = ok(t.upload_url(user, request).await).await;
    let put = Presigned::from_upload(&body).put(bytes.to_vec()).await;
    assert!(put.status().is_success(), "{user}'s PUT: {}", put.status());
    ok(t.complete(user, PHOTO).await).await;
}

async fn downloaded_by(t: &AttachmentApp, user: &str) -> Vec<u8> {
    let target = ok(t.download_url(user, PHOTO).await).await;
    let url = target["downloadUrl"].as_str().expect("downloadUrl");
    let response = reqwest::get(url).await.expect("GET the file");
    assert!(response.status().is_success());
    response.bytes().await.expect("bytes").to_vec()
}

async fn squatting(backend: Backend) {
    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Sql;
        s.attachments.read_sql = Some(README_READ_SQL.to_owned());
    })
    .await;
    sqlx::raw_sql(SCHEMA)
        .execute(&t.app.db_pool)
        .await
        .expect("schema");
    // Alice's todo names her photo (synced to every list member) before her
    // device has uploaded it.
    sqlx::query("INSERT INTO todos VALUES ('t1', 'groceries', 'alice', $1)")
        .bind(PHOTO)
        .execute(&t.app.db_pool)
        .await
        .expect("todo");

    // Bob, a list member, claims the id first with a file of his own.
    upload_photo(&t, "bob", b"bob's fake").await;
    let before_alice = t.download_url("carol", PHOTO).await;
    // Then Alice's device uploads the real photo.
    upload_photo(&t, "alice", b"alice's photo").await;

    assert_eq!(
        before_alice.status(),
        403,
        "{backend:?}: the squatter's file is not the todo's photo"
    );
    assert_eq!(downloaded_by(&t, "carol").await, b"alice's photo");
    assert_eq!(downloaded_by(&t, "alice").await, b"alice's photo");
    let outsider = t.download_url("mallory", PHOTO).await;
    assert_eq!(outsider.status(), 403, "not a list member");
}

#[tokio::test]
async fn a_squatted_photo_id_serves_the_owners_file_local() {
    squatting(Backend::Local).await;
}

#[tokio::test]
async fn a_squatted_photo_id_serves_the_owners_file_s3() {
    squatting(Backend::S3).await;
}

#[tokio::test]
async fn with_any_reader_two_owners_of_one_id_are_ambiguous_not_a_guess() {
    let t = AttachmentApp::spawn_with(Backend::Local, |s| {
        s.attachments.read_policy = ReadPolicy::Authenticated;
    })
    .await;
    upload_photo(&t, "bob", b"bob's fake").await;
    upload_photo(&t, "alice", b"alice's photo").await;

    let carol = t.download_url("carol", PHOTO).await;

    assert_eq!(carol.status(), 409);
    let body: Value = carol.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "ambiguous_attachment");
    assert_eq!(downloaded_by(&t, "alice").await, b"alice's photo");
}
