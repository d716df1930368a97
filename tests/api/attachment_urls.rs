//! The signed URLs: storage refuses a tampered, expired or mismatched upload,
//! and the URLs name the public endpoint (S3) or public URL (local) and
//! survive a restart.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uplink::config::Secret;

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, Presigned, json_ok, on_both_backends, request_upload,
};
use crate::support::backend::on_both_databases;
use crate::support::responses::error_code;

on_both_databases!(
    s3_urls_use_the_public_endpoint,
    local_urls_survive_a_restart_and_honour_public_url,
);

on_both_backends!(
    tampered_signature_is_refused_by_storage,
    expired_url_is_refused_by_storage,
    wrong_content_type_or_length_is_refused,
);

async fn tampered_signature_is_refused_by_storage<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn expired_url_is_refused_by_storage<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
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

async fn wrong_content_type_or_length_is_refused<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
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

async fn s3_urls_use_the_public_endpoint<P: Database>() {
    let t = AttachmentApp::<P>::spawn_with(Backend::S3, |s| {
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

async fn local_urls_survive_a_restart_and_honour_public_url<P: Database>() {
    let first = AttachmentApp::<P>::spawn(Backend::Local).await;
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
    let second = AttachmentApp::<P>::spawn_with(Backend::Local, move |s| {
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
