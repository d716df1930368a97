//! Local upload URLs replayed after the upload closed: a signed URL stays
//! valid until it expires, but only a `pending` upload accepts its body, so
//! content cannot change after `complete` checked it, and a deleted or
//! swept attachment's file is not re-created. Plus why S3 takes no lock.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::attachments::{AttachmentApp, Backend, Database, Presigned};
use crate::support::backend::on_both_databases;
use crate::support::responses::error_code;

on_both_databases!(
    upload_url_replayed_after_complete_is_refused,
    upload_url_replayed_after_delete_creates_nothing,
    upload_url_of_a_swept_upload_creates_nothing,
    upload_still_streaming_when_complete_runs_is_refused,
    s3_complete_holds_no_database_connection_while_storage_hangs,
);

const ALICE: &str = "alice";

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

/// Asks for an upload URL for `id` with `bytes.len()` declared and PUTs
/// `bytes`; returns the object key and the presigned request.
async fn put_once<P: Database>(
    t: &AttachmentApp<P>,
    id: &str,
    bytes: &[u8],
) -> (String, Presigned) {
    let body = ok_json(
        t.upload_url(
            ALICE,
            json!({"id": id, "filename": "a.png", "contentType": "image/png", "size": bytes.len()}),
        )
        .await,
    )
    .await;
    let presigned = Presigned::from_upload(&body);
    assert_eq!(presigned.put(bytes.to_vec()).await.status(), StatusCode::OK);
    (body["key"].as_str().expect("key").to_owned(), presigned)
}

async fn downloaded<P: Database>(t: &AttachmentApp<P>, id: &str) -> Vec<u8> {
    let download = ok_json(t.download_url(ALICE, id).await).await;
    let url = download["downloadUrl"].as_str().expect("downloadUrl");
    reqwest::get(url)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("bytes")
        .to_vec()
}

async fn assert_closed(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "upload_closed");
}

async fn upload_url_replayed_after_complete_is_refused<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
    let (key, presigned) = put_once(&t, "photo", b"checked").await;
    ok_json(t.complete(ALICE, "photo").await).await;

    assert_closed(presigned.put(b"swapped".to_vec()).await).await;

    assert_eq!(
        std::fs::read(t.stored_path(&key)).expect("object"),
        b"checked"
    );
    assert_eq!(downloaded(&t, "photo").await, b"checked");
}

async fn upload_url_replayed_after_delete_creates_nothing<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
    // Completed, then deleted.
    let (key, presigned) = put_once(&t, "gone", b"deleted").await;
    ok_json(t.complete(ALICE, "gone").await).await;
    assert_eq!(
        t.delete(ALICE, "gone").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_closed(presigned.put(b"revived".to_vec()).await).await;
    assert!(!t.stored_path(&key).exists(), "no file re-created");

    // Deleted before anything was uploaded.
    let body = ok_json(
        t.upload_url(
            ALICE,
            json!({"id": "never", "filename": "a.png", "contentType": "image/png", "size": 5}),
        )
        .await,
    )
    .await;
    assert_eq!(
        t.delete(ALICE, "never").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_closed(Presigned::from_upload(&body).put(b"late!".to_vec()).await).await;
    let key = body["key"].as_str().expect("key");
    assert!(!t.stored_path(key).exists(), "no file created");

    let left = t
        .app
        .db_pool
        .texts("SELECT state FROM uplink.attachments ORDER BY id")
        .await;
    assert_eq!(left, [Some("deleted".into()), Some("deleted".into())]);
}

async fn upload_url_of_a_swept_upload_creates_nothing<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
    let body = ok_json(
        t.upload_url(
            ALICE,
            json!({"id": "abandoned", "filename": "a.png", "contentType": "image/png", "size": 5}),
        )
        .await,
    )
    .await;
    t.age("attachments", "TRUE", 2 * 86400).await;
    let swept = t
        .replica()
        .await
        .remove_stale_uploads()
        .await
        .expect("sweep");
    assert_eq!(swept, 1);

    // No row is left to sweep a file put now: it must not be stored.
    assert_closed(Presigned::from_upload(&body).put(b"late!".to_vec()).await).await;
    assert!(!t.stored_path(body["key"].as_str().expect("key")).exists());
}

/// A replayed PUT that started while the upload was still pending and
/// finishes after `complete`: its body is received, but not put in place.
async fn upload_still_streaming_when_complete_runs_is_refused<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
    let (key, presigned) = put_once(&t, "raced", b"checked").await;

    let url = reqwest::Url::parse(&presigned.url).expect("upload URL");
    let mut head = format!(
        "PUT {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 7\r\nConnection: close\r\n",
        url.path(),
        url.query().expect("query"),
        url.authority()
    );
    for (name, value) in presigned
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut socket = tokio::net::TcpStream::connect(url.authority())
        .await
        .expect("connect");
    socket.write_all(head.as_bytes()).await.expect("headers");
    socket.write_all(b"swa").await.expect("part of the body");

    // The server has taken the upload (still pending) once its temporary
    // file exists.
    let temp_dir = t.app.data_dir.join("attachments").join(".tmp");
    while std::fs::read_dir(&temp_dir)
        .expect("temp dir")
        .next()
        .is_none()
    {
        tokio::select! {
            _ = socket.readable() => {
                let mut early = String::new();
                let _ = socket.read_to_string(&mut early).await;
                panic!("answered before the body was complete: {early}");
            }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    ok_json(t.complete(ALICE, "raced").await).await;

    socket.write_all(b"pped").await.expect("rest of the body");
    let mut response = String::new();
    socket
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(
        response.starts_with("HTTP/1.1 409"),
        "{}",
        response.lines().next().unwrap_or_default()
    );
    assert!(response.contains("upload_closed"), "{response}");
    assert_eq!(
        std::fs::read(t.stored_path(&key)).expect("object"),
        b"checked"
    );
    assert_eq!(downloaded(&t, "raced").await, b"checked");
    assert_eq!(
        std::fs::read_dir(&temp_dir).expect("temp dir").count(),
        0,
        "the refused body's temporary file is removed"
    );
}

/// S3 uploads never look at the row, so `complete` holds no transaction
/// across S3 requests: storage that stops answering must not take the
/// database pool with it.
async fn s3_complete_holds_no_database_connection_while_storage_hangs<P: Database>() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(());
        }
    });
    const POOL: u32 = 2;
    let t = AttachmentApp::<P>::spawn_with(Backend::S3, move |s| {
        s.attachments.s3.endpoint = Some(endpoint);
        s.database.max_connections = POOL;
    })
    .await;
    for i in 0..POOL {
        ok_json(
            t.upload_url(
                ALICE,
                json!({"id": format!("stuck-{i}"), "filename": "a.png"}),
            )
            .await,
        )
        .await;
    }
    let token = t.token(ALICE).await;
    for i in 0..POOL {
        let request = t
            .app
            .client
            .post(t.app.url(&format!("/api/attachments/stuck-{i}/complete")))
            .bearer_auth(&token);
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
    // Both completes are waiting on storage.
    for _ in 0..POOL {
        accepted.recv().await.expect("a storage request");
    }

    let other = t.download_url(ALICE, "stuck-0").await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(other).await, "not_uploaded");
}
