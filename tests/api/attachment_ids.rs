//! Attachment id squatting: ids are scoped per owner, so a user who sees
//! another user's `photo_id` and claims it first only makes an attachment
//! of their own. With the README's `read_sql` (which binds the attachment
//! to the row's owner with `$3`, the third `?` on MySQL) the other list
//! members download the owner's file, never the squatter's.

use serde_json::{Value, json};
use uplink::attachments::ReadPolicy;

use crate::support::attachments::{AttachmentApp, Backend, Database, Presigned, quoted};
use crate::support::backend::on_both_databases;

on_both_databases!(with_any_reader_two_owners_of_one_id_are_ambiguous_not_a_guess);

/// The list-sharing schema of the README's `read_sql` example.
const SCHEMA: &str = "
CREATE TABLE list_members (list_id text, user_id text);
CREATE TABLE todos (id varchar(64) PRIMARY KEY, list_id text, created_by text, photo_id text);
INSERT INTO list_members VALUES ('groceries', 'alice'), ('groceries', 'bob'), ('groceries', 'carol');
";

/// The README's and config/base.yaml's example, as documented.
const README_READ_SQL: &str = "SELECT EXISTS (SELECT 1 FROM list_members m JOIN todos t ON t.list_id = m.list_id \
     WHERE m.user_id = $1 AND t.photo_id = $2 AND t.created_by = $3)";

/// The README's example for MySQL: the same query with `?`s, bound in order.
const README_READ_SQL_MYSQL: &str = "SELECT EXISTS (SELECT 1 FROM list_members m JOIN todos t ON t.list_id = m.list_id \
     WHERE m.user_id = ? AND t.photo_id = ? AND t.created_by = ?)";

const PHOTO: &str = "5d1c7f0e-8a4b-4c55-9d4e-0e2b7a9c1f00";

async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `user` uploads `bytes` as attachment `PHOTO` and completes it.
async fn upload_photo<P: Database>(t: &AttachmentApp<P>, user: &str, bytes: &[u8]) {
    let request = json!({"id": PHOTO, "filename": "photo.png", "contentType": "image/png",
                         "size": bytes.len()});
    let body = ok(t.upload_url(user, request).await).await;
    let put = Presigned::from_upload(&body).put(bytes.to_vec()).await;
    assert!(put.status().is_success(), "{user}'s PUT: {}", put.status());
    ok(t.complete(user, PHOTO).await).await;
}

async fn downloaded_by<P: Database>(t: &AttachmentApp<P>, user: &str) -> Vec<u8> {
    let target = ok(t.download_url(user, PHOTO).await).await;
    let url = target["downloadUrl"].as_str().expect("downloadUrl");
    let response = reqwest::get(url).await.expect("GET the file");
    assert!(response.status().is_success());
    response.bytes().await.expect("bytes").to_vec()
}

async fn squatting<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Sql;
        s.attachments.read_sql =
            Some(P::dialect(README_READ_SQL, README_READ_SQL_MYSQL).to_owned());
    })
    .await;
    t.app.db_pool.execute(SCHEMA).await;
    // Alice's todo names her photo (synced to every list member) before her
    // device has uploaded it.
    t.app
        .db_pool
        .execute(&format!(
            "INSERT INTO todos VALUES ('t1', 'groceries', 'alice', {})",
            quoted(PHOTO)
        ))
        .await;

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

mod a_squatted_photo_id_serves_the_owners_file {
    use crate::support::attachments::{Backend, on_both_backends};

    use super::squatting;

    on_both_backends!(squatting);
}

async fn with_any_reader_two_owners_of_one_id_are_ambiguous_not_a_guess<P: Database>() {
    let t = AttachmentApp::<P>::spawn_with(Backend::Local, |s| {
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
