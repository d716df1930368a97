//! Driving the multipart routes as a device would.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::attachments::{AttachmentApp, Database, json_ok};

pub const MIB: usize = 1024 * 1024;

/// A file of `len` bytes that differs at every offset a part could start.
pub fn file_bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

pub async fn start<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    body: Value,
) -> reqwest::Response {
    t.api(Method::POST, "/api/attachments/multipart", user, Some(body))
        .await
}

/// Starts a multipart upload of `len` bytes as `user`; returns its view.
pub async fn start_ok<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    id: &str,
    len: usize,
) -> Value {
    json_ok(
        start(
            t,
            user,
            json!({"id": id, "filename": "clip.mp4", "contentType": "video/mp4", "size": len}),
        )
        .await,
    )
    .await
}

pub async fn show<P: Database>(t: &AttachmentApp<P>, user: &str, id: &str) -> reqwest::Response {
    t.api(
        Method::GET,
        &format!("/api/attachments/{id}/multipart"),
        user,
        None,
    )
    .await
}

pub async fn sign<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    id: &str,
    upload_id: &str,
    parts: &[u32],
) -> reqwest::Response {
    t.api(
        Method::POST,
        &format!("/api/attachments/{id}/multipart/parts"),
        user,
        Some(json!({"uploadId": upload_id, "partNumbers": parts})),
    )
    .await
}

/// Signed part requests, by part number order asked.
pub async fn sign_ok<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    id: &str,
    upload_id: &str,
    parts: &[u32],
) -> Vec<Value> {
    let body = json_ok(sign(t, user, id, upload_id, parts).await).await;
    body["parts"].as_array().expect("parts").clone()
}

/// PUTs `bytes` to a signed part request; returns the response.
pub async fn put_part(signed: &Value, bytes: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new().put(signed["url"].as_str().expect("url"));
    for (name, value) in signed["headers"].as_object().expect("headers") {
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.header(name, value.as_str().expect("header value"));
        }
    }
    request.body(bytes).send().await.expect("PUT a part")
}

/// The bytes of part `number` (1-based) of `file` in parts of `part_size`.
pub fn slice(file: &[u8], part_size: usize, number: u32) -> Vec<u8> {
    let start = (number as usize - 1) * part_size;
    file[start..(start + part_size).min(file.len())].to_vec()
}

/// Uploads the given parts of `file`; returns (number, ETag) per part.
pub async fn upload_parts<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    id: &str,
    view: &Value,
    file: &[u8],
    numbers: &[u32],
) -> Vec<(u32, String)> {
    let upload_id = view["uploadId"].as_str().expect("uploadId");
    let part_size = view["partSize"].as_u64().expect("partSize") as usize;
    let mut etags = Vec::new();
    for signed in sign_ok(t, user, id, upload_id, numbers).await {
        let number = signed["partNumber"].as_u64().expect("partNumber") as u32;
        let put = put_part(&signed, slice(file, part_size, number)).await;
        assert_eq!(put.status(), StatusCode::OK, "part {number}");
        let etag = put
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("ETag")
            .to_owned();
        etags.push((number, etag));
    }
    etags
}

pub async fn complete<P: Database>(
    t: &AttachmentApp<P>,
    user: &str,
    id: &str,
    upload_id: &str,
    parts: &[(u32, String)],
    extra: Value,
) -> reqwest::Response {
    let mut body = json!({
        "uploadId": upload_id,
        "parts": parts.iter().map(|(n, e)| json!({"partNumber": n, "etag": e})).collect::<Vec<_>>(),
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    t.api(
        Method::POST,
        &format!("/api/attachments/{id}/multipart/complete"),
        user,
        Some(body),
    )
    .await
}

pub async fn abort<P: Database>(t: &AttachmentApp<P>, user: &str, id: &str) -> reqwest::Response {
    t.api(
        Method::DELETE,
        &format!("/api/attachments/{id}/multipart"),
        user,
        None,
    )
    .await
}

/// The bytes a download of `user`'s attachment `id` gives.
pub async fn download<P: Database>(t: &AttachmentApp<P>, user: &str, id: &str) -> Vec<u8> {
    let body = json_ok(t.download_url(user, id).await).await;
    let response = reqwest::get(body["downloadUrl"].as_str().expect("downloadUrl"))
        .await
        .expect("GET from storage");
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.expect("bytes").to_vec()
}
