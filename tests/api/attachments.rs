//! The attachment lifecycle: request an upload URL, upload, complete,
//! download, delete, and who may read what. Every scenario runs against both
//! backends: `local` (uplink serves the signed URLs) and `s3` (an in-process
//! s3s-fs server that checks SigV4 signatures with a fixed key pair).

use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use uplink::attachments::ReadPolicy;

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, json_ok, on_both_backends, quoted, request_upload,
    state_of, upload,
};
use crate::support::backend::on_both_databases;
use crate::support::responses::error_code;

on_both_backends!(
    upload_complete_download_round_trip,
    snake_case_fields_and_checksum,
    another_users_id_names_only_their_own_attachment,
    requesting_again_is_idempotent,
    download_before_complete_is_not_uploaded,
    delete_twice_is_no_content,
    read_policies,
);
on_both_databases!(concurrent_first_requests_for_one_id_all_succeed);

const BOB: &str = "bob";

async fn upload_round_trip_bytes<P: Database>(
    t: &AttachmentApp<P>,
    bytes: &[u8],
    id: &str,
) -> Vec<u8> {
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

async fn upload_complete_download_round_trip<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn snake_case_fields_and_checksum<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn another_users_id_names_only_their_own_attachment<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn requesting_again_is_idempotent<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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
    let rows = t
        .app
        .number("SELECT count(*) FROM uplink.attachments WHERE id = 'retry-1'")
        .await;
    assert_eq!(rows, 1);
    // Without an id the server makes one.
    let (generated, _) = request_upload(&t, ALICE, json!({"filename": "b.png"})).await;
    assert!(uuid::Uuid::parse_str(generated["id"].as_str().expect("id")).is_ok());
}

async fn download_before_complete_is_not_uploaded<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn delete_twice_is_no_content<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn read_policies<P: Database>(backend: Backend) {
    // owner (default) is covered by another_users_id_names_only_their_own_attachment.
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Authenticated;
    })
    .await;
    let (id, _) = upload(&t, ALICE, "shared.png", b"for all").await;
    json_ok(t.download_url(BOB, &id).await).await;
    // Bob has no attachment of that id: deleting it touches nothing of Alice's.
    assert_eq!(t.delete(BOB, &id).await.status(), StatusCode::NO_CONTENT);
    json_ok(t.download_url(BOB, &id).await).await;

    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.read_policy = ReadPolicy::Sql;
        // Postgres numbers its parameters; MySQL binds its `?`s in order.
        let read_sql = P::dialect(
            "SELECT EXISTS (SELECT 1 FROM shares WHERE shares.user_id = $1 \
             AND shares.attachment_id = $2 AND shares.owner_id = $3);",
            "SELECT EXISTS (SELECT 1 FROM shares WHERE shares.user_id = ? \
             AND shares.attachment_id = ? AND shares.owner_id = ?);",
        );
        s.attachments.read_sql = Some(read_sql.into());
    })
    .await;
    t.app
        .db_pool
        .execute("CREATE TABLE shares (attachment_id text, owner_id text, user_id text)")
        .await;
    let (id, _) = upload(&t, ALICE, "doc.png", b"private").await;
    assert_eq!(
        t.download_url(BOB, &id).await.status(),
        StatusCode::FORBIDDEN
    );
    t.app
        .db_pool
        .execute(&format!(
            "INSERT INTO shares VALUES ({}, {}, {})",
            quoted(&id),
            quoted(ALICE),
            quoted(BOB)
        ))
        .await;
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

async fn concurrent_first_requests_for_one_id_all_succeed<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
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
    let rows = t
        .app
        .number("SELECT count(*) FROM uplink.attachments WHERE id = 'raced'")
        .await;
    assert_eq!(rows, 1);
}
