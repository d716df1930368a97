//! The attachment suite. Every scenario runs against both backends: `local`
//! (uplink serves the signed URLs) and `s3` (an in-process s3s-fs server that
//! checks SigV4 signatures with a fixed key pair).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use uplink::attachments::{Attachments, ReadPolicy};
use uplink::config::Secret;

use crate::support::attachments::{AttachmentApp, BUCKET, Backend, Presigned};
use crate::support::database::Outage;
use crate::support::responses::error_code;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Local).await })*
        }
        mod s3 {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::S3).await })*
        }
    };
}

on_both_backends!(
    upload_complete_download_round_trip,
    snake_case_fields_and_checksum,
    tampered_signature_is_refused_by_storage,
    expired_url_is_refused_by_storage,
    wrong_content_type_or_length_is_refused,
    another_users_id_names_only_their_own_attachment,
    requesting_again_is_idempotent,
    download_before_complete_is_not_uploaded,
    delete_twice_is_no_content,
    hostile_filenames_and_owners_stay_under_the_prefix,
    request_limits,
    complete_rechecks_limits_and_removes_the_object,
    read_policies,
    stale_pending_uploads_are_cleaned_up,
    concurrent_cleanups_split_the_work,
    readiness_reports_storage,
);

const ALICE: &str = "alice";
const BOB: &str = "bob";

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

async fn request_upload(t: &AttachmentApp, user: &str, body: Value) -> (Value, Presigned) {
    let body = json_ok(t.upload_url(user, body).await).await;
    let presigned = Presigned::from_upload(&body);
    (body, presigned)
}

/// Uploads `bytes` as `user` and completes; returns the attachment id and key.
async fn upload(t: &AttachmentApp, user: &str, filename: &str, bytes: &[u8]) -> (String, String) {
    let (body, presigned) = request_upload(
        t,
        user,
        json!({"filename": filename, "contentType": "image/png", "size": bytes.len()}),
    )
    .await;
    let put = presigned.put(bytes.to_vec()).await;
    assert!(put.status().is_success(), "PUT: {}", put.status());
    json_ok(t.complete(user, body["id"].as_str().expect("id")).await).await;
    (
        body["id"].as_str().expect("id").to_owned(),
        body["key"].as_str().expect("key").to_owned(),
    )
}

/// The state of alice's attachment `id` (ids are scoped per owner).
async fn state_of(t: &AttachmentApp, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM uplink.attachments WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(ALICE)
        .fetch_optional(&t.app.db_pool)
        .await
        .expect("query attachments")
}

async fn upload_round_trip_bytes(t: &AttachmentApp, bytes: &[u8], id: &str) -> Vec<u8> {
    let download = json_ok(t.download_url(ALICE, id).await).await;
    let url = download["downloadUrl"].as_str().expect("downloadUrl");
    let response = reqwest::get(url).await.expect("GET from storage");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let got = response.bytes().await.expect("bytes").to_vec();
    assert_eq!(got.len(), bytes.len());
    got
}

async fn upload_complete_download_round_trip(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1", "filename": "cat.PNG",
               "contentType": "image/png", "size": bytes.len()}),
    )
    .await;
    assert_eq!(body["id"], "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1");
    assert_eq!(
        body["key"],
        "attachments/alice/0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1.png"
    );
    assert_eq!(body["method"], "PUT");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expiresAt"].as_str().expect("expiresAt"))
            .expect("expiresAt is RFC 3339");
    let ttl = expires_at.signed_duration_since(chrono::Utc::now());
    assert!(
        ttl > chrono::Duration::minutes(14) && ttl <= chrono::Duration::minutes(15),
        "{ttl}"
    );
    let content_type = presigned
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some("image/png"));
    let upload_url = body["uploadUrl"].as_str().expect("uploadUrl");
    let signed = match t.backend {
        Backend::Local => "headers=content-length%3Bcontent-type",
        Backend::S3 => "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost",
    };
    assert!(upload_url.contains(signed), "{upload_url}");
    if t.backend == Backend::Local {
        // Request logs record URLs: a local upload URL alone grants nothing.
        assert!(!upload_url.contains("signature"), "{upload_url}");
    }
    assert_eq!(
        state_of(&t, "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1")
            .await
            .as_deref(),
        Some("pending")
    );

    let put = presigned.put(bytes.clone()).await;
    assert_eq!(put.status(), StatusCode::OK);
    let key = body["key"].as_str().expect("key");
    assert_eq!(
        std::fs::read(t.stored_path(key)).expect("stored object"),
        bytes
    );

    let completed = json_ok(
        t.complete(ALICE, "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1")
            .await,
    )
    .await;
    assert_eq!(completed["size"], bytes.len());
    assert_eq!(completed["contentType"], "image/png");
    assert_eq!(
        state_of(&t, "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1")
            .await
            .as_deref(),
        Some("uploaded")
    );

    let download = json_ok(
        t.download_url(ALICE, "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1")
            .await,
    )
    .await;
    assert_eq!(download["contentType"], "image/png");
    assert_eq!(download["size"], bytes.len());
    assert!(download["expiresAt"].is_string());
    let got = upload_round_trip_bytes(&t, &bytes, "0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1").await;
    assert_eq!(got, bytes);

    // The alias route answers the same.
    let alias = t
        .api(
            Method::GET,
            "/api/attachments/download-url/0b7e4bd6-51a4-4f4e-9f6e-3cc2a2b0d9a1",
            ALICE,
            None,
        )
        .await;
    assert_eq!(json_ok(alias).await["size"], bytes.len());
}

async fn snake_case_fields_and_checksum(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let bytes = b"checksummed bytes".to_vec();
    let digest = hex::encode(Sha256::digest(&bytes));

    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "sum-1", "filename": "a.png", "content_type": "image/png",
               "size": bytes.len(), "checksum_sha256": digest}),
    )
    .await;
    assert!(
        presigned
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("x-amz-checksum-sha256")),
        "checksum header is signed: {:?}",
        presigned.headers
    );
    // Same length, other bytes: storage rejects the body, and `complete`
    // does not accept whatever a store may have kept of it.
    let mut wrong = bytes.clone();
    wrong[0] ^= 1;
    let put = presigned.put(wrong).await;
    assert!(
        put.status().is_client_error(),
        "tampered body: {}",
        put.status()
    );
    let refused = t.complete(ALICE, "sum-1").await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let code = error_code(refused).await;
    assert!(
        code == "not_uploaded" || code == "checksum_mismatch",
        "{code}"
    );
    assert!(!t.stored_path(body["key"].as_str().expect("key")).exists());

    assert_eq!(presigned.put(bytes.clone()).await.status(), StatusCode::OK);
    let completed = json_ok(t.complete(ALICE, "sum-1").await).await;
    assert_eq!(completed["sha256"], digest);
}

async fn tampered_signature_is_refused_by_storage(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "tamper", "filename": "a.png", "contentType": "image/png", "size": 4}),
    )
    .await;
    let tampered = match t.backend {
        Backend::S3 => Presigned {
            url: flip_signature(&presigned.url),
            headers: presigned.headers.clone(),
        },
        // Local uploads carry their signature in a header, not the URL.
        Backend::Local => {
            let mut headers = presigned.headers.clone();
            let signature = headers
                .get_mut("x-uplink-signature")
                .expect("signature header");
            let flipped = if signature.ends_with('0') { '1' } else { '0' };
            signature.pop();
            signature.push(flipped);
            Presigned {
                url: presigned.url.clone(),
                headers,
            }
        }
    };
    assert_eq!(
        tampered.put(b"evil".to_vec()).await.status(),
        StatusCode::FORBIDDEN
    );
    let unsigned = Presigned {
        url: presigned.url.clone(),
        headers: presigned
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("x-uplink-signature"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    if t.backend == Backend::Local {
        assert_eq!(
            unsigned.put(b"evil".to_vec()).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    // Signed for another key: moving the signature to a new path fails too.
    let other_key = Presigned {
        url: presigned.url.replace("tamper.png", "tamper2.png"),
        headers: presigned.headers.clone(),
    };
    assert_eq!(
        other_key.put(b"evil".to_vec()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(!t.stored_path(body["key"].as_str().expect("key")).exists());
    assert_eq!(
        error_code(t.complete(ALICE, "tamper").await).await,
        "not_uploaded"
    );
}

/// Changes the last character of the signature query parameter.
fn flip_signature(url: &str) -> String {
    let (start, len) = ["X-Amz-Signature=", "signature="]
        .iter()
        .find_map(|p| url.find(p).map(|i| (i, p.len())))
        .expect("a signature parameter");
    let value_start = start + len;
    let value_end = url[value_start..]
        .find('&')
        .map_or(url.len(), |i| value_start + i);
    let last = &url[value_end - 1..value_end];
    let replacement = if last == "0" { "1" } else { "0" };
    format!(
        "{}{replacement}{}",
        &url[..value_end - 1],
        &url[value_end..]
    )
}

async fn expired_url_is_refused_by_storage(backend: Backend) {
    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.url_ttl = Duration::from_secs(1);
    })
    .await;
    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "late", "filename": "a.png", "contentType": "image/png", "size": 4}),
    )
    .await;
    // Expiry has one-second resolution in both backends.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        presigned.put(b"late".to_vec()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(!t.stored_path(body["key"].as_str().expect("key")).exists());
}

async fn wrong_content_type_or_length_is_refused(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "strict", "filename": "a.png", "contentType": "image/png", "size": 5}),
    )
    .await;
    let other_type = presigned
        .put_with(b"12345".to_vec(), |headers| {
            for (name, value) in headers.iter_mut() {
                if name.eq_ignore_ascii_case("content-type") {
                    *value = "text/html".to_owned();
                }
            }
        })
        .await;
    assert!(
        other_type.status().is_client_error(),
        "other type: {}",
        other_type.status()
    );
    let longer = presigned.put(b"123456".to_vec()).await;
    assert!(
        longer.status().is_client_error(),
        "longer body: {}",
        longer.status()
    );
    let shorter = presigned.put(b"1234".to_vec()).await;
    assert!(
        shorter.status().is_client_error(),
        "shorter body: {}",
        shorter.status()
    );
    assert!(!t.stored_path(body["key"].as_str().expect("key")).exists());
    assert_eq!(
        error_code(t.complete(ALICE, "strict").await).await,
        "not_uploaded"
    );
}

async fn another_users_id_names_only_their_own_attachment(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let (id, key) = upload(&t, ALICE, "mine.png", b"alice's").await;

    // Ids are scoped per owner: Bob asking for Alice's id gets his own
    // attachment under his own key, never a way to Alice's.
    let (bobs, _) = request_upload(
        &t,
        BOB,
        json!({"id": id, "filename": "x.png", "contentType": "image/png"}),
    )
    .await;
    let bobs_key = bobs["key"].as_str().expect("key");
    assert_ne!(bobs_key, key);
    assert!(bobs_key.contains("/bob/"), "{bobs_key}");
    let complete = t.complete(BOB, &id).await;
    assert_eq!(error_code(complete).await, "not_uploaded", "his, empty");
    assert_eq!(t.delete(BOB, &id).await.status(), StatusCode::NO_CONTENT);
    let download = t.download_url(BOB, &id).await;
    assert_eq!(
        download.status(),
        StatusCode::FORBIDDEN,
        "read_policy: owner"
    );
    assert_eq!(error_code(download).await, "forbidden");
    // Alice's object and record are untouched.
    assert_eq!(
        std::fs::read(t.stored_path(&key)).expect("object"),
        b"alice's"
    );
    assert_eq!(state_of(&t, &id).await.as_deref(), Some("uploaded"));

    let anonymous = t
        .app
        .client
        .post(t.app.url("/api/attachments/upload-url"))
        .json(&json!({"filename": "x.png"}))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn requesting_again_is_idempotent(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let request =
        json!({"id": "retry-1", "filename": "a.png", "contentType": "image/png", "size": 3});
    let (first, _) = request_upload(&t, ALICE, request.clone()).await;
    let (second, presigned) = request_upload(&t, ALICE, request).await;
    assert_eq!(first["key"], second["key"]);
    assert_eq!(second["id"], "retry-1");
    // The newest URL works; one row exists.
    assert_eq!(
        presigned.put(b"abc".to_vec()).await.status(),
        StatusCode::OK
    );
    json_ok(t.complete(ALICE, "retry-1").await).await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM uplink.attachments WHERE id = 'retry-1'")
            .fetch_one(&t.app.db_pool)
            .await
            .expect("count");
    assert_eq!(rows, 1);
    // Without an id the server makes one.
    let (generated, _) = request_upload(&t, ALICE, json!({"filename": "b.png"})).await;
    assert!(uuid::Uuid::parse_str(generated["id"].as_str().expect("id")).is_ok());
}

async fn download_before_complete_is_not_uploaded(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let (_, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "early", "filename": "a.png", "contentType": "image/png", "size": 2}),
    )
    .await;
    let early = t.download_url(ALICE, "early").await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(early).await, "not_uploaded");
    // Uploaded but not completed is still not downloadable.
    assert_eq!(presigned.put(b"ab".to_vec()).await.status(), StatusCode::OK);
    assert_eq!(
        error_code(t.download_url(ALICE, "early").await).await,
        "not_uploaded"
    );

    let missing = t.download_url(ALICE, "no-such-id").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "not_found");
    let bad = t.download_url(ALICE, "bad.id").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad).await, "invalid_id");
}

async fn delete_twice_is_no_content(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let (id, key) = upload(&t, ALICE, "bye.png", b"bye").await;
    assert!(t.stored_path(&key).exists());

    assert_eq!(t.delete(ALICE, &id).await.status(), StatusCode::NO_CONTENT);
    assert!(!t.stored_path(&key).exists(), "object removed from storage");
    assert_eq!(state_of(&t, &id).await.as_deref(), Some("deleted"));
    assert_eq!(t.delete(ALICE, &id).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        t.delete(ALICE, "never-existed").await.status(),
        StatusCode::NO_CONTENT
    );
    let gone = t.download_url(ALICE, &id).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Another user's upload under the id is theirs; Alice's stays deleted.
    let (bobs, _) = request_upload(&t, BOB, json!({"id": id, "filename": "x.png"})).await;
    assert_ne!(bobs["key"].as_str(), Some(key.as_str()));
    assert_eq!(state_of(&t, &id).await.as_deref(), Some("deleted"));
}

async fn hostile_filenames_and_owners_stay_under_the_prefix(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let root = match &t.s3 {
        Some(s3) => s3.root.join(BUCKET),
        None => t.app.data_dir.join("attachments"),
    };
    let cases = [
        (ALICE, "../../../../etc/passwd"),
        (ALICE, "a/b/../../c.png"),
        (ALICE, "..\\..\\windows\\system32.exe"),
        (ALICE, "evil\u{0}.png\n\r.sh"),
        (ALICE, "/absolute/path.png"),
        ("../../escape", "x.png"),
        ("a/b", "y.png"),
        ("..", "z.png"),
    ];
    for (i, (user, filename)) in cases.iter().enumerate() {
        let id = format!("hostile-{i}");
        let (body, presigned) = request_upload(
            &t,
            user,
            json!({"id": id, "filename": filename, "contentType": "image/png", "size": 3}),
        )
        .await;
        let key = body["key"].as_str().expect("key");
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 3, "{filename:?} by {user:?} gave {key}");
        assert_eq!(parts[0], "attachments");
        assert!(!parts[1].is_empty() && !parts[1].starts_with('.'), "{key}");
        assert!(parts[2].starts_with(&format!("{id}.")), "{key}");
        assert!(
            !key.contains("..") && !key.chars().any(char::is_control),
            "{key}"
        );

        assert_eq!(
            presigned.put(b"abc".to_vec()).await.status(),
            StatusCode::OK
        );
        let stored = t.stored_path(key).canonicalize().expect("stored object");
        assert!(
            stored.starts_with(root.join("attachments").canonicalize().expect("prefix dir")),
            "{} escaped",
            stored.display()
        );
        let done = t.complete(user, &id).await;
        assert_eq!(done.status(), StatusCode::OK);
    }
    let filenames: Vec<String> =
        sqlx::query_scalar("SELECT filename FROM uplink.attachments ORDER BY id")
            .fetch_all(&t.app.db_pool)
            .await
            .expect("filenames");
    assert!(filenames.iter().all(|f| !f.chars().any(char::is_control)));
}

async fn request_limits(backend: Backend) {
    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.max_size = 10;
        s.attachments.allowed_content_types = vec!["image/*".into(), "application/pdf".into()];
    })
    .await;
    let cases = [
        (
            json!({"filename": "a.png", "contentType": "image/png", "size": 11}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            json!({"filename": "a.html", "contentType": "text/html", "size": 1}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json!({"filename": "a.exe"}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json!({"filename": "a.png", "contentType": "not a type"}),
            StatusCode::BAD_REQUEST,
            "invalid_content_type",
        ),
        (
            json!({"filename": "a.png", "checksumSha256": "nope"}),
            StatusCode::BAD_REQUEST,
            "invalid_checksum",
        ),
        (
            json!({"filename": "a.png", "id": "../../x"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({"filename": "a.png", "size": -1}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"contentType": "image/png"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let response = t.upload_url(ALICE, body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    for allowed in [
        json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}),
        json!({"filename": "a.pdf"}),
    ] {
        assert_eq!(
            t.upload_url(ALICE, allowed.clone()).await.status(),
            StatusCode::OK,
            "{allowed}"
        );
    }
}

async fn complete_rechecks_limits_and_removes_the_object(backend: Backend) {
    let t = AttachmentApp::spawn_with(backend, |s| s.attachments.max_size = 10).await;
    // No size declared: nothing about the length is signed but the cap.
    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "big", "filename": "a.png", "contentType": "image/png"}),
    )
    .await;
    let key = body["key"].as_str().expect("key").to_owned();
    let put = presigned.put(vec![7u8; 11]).await;
    match backend {
        // uplink enforces the signed cap while receiving.
        Backend::Local => assert_eq!(put.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // S3 cannot cap an unsigned length: `complete` catches it.
        Backend::S3 => assert_eq!(put.status(), StatusCode::OK),
    }
    let done = t.complete(ALICE, "big").await;
    match backend {
        Backend::Local => assert_eq!(error_code(done).await, "not_uploaded"),
        Backend::S3 => {
            assert_eq!(done.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(error_code(done).await, "payload_too_large");
        }
    }
    assert!(!t.stored_path(&key).exists(), "offending object removed");
    assert_eq!(state_of(&t, "big").await.as_deref(), Some("pending"));
    assert_eq!(
        error_code(t.download_url(ALICE, "big").await).await,
        "not_uploaded"
    );
}

async fn read_policies(backend: Backend) {
    // owner (default) is covered by another_users_id_names_only_their_own_attachment.
    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Authenticated;
    })
    .await;
    let (id, _) = upload(&t, ALICE, "shared.png", b"for all").await;
    json_ok(t.download_url(BOB, &id).await).await;
    // Bob has no attachment of that id: deleting it touches nothing of Alice's.
    assert_eq!(t.delete(BOB, &id).await.status(), StatusCode::NO_CONTENT);
    json_ok(t.download_url(BOB, &id).await).await;

    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Sql;
        s.attachments.read_sql = Some(
            "SELECT EXISTS (SELECT 1 FROM shares WHERE shares.user_id = $1 \
             AND shares.attachment_id = $2 AND shares.owner_id = $3);"
                .into(),
        );
    })
    .await;
    sqlx::raw_sql("CREATE TABLE shares (attachment_id text, owner_id text, user_id text)")
        .execute(&t.app.db_pool)
        .await
        .expect("shares table");
    let (id, _) = upload(&t, ALICE, "doc.png", b"private").await;
    assert_eq!(
        t.download_url(BOB, &id).await.status(),
        StatusCode::FORBIDDEN
    );
    sqlx::query("INSERT INTO shares VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(ALICE)
        .bind(BOB)
        .execute(&t.app.db_pool)
        .await
        .expect("share");
    let shared = json_ok(t.download_url(BOB, &id).await).await;
    let got = reqwest::get(shared["downloadUrl"].as_str().expect("url"))
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"private");
    assert_eq!(
        t.download_url("carol", &id).await.status(),
        StatusCode::FORBIDDEN
    );
}

/// Leaves a pending upload with its object stored, aged by `age`.
async fn stale_pending(t: &AttachmentApp, id: &str, age: &str) -> String {
    let (body, presigned) = request_upload(
        t,
        ALICE,
        json!({"id": id, "filename": "p.png", "contentType": "image/png", "size": 1}),
    )
    .await;
    assert_eq!(presigned.put(b"p".to_vec()).await.status(), StatusCode::OK);
    sqlx::query("UPDATE uplink.attachments SET updated_at = now() - $2::interval WHERE id = $1")
        .bind(id)
        .bind(age)
        .execute(&t.app.db_pool)
        .await
        .expect("age the row");
    body["key"].as_str().expect("key").to_owned()
}

async fn cleaner(t: &AttachmentApp) -> Attachments {
    Attachments::new(
        &t.app.settings.attachments,
        &t.app.settings.server.data_dir,
        t.app.settings.limits.trust_forwarded_for,
        &t.app.db_pool,
        &t.app.own(),
    )
    .await
    .expect("attachments for the cleanup task")
}

async fn stale_pending_uploads_are_cleaned_up(backend: Backend) {
    let t = AttachmentApp::spawn_with(backend, |s| {
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3600);
    })
    .await;
    let stale_key = stale_pending(&t, "stale", "2 hours").await;
    let fresh_key = stale_pending(&t, "fresh", "10 minutes").await;
    let (done_id, done_key) = upload(&t, ALICE, "done.png", b"keep me").await;
    sqlx::query(
        "UPDATE uplink.attachments SET updated_at = now() - interval '2 days' WHERE id = $1",
    )
    .bind(&done_id)
    .execute(&t.app.db_pool)
    .await
    .expect("age the completed row");

    // A temporary file a crash left behind (local backend).
    let temp_dir = t.app.data_dir.join("attachments").join(".tmp");
    let crashed = temp_dir.join("crashed-upload");
    let in_flight = temp_dir.join("in-flight-upload");
    if backend == Backend::Local {
        std::fs::write(&crashed, b"partial").expect("temp file");
        std::fs::File::options()
            .write(true)
            .open(&crashed)
            .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200)))
            .expect("age the temp file");
        std::fs::write(&in_flight, b"partial").expect("temp file");
    }

    let removed = cleaner(&t)
        .await
        .remove_stale_uploads()
        .await
        .expect("cleanup");

    if backend == Backend::Local {
        assert!(!crashed.exists(), "stale temporary file removed");
        assert!(in_flight.exists(), "a recent temporary file stays");
    }

    assert_eq!(removed, 1);
    assert_eq!(state_of(&t, "stale").await, None);
    assert!(!t.stored_path(&stale_key).exists(), "stale object removed");
    assert_eq!(state_of(&t, "fresh").await.as_deref(), Some("pending"));
    assert!(t.stored_path(&fresh_key).exists());
    assert_eq!(state_of(&t, &done_id).await.as_deref(), Some("uploaded"));
    assert_eq!(
        std::fs::read(t.stored_path(&done_key)).expect("kept"),
        b"keep me"
    );
    json_ok(t.download_url(ALICE, &done_id).await).await;
}

async fn concurrent_cleanups_split_the_work(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    sqlx::query(
        "INSERT INTO uplink.attachments (id, owner_id, object_key, filename, content_type, state, updated_at)
         SELECT 'bulk-' || i, 'alice', 'attachments/alice/bulk-' || i || '.png', 'p.png', 'image/png',
                'pending', now() - interval '3 days'
         FROM generate_series(1, 250) AS i",
    )
    .execute(&t.app.db_pool)
    .await
    .expect("stale rows");
    let (a, b) = (cleaner(&t).await, cleaner(&t).await);
    let (ra, rb) = tokio::join!(a.remove_stale_uploads(), b.remove_stale_uploads());
    let total = ra.expect("first cleanup") + rb.expect("second cleanup");
    assert_eq!(total, 250, "each stale row removed exactly once");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM uplink.attachments")
        .fetch_one(&t.app.db_pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

async fn readiness_reports_storage(backend: Backend) {
    let t = AttachmentApp::spawn(backend).await;
    let ready = t.app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["storage"], "ok", "{body}");
}

#[tokio::test]
async fn s3_urls_use_the_public_endpoint() {
    let t = AttachmentApp::spawn_with(Backend::S3, |s| {
        let internal = s.attachments.s3.endpoint.clone().expect("endpoint");
        s.attachments.s3.public_endpoint = Some(internal.replace("127.0.0.1", "localhost"));
    })
    .await;
    let (body, presigned) = request_upload(
        &t,
        ALICE,
        json!({"id": "pub", "filename": "a.png", "contentType": "image/png", "size": 3}),
    )
    .await;
    assert!(
        presigned.url.starts_with("http://localhost:"),
        "{}",
        presigned.url
    );
    // Signed for the public host, and storage accepts it there.
    assert_eq!(
        presigned.put(b"pub".to_vec()).await.status(),
        StatusCode::OK
    );
    json_ok(t.complete(ALICE, "pub").await).await;
    let download = json_ok(t.download_url(ALICE, "pub").await).await;
    assert!(
        download["downloadUrl"]
            .as_str()
            .expect("url")
            .starts_with("http://localhost:")
    );
    assert!(t.stored_path(body["key"].as_str().expect("key")).exists());
}

#[tokio::test]
async fn unreachable_s3_is_not_ready_and_complete_answers_503() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let t = AttachmentApp::spawn_with(Backend::S3, move |s| {
        s.attachments.s3.endpoint = Some(format!("http://127.0.0.1:{closed_port}"));
    })
    .await;
    let ready = t.app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(ready).await, "unavailable");

    // Signing needs no network; the storage round trip of `complete` does.
    request_upload(&t, ALICE, json!({"id": "down", "filename": "a.png"})).await;
    let complete = t.complete(ALICE, "down").await;
    assert_eq!(complete.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(complete.headers().contains_key("retry-after"));
    assert_eq!(state_of(&t, "down").await.as_deref(), Some("pending"));
}

#[tokio::test]
async fn database_down_answers_503_and_records_nothing() {
    let t = AttachmentApp::spawn(Backend::Local).await;
    let token = t.token(ALICE).await;
    let outage = Outage::begin(&t.app.db_name).await;

    let response = t
        .app
        .client
        .post(t.app.url("/api/attachments/upload-url"))
        .bearer_auth(&token)
        .json(&json!({"id": "offline", "filename": "a.png"}))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "unavailable");
    outage.end().await;
    let check = sqlx::PgPool::connect(&t.app.db_url)
        .await
        .expect("reconnect");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM uplink.attachments")
        .fetch_one(&check)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    // The retry succeeds once the database is back.
    assert_eq!(
        t.upload_url(ALICE, json!({"id": "offline", "filename": "a.png"}))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_periodic_task_sweeps_on_its_own() {
    let t = AttachmentApp::spawn_with(Backend::Local, |s| {
        s.attachments.cleanup.interval = Duration::from_millis(200);
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3600);
    })
    .await;
    let stale_key = stale_pending(&t, "swept", "2 hours").await;
    let (done_id, done_key) = upload(&t, ALICE, "done.png", b"stays").await;
    // A generous bound: the task runs every 200 ms.
    let mut waited = Duration::ZERO;
    while state_of(&t, "swept").await.is_some() {
        assert!(
            waited < Duration::from_secs(30),
            "the periodic cleanup never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert!(!t.stored_path(&stale_key).exists());
    assert_eq!(state_of(&t, &done_id).await.as_deref(), Some("uploaded"));
    assert!(t.stored_path(&done_key).exists());
}

#[tokio::test]
async fn concurrent_first_requests_for_one_id_all_succeed() {
    let t = AttachmentApp::spawn(Backend::Local).await;
    let token = t.token(ALICE).await;
    let requests = (0..16).map(|_| {
        t.app
            .client
            .post(t.app.url("/api/attachments/upload-url"))
            .bearer_auth(&token)
            .json(&json!({"id": "raced", "filename": "a.png", "contentType": "image/png"}))
            .send()
    });
    for response in futures_util::future::join_all(requests).await {
        let response = response.expect("request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?}",
            response.text().await
        );
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM uplink.attachments WHERE id = 'raced'")
            .fetch_one(&t.app.db_pool)
            .await
            .expect("count");
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn local_urls_survive_a_restart_and_honour_public_url() {
    let first = AttachmentApp::spawn(Backend::Local).await;
    let data_dir = first.app.data_dir.clone();
    let (_, presigned) = request_upload(
        &first,
        ALICE,
        json!({"id": "kept", "filename": "a.png", "contentType": "image/png", "size": 4}),
    )
    .await;
    let secret_file = data_dir.join("attachments-hmac-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("generated secret")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the generated secret is private to its owner"
        );
    }
    first.app.stop().await;

    // Same data directory and database: the generated secret is reused, so
    // a URL issued before the restart still works after it.
    let shared_dir = data_dir.clone();
    let shared_db = first.app.db_url.clone();
    let second = AttachmentApp::spawn_with(Backend::Local, move |s| {
        s.server.data_dir = shared_dir;
        s.database.url = Some(Secret::new(shared_db));
        s.attachments.local.public_url = Some("http://files.example.test/".to_owned());
    })
    .await;
    let moved = Presigned {
        url: presigned
            .url
            .replace(&first.app.address, &second.app.address),
        headers: presigned.headers.clone(),
    };
    assert_eq!(moved.put(b"kept".to_vec()).await.status(), StatusCode::OK);

    let (body, _) =
        request_upload(&second, ALICE, json!({"id": "public", "filename": "a.png"})).await;
    let url = body["uploadUrl"].as_str().expect("uploadUrl");
    assert!(
        url.starts_with(
            "http://files.example.test/api/attachments/files/attachments/alice/public.png?"
        ),
        "{url}"
    );
}
