//! Attachment URLs under attack, on both backends: a signed URL re-aimed at
//! another user's object or outside the key prefix, a download URL replayed
//! after it expired, scriptable uploads opened from their download URL,
//! forged forwarded-host headers, and local uploads dripped in slowly.
//! (Tampered signatures and a different Content-Type are in attachments.rs;
//! upload URLs replayed after complete or delete in attachment_replay.rs.)

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::attachments::{AttachmentApp, Backend, Database, Presigned};
use crate::support::backend::on_both_databases;

on_both_databases!(
    signed_urls_cannot_be_re_aimed_or_replayed_local,
    signed_urls_cannot_be_re_aimed_or_replayed_s3,
    local_urls_ignore_forwarded_host_unless_trusted,
    scriptable_uploads_download_as_files_local,
    scriptable_uploads_download_as_files_s3,
    a_slow_drip_upload_is_cut_off_and_leaves_no_temporary_file,
);

async fn ok_json(response: reqwest::Response) -> Value {
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("JSON body")
}

async fn attacks<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.url_ttl = Duration::from_secs(2);
    })
    .await;
    let alice = ok_json(
        t.upload_url(
            "alice",
            json!({"filename": "a.png", "contentType": "image/png", "size": 7}),
        )
        .await,
    )
    .await;
    let put = Presigned::from_upload(&alice)
        .put(b"alice's".to_vec())
        .await;
    assert!(
        put.status().is_success(),
        "alice's upload: {}",
        put.status()
    );
    let alice_id = alice["id"].as_str().expect("id");
    let alice_key = alice["key"].as_str().expect("key").to_owned();
    ok_json(t.complete("alice", alice_id).await).await;
    let bob = ok_json(
        t.upload_url(
            "bob",
            json!({"filename": "b.png", "contentType": "image/png", "size": 7}),
        )
        .await,
    )
    .await;
    let bob_key = bob["key"].as_str().expect("key").to_owned();
    let bob_upload = Presigned::from_upload(&bob);
    assert!(
        bob_upload.url.contains(&bob_key),
        "the URL names the key: {}",
        bob_upload.url.split('?').next().unwrap_or_default()
    );

    // Bob's signed upload re-aimed at Alice's object, or outside the prefix,
    // sent byte for byte as written (an HTTP client would resolve the dots).
    let prefix = bob_key.split('/').next().expect("a prefix");
    let outside = format!("outside-{}.png", uuid::Uuid::new_v4().simple());
    let root = t.stored_path("");
    // Where `../../{outside}` lands if a backend follows it: next to the
    // directory that holds the storage directory.
    let escaped = root
        .parent()
        .and_then(|p| p.parent())
        .expect("a parent")
        .join(&outside);
    let targets = [
        alice_key.clone(),
        format!("../{outside}"),
        format!("../../{outside}"),
        format!("%2e%2e/%2e%2e/{outside}"),
        format!("..%2f..%2f{outside}"),
        "elsewhere/bob/b.png".to_owned(),
        format!("{prefix}/bob/../alice/x.png"),
    ];
    for target in &targets {
        let retargeted = Presigned {
            url: bob_upload.url.replace(&bob_key, target),
            headers: bob_upload.headers.clone(),
        };
        let (authority, head) = retargeted.raw_put_head(7);
        let (status, body) = raw_exchange(&authority, &head, b"evil!!!").await;
        assert!(
            (400..500).contains(&status),
            "{backend:?}: PUT re-aimed at {target} answered {status}: {body}"
        );
        for path in [
            resolved(&t.stored_path(target)),
            resolved(&t.stored_path(&target.replace("%2e", ".").replace("%2f", "/"))),
        ] {
            if path != resolved(&t.stored_path(&alice_key)) {
                assert!(
                    !path.exists(),
                    "{backend:?}: PUT re-aimed at {target} wrote {}",
                    path.display()
                );
            }
        }
    }
    assert!(
        !escaped.exists(),
        "{backend:?}: wrote {}",
        escaped.display()
    );
    assert_eq!(
        std::fs::read(t.stored_path(&alice_key)).expect("alice's object"),
        b"alice's",
        "alice's object is untouched"
    );
    assert!(!t.stored_path(&bob_key).exists());

    // Alice's download URL re-aimed at another key or at a file outside
    // the storage directory.
    let download = ok_json(t.download_url("alice", alice_id).await).await;
    let url = download["downloadUrl"].as_str().expect("downloadUrl");
    assert_eq!(reqwest::get(url).await.expect("GET").status(), 200);
    std::fs::write(&escaped, b"outside secret").expect("a file outside the storage");
    for target in [
        bob_key.clone(),
        format!("../../{outside}"),
        format!("%2e%2e/%2e%2e/{outside}"),
    ] {
        let (authority, head) = raw_get_head(&url.replace(&alice_key, &target));
        let (status, body) = raw_exchange(&authority, &head, b"").await;
        assert!(
            (400..500).contains(&status) && !body.contains("outside secret"),
            "{backend:?}: GET re-aimed at {target} answered {status}: {body}"
        );
    }
    std::fs::remove_file(&escaped).expect("remove the planted file");
    // Expiry has one-second resolution; the TTL is two seconds.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let replay = reqwest::get(url).await.expect("GET").status();
    assert_eq!(
        replay, 403,
        "{backend:?}: an expired download URL is refused"
    );
}

/// `path` with its `.` and `..` resolved as the file system would.
fn resolved(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The head of a GET of `url` as raw HTTP/1.1, and the `host:port` to send
/// it to (plain HTTP URLs only).
fn raw_get_head(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let head = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    (authority.to_owned(), head)
}

/// Sends `head` (with `Connection: close` added) and `body` as given, over
/// TCP; the status and the rest of the response.
async fn raw_exchange(authority: &str, head: &str, body: &[u8]) -> (u16, String) {
    let head = head
        .strip_suffix("\r\n")
        .expect("a complete head")
        .to_owned()
        + "Connection: close\r\n\r\n";
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(body).await.expect("body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP response: {response}"));
    (status, response)
}

async fn signed_urls_cannot_be_re_aimed_or_replayed_local<P: Database>() {
    attacks::<P>(Backend::Local).await;
}

async fn signed_urls_cannot_be_re_aimed_or_replayed_s3<P: Database>() {
    attacks::<P>(Backend::S3).await;
}

/// Asks for an upload URL for a fresh id with forwarded-host headers a
/// client made up.
async fn upload_url_behind_forged_proxy_headers<P: Database>(t: &AttachmentApp<P>) -> String {
    let response = t
        .app
        .client
        .post(t.app.url("/api/attachments/upload-url"))
        .bearer_auth(t.token("alice").await)
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=evil.example;proto=https")
        .json(&json!({"filename": "a.png", "contentType": "image/png"}))
        .send()
        .await
        .expect("upload-url request");
    ok_json(response).await["uploadUrl"]
        .as_str()
        .expect("uploadUrl")
        .to_owned()
}

async fn local_urls_ignore_forwarded_host_unless_trusted<P: Database>() {
    let t = AttachmentApp::<P>::spawn(Backend::Local).await;
    let url = upload_url_behind_forged_proxy_headers(&t).await;
    assert!(
        url.starts_with(&format!("{}/api/attachments/files/", t.app.address)),
        "untrusted forwarded headers: {url}"
    );

    // Behind a proxy that sets them, they name the public host.
    let t = AttachmentApp::<P>::spawn_with(Backend::Local, |s| s.limits.trust_forwarded_for = true)
        .await;
    let url = upload_url_behind_forged_proxy_headers(&t).await;
    assert!(
        url.starts_with("https://evil.example/api/attachments/files/"),
        "trusted forwarded headers: {url}"
    );

    // A configured public URL wins over both.
    let t = AttachmentApp::<P>::spawn_with(Backend::Local, |s| {
        s.limits.trust_forwarded_for = true;
        s.attachments.local.public_url = Some("https://files.example.test".to_owned());
    })
    .await;
    let url = upload_url_behind_forged_proxy_headers(&t).await;
    assert!(
        url.starts_with("https://files.example.test/api/attachments/files/"),
        "public_url: {url}"
    );
}

/// Uploads `bytes` as `content_type` for alice, completes, and returns the
/// download URL.
async fn stored_download_url<P: Database>(
    t: &AttachmentApp<P>,
    filename: &str,
    content_type: &str,
) -> String {
    let bytes = format!("<script>alert(document.domain)</script> in {filename}").into_bytes();
    let body = ok_json(
        t.upload_url(
            "alice",
            json!({"filename": filename, "contentType": content_type, "size": bytes.len()}),
        )
        .await,
    )
    .await;
    let put = Presigned::from_upload(&body).put(bytes).await;
    assert!(put.status().is_success(), "PUT: {}", put.status());
    let id = body["id"].as_str().expect("id");
    ok_json(t.complete("alice", id).await).await;
    let download = ok_json(t.download_url("alice", id).await).await;
    download["downloadUrl"]
        .as_str()
        .expect("downloadUrl")
        .to_owned()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Stored XSS: with the default `allowed_content_types: ["*"]`, an HTML or
/// SVG upload must not render (and run) from the download URL.
async fn scriptable_uploads_download_as_files<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    for (filename, content_type, disposition) in [
        ("page.html", "text/html", "attachment"),
        ("drawing.svg", "image/svg+xml", "attachment"),
        ("doc.xhtml", "application/xhtml+xml", "attachment"),
        ("photo.png", "image/png", "inline"),
    ] {
        let url = stored_download_url(&t, filename, content_type).await;
        let response = reqwest::get(&url).await.expect("GET");
        assert_eq!(response.status(), 200, "{content_type}");
        assert_eq!(header(&response, "content-type"), Some(content_type));
        match backend {
            Backend::Local => {
                assert_eq!(
                    header(&response, "content-disposition"),
                    Some(disposition),
                    "{content_type}"
                );
                assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
                assert_eq!(
                    header(&response, "content-security-policy"),
                    Some("default-src 'none'; sandbox"),
                    "{content_type}"
                );
            }
            // S3 honours the override signed into the URL (the test server
            // does not apply it, so check the URL).
            Backend::S3 => assert_eq!(
                url.contains("response-content-disposition=attachment"),
                disposition == "attachment",
                "{content_type}: {url}"
            ),
        }
    }
}

async fn scriptable_uploads_download_as_files_local<P: Database>() {
    scriptable_uploads_download_as_files::<P>(Backend::Local).await;
}

async fn scriptable_uploads_download_as_files_s3<P: Database>() {
    scriptable_uploads_download_as_files::<P>(Backend::S3).await;
}

/// Files in the local backend's temporary upload directory.
fn temporary_uploads<P: Database>(t: &AttachmentApp<P>) -> usize {
    std::fs::read_dir(t.app.data_dir.join("attachments").join(".tmp"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

async fn a_slow_drip_upload_is_cut_off_and_leaves_no_temporary_file<P: Database>() {
    let t = AttachmentApp::<P>::spawn_with(Backend::Local, |s| {
        s.attachments.local.upload_timeout = Duration::from_secs(2);
    })
    .await;
    let body = ok_json(
        t.upload_url(
            "alice",
            json!({"filename": "a.png", "contentType": "image/png", "size": 100}),
        )
        .await,
    )
    .await;
    let (authority, head) = Presigned::from_upload(&body).raw_put_head(100);

    // Five senders each drip 99 of the 100 declared bytes, one every 200 ms,
    // then wait: only a server that gives up on them answers at all.
    let drips: Vec<_> = (0..5)
        .map(|_| {
            let (authority, head) = (authority.clone(), head.clone());
            tokio::spawn(async move {
                let stream = TcpStream::connect(authority).await.expect("connect");
                let (mut reader, mut writer) = stream.into_split();
                writer.write_all(head.as_bytes()).await.expect("head");
                let drip = tokio::spawn(async move {
                    for _ in 0..99 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if writer.write_all(b"x").await.is_err() {
                            break;
                        }
                    }
                    writer
                });
                let mut response = Vec::new();
                // Only a guard against a hanging test.
                let read = tokio::time::timeout(
                    Duration::from_secs(120),
                    reader.read_to_end(&mut response),
                )
                .await;
                drip.abort();
                assert!(read.is_ok(), "the server never cut the sender off");
                String::from_utf8_lossy(&response).into_owned()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for drip in drips {
        answers.push(drip.await.expect("sender"));
    }

    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    assert_eq!(temporary_uploads(&t), 0, "a cut-off upload leaves no file");
    let id = body["id"].as_str().expect("id");
    assert_eq!(
        t.complete("alice", id).await.status(),
        409,
        "nothing was stored"
    );
}
