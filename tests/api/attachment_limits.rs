//! What an upload request may ask for: filenames and owners that cannot
//! leave the key prefix, size and type limits, checked again on complete.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::attachments::{
    ALICE, AttachmentApp, BUCKET, Backend, Database, on_both_backends, request_upload, state_of,
};
use crate::support::responses::error_code;

on_both_backends!(
    hostile_filenames_and_owners_stay_under_the_prefix,
    request_limits,
    complete_rechecks_limits_and_removes_the_object,
);

async fn hostile_filenames_and_owners_stay_under_the_prefix<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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
    let filenames = t
        .app
        .db_pool
        .texts("SELECT filename FROM uplink.attachments ORDER BY id")
        .await;
    assert!(!filenames.is_empty());
    assert!(
        filenames
            .iter()
            .flatten()
            .all(|f| !f.chars().any(char::is_control))
    );
}

async fn request_limits<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
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

async fn complete_rechecks_limits_and_removes_the_object<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| s.attachments.max_size = 10).await;
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
