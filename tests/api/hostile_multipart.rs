//! Multipart uploads under attack or misuse: parts listed out of order,
//! a part of another upload or another user, a wrong ETag list, sizes
//! beyond the declared total, and complete after abort. Each is refused
//! with a clear code and leaves nothing half done.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, json_ok, on_both_backends, state_of,
};
use crate::support::multipart::{
    MIB, abort, complete, download, file_bytes, put_part, show, sign, sign_ok, slice, start,
    start_ok, upload_parts,
};
use crate::support::responses::error_code;

on_both_backends!(
    parts_listed_out_of_order_or_twice,
    a_part_of_another_upload,
    another_user_cannot_touch_the_upload,
    a_wrong_etag_list_changes_nothing,
    sizes_beyond_the_declared_total,
    abort_then_complete,
);

const BOB: &str = "bob";

async fn expect_code(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status, "{code}");
    assert_eq!(error_code(response).await, code);
}

/// An upload of three parts with every part sent; returns its id and parts.
async fn ready<P: Database>(
    t: &AttachmentApp<P>,
    id: &str,
    file: &[u8],
) -> (String, Vec<(u32, String)>) {
    let view = start_ok(t, ALICE, id, file.len()).await;
    let parts = upload_parts(t, ALICE, id, &view, file, &[1, 2, 3]).await;
    (
        view["uploadId"].as_str().expect("uploadId").to_owned(),
        parts,
    )
}

async fn parts_listed_out_of_order_or_twice<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(10 * MIB + 1, 4);
    let (upload_id, parts) = ready(&t, "order", &file).await;
    let swapped = vec![parts[1].clone(), parts[0].clone(), parts[2].clone()];
    let refused = complete(&t, ALICE, "order", &upload_id, &swapped, json!({})).await;
    expect_code(refused, StatusCode::BAD_REQUEST, "invalid_part").await;
    let twice = vec![parts[0].clone(), parts[0].clone(), parts[2].clone()];
    let refused = complete(&t, ALICE, "order", &upload_id, &twice, json!({})).await;
    expect_code(refused, StatusCode::BAD_REQUEST, "invalid_part").await;
    let missing = vec![parts[0].clone(), parts[2].clone()];
    let refused = complete(&t, ALICE, "order", &upload_id, &missing, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "part_mismatch").await;
    // None of it spent the upload.
    json_ok(complete(&t, ALICE, "order", &upload_id, &parts, json!({})).await).await;
    assert_eq!(download(&t, ALICE, "order").await, file);
}

async fn a_part_of_another_upload<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(10 * MIB + 1, 5);
    let other = file_bytes(10 * MIB + 1, 6);
    let (first_id, first_parts) = ready(&t, "first", &file).await;
    let (second_id, mut second_parts) = ready(&t, "second", &other).await;
    // The first upload's ETag for part 2, in the second upload's list.
    second_parts[1] = first_parts[1].clone();
    let refused = complete(&t, ALICE, "second", &second_id, &second_parts, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "part_mismatch").await;
    // One upload's id does not open the other.
    let refused = complete(&t, ALICE, "second", &first_id, &first_parts, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "upload_closed").await;
    let refused = sign(&t, ALICE, "second", &first_id, &[1]).await;
    expect_code(refused, StatusCode::CONFLICT, "upload_closed").await;
    json_ok(complete(&t, ALICE, "first", &first_id, &first_parts, json!({})).await).await;
    assert_eq!(download(&t, ALICE, "first").await, file);
    assert_eq!(state_of(&t, "second").await.as_deref(), Some("pending"));
}

async fn another_user_cannot_touch_the_upload<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(10 * MIB + 1, 8);
    let (upload_id, parts) = ready(&t, "mine", &file).await;
    // Ids are per owner: bob's "mine" is not alice's, and he has none.
    expect_code(
        show(&t, BOB, "mine").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let refused = sign(&t, BOB, "mine", &upload_id, &[1]).await;
    expect_code(refused, StatusCode::NOT_FOUND, "not_found").await;
    let refused = complete(&t, BOB, "mine", &upload_id, &parts, json!({})).await;
    expect_code(refused, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        abort(&t, BOB, "mine").await.status(),
        StatusCode::NO_CONTENT
    );
    // Bob's own upload of the same id is his alone.
    let bobs = start_ok(&t, BOB, "mine", 6 * MIB).await;
    assert_ne!(bobs["uploadId"].as_str(), Some(upload_id.as_str()));
    assert_eq!(bobs["key"], "attachments/bob/mine.mp4");
    let refused = complete(
        &t,
        BOB,
        "mine",
        bobs["uploadId"].as_str().unwrap(),
        &parts,
        json!({}),
    )
    .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    // Alice's upload is untouched.
    let listed = json_ok(show(&t, ALICE, "mine").await).await;
    assert_eq!(listed["parts"].as_array().map(Vec::len), Some(3));
    json_ok(complete(&t, ALICE, "mine", &upload_id, &parts, json!({})).await).await;
    assert_eq!(download(&t, ALICE, "mine").await, file);
}

async fn a_wrong_etag_list_changes_nothing<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(10 * MIB + 1, 9);
    let (upload_id, parts) = ready(&t, "etags", &file).await;
    let mut wrong = parts.clone();
    wrong[2].1 = "\"0123456789abcdef0123456789abcdef\"".to_owned();
    let refused = complete(&t, ALICE, "etags", &upload_id, &wrong, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "part_mismatch").await;
    assert_eq!(state_of(&t, "etags").await.as_deref(), Some("pending"));
    // A part sent again with other bytes has another ETag: the old list is wrong.
    let view = json_ok(show(&t, ALICE, "etags").await).await;
    let mut changed = file.clone();
    changed[0] ^= 0xff;
    let resent = upload_parts(&t, ALICE, "etags", &view, &changed, &[1]).await;
    assert_ne!(resent[0].1, parts[0].1);
    let refused = complete(&t, ALICE, "etags", &upload_id, &parts, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "part_mismatch").await;
    let mut fixed = parts.clone();
    fixed[0] = resent[0].clone();
    json_ok(complete(&t, ALICE, "etags", &upload_id, &fixed, json!({})).await).await;
    assert_eq!(download(&t, ALICE, "etags").await, changed);
}

async fn sizes_beyond_the_declared_total<P: Database>(backend: Backend) {
    let t =
        AttachmentApp::<P>::spawn_with(backend, |s| s.attachments.max_size = 64 * MIB as u64).await;
    let too_big = start(
        &t,
        ALICE,
        json!({"id": "big", "filename": "big.mp4", "contentType": "video/mp4", "size": 64 * MIB + 1}),
    )
    .await;
    expect_code(too_big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let empty = start(
        &t,
        ALICE,
        json!({"id": "big", "filename": "big.mp4", "contentType": "video/mp4", "size": 0}),
    )
    .await;
    expect_code(empty, StatusCode::BAD_REQUEST, "invalid_size").await;

    let file = file_bytes(6 * MIB, 10);
    let view = start_ok(&t, ALICE, "sized", file.len()).await;
    let upload_id = view["uploadId"].as_str().expect("uploadId");
    for beyond in [&[3u32][..], &[0], &[1, 2, 3]] {
        let refused = sign(&t, ALICE, "sized", upload_id, beyond).await;
        expect_code(refused, StatusCode::BAD_REQUEST, "invalid_part").await;
    }
    let signed = sign_ok(&t, ALICE, "sized", upload_id, &[2]).await;
    assert_eq!(signed[0]["size"], MIB);
    // More bytes than the part's signed size, and fewer: both refused.
    let mut longer = slice(&file, 5 * MIB, 2);
    longer.extend_from_slice(b"more");
    assert_eq!(
        put_part(&signed[0], longer).await.status(),
        StatusCode::FORBIDDEN
    );
    let shorter = slice(&file, 5 * MIB, 2)[..1000].to_vec();
    assert_eq!(
        put_part(&signed[0], shorter).await.status(),
        StatusCode::FORBIDDEN
    );
    let listed = json_ok(show(&t, ALICE, "sized").await).await;
    assert_eq!(listed["parts"], json!([]));
    let parts = upload_parts(&t, ALICE, "sized", &view, &file, &[1, 2]).await;
    let done = json_ok(complete(&t, ALICE, "sized", upload_id, &parts, json!({})).await).await;
    assert_eq!(done["size"], file.len());
}

async fn abort_then_complete<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(10 * MIB + 1, 11);
    let (upload_id, parts) = ready(&t, "aborted", &file).await;
    let kept = sign_ok(&t, ALICE, "aborted", &upload_id, &[1]).await;
    assert_eq!(
        abort(&t, ALICE, "aborted").await.status(),
        StatusCode::NO_CONTENT
    );
    let refused = complete(&t, ALICE, "aborted", &upload_id, &parts, json!({})).await;
    expect_code(refused, StatusCode::CONFLICT, "upload_closed").await;
    expect_code(
        show(&t, ALICE, "aborted").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let late = put_part(&kept[0], slice(&file, 5 * MIB, 1)).await;
    let expected = match backend {
        Backend::Local => StatusCode::CONFLICT,
        Backend::S3 => StatusCode::NOT_FOUND,
    };
    assert_eq!(late.status(), expected);
    assert_eq!(state_of(&t, "aborted").await.as_deref(), Some("pending"));
    assert!(!t.stored_path("attachments/alice/aborted.mp4").exists());
    // Aborting again is harmless.
    assert_eq!(
        abort(&t, ALICE, "aborted").await.status(),
        StatusCode::NO_CONTENT
    );
}
