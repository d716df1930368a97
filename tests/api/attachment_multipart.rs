//! Multipart uploads on both backends: parts sent out of order, an upload
//! resumed from the parts storage lists, the joined file byte for byte,
//! the part URLs dead once the upload is done, and the cleanup of an
//! abandoned upload.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, json_ok, on_both_backends, quoted, state_of,
};
use crate::support::multipart::{
    MIB, complete, download, file_bytes, put_part, show, sign_ok, slice, start_ok, upload_parts,
};
use crate::support::responses::error_code;

on_both_backends!(
    parts_out_of_order_resumed_from_the_listed_parts,
    a_late_checksum_that_differs_refuses_the_object,
    abandoned_uploads_are_aborted_by_the_cleanup,
    uploads_storage_holds_without_a_record_are_aborted,
);

async fn parts_out_of_order_resumed_from_the_listed_parts<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(11 * MIB + 123, 7);
    let sha = hex::encode(Sha256::digest(&file));
    let view = json_ok(
        crate::support::multipart::start(
            &t,
            ALICE,
            json!({"id": "clip", "filename": "clip.mp4", "contentType": "video/mp4",
                   "size": file.len(), "checksumSha256": sha}),
        )
        .await,
    )
    .await;
    assert_eq!(view["partSize"], 5 * MIB);
    assert_eq!(view["partCount"], 3);
    assert_eq!(view["key"], "attachments/alice/clip.mp4");
    assert_eq!(view["parts"], json!([]));
    let upload_id = view["uploadId"].as_str().expect("uploadId").to_owned();

    // The last part first, then the first; then the device "restarts".
    let sent = upload_parts(&t, ALICE, "clip", &view, &file, &[3, 1]).await;
    let listed = json_ok(show(&t, ALICE, "clip").await).await;
    assert_eq!(listed["uploadId"], upload_id.as_str());
    let parts = listed["parts"].as_array().expect("parts");
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(parts[0]["size"], 5 * MIB);
    assert_eq!(parts[1]["size"], MIB + 123);
    for (number, etag) in &sent {
        let stored = parts
            .iter()
            .find(|p| p["partNumber"] == *number)
            .expect("listed part");
        assert_eq!(stored["etag"].as_str(), Some(etag.trim_matches('"')));
    }
    // Resuming: only the missing part is sent, and the list gives the rest.
    let mut all = upload_parts(&t, ALICE, "clip", &listed, &file, &[2]).await;
    for p in parts {
        all.push((
            p["partNumber"].as_u64().unwrap() as u32,
            p["etag"].as_str().unwrap().to_owned(),
        ));
    }
    all.sort();
    assert_eq!(state_of(&t, "clip").await.as_deref(), Some("pending"));
    let kept_url = sign_ok(&t, ALICE, "clip", &upload_id, &[1]).await;
    let done = json_ok(complete(&t, ALICE, "clip", &upload_id, &all, json!({})).await).await;
    assert_eq!(done["size"], file.len());
    assert_eq!(done["contentType"], "video/mp4");
    assert_eq!(done["sha256"], sha.as_str());
    assert_eq!(state_of(&t, "clip").await.as_deref(), Some("uploaded"));
    let got = download(&t, ALICE, "clip").await;
    assert_eq!(hex::encode(Sha256::digest(&got)), sha);

    // A retry whose answer was lost gets the same answer.
    let again = json_ok(complete(&t, ALICE, "clip", &upload_id, &all, json!({})).await).await;
    assert_eq!(again["size"], file.len());
    // The upload is over: nothing to list, and its part URLs take nothing.
    let gone = show(&t, ALICE, "clip").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Local storage refuses it (409 upload_closed); S3 has no such upload (404).
    let replayed = put_part(&kept_url[0], slice(&file, 5 * MIB, 1))
        .await
        .status();
    let expected = match backend {
        Backend::Local => StatusCode::CONFLICT,
        Backend::S3 => StatusCode::NOT_FOUND,
    };
    assert_eq!(replayed, expected);
    assert_eq!(download(&t, ALICE, "clip").await, file);
}

async fn a_late_checksum_that_differs_refuses_the_object<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let file = file_bytes(6 * MIB, 1);
    let view = start_ok(&t, ALICE, "sum", file.len()).await;
    let upload_id = view["uploadId"].as_str().expect("uploadId");
    let parts = upload_parts(&t, ALICE, "sum", &view, &file, &[1, 2]).await;
    let wrong = hex::encode(Sha256::digest(b"another file"));
    let refused = complete(
        &t,
        ALICE,
        "sum",
        upload_id,
        &parts,
        json!({"checksumSha256": wrong}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "checksum_mismatch");
    assert_eq!(state_of(&t, "sum").await.as_deref(), Some("pending"));
    assert!(!t.stored_path("attachments/alice/sum.mp4").exists());
    let right = hex::encode(Sha256::digest(&file));
    // The parts were spent on the refused object: a new upload is needed.
    let again = complete(
        &t,
        ALICE,
        "sum",
        upload_id,
        &parts,
        json!({"checksumSha256": right}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(again).await, "upload_closed");
}

async fn abandoned_uploads_are_aborted_by_the_cleanup<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3600);
    })
    .await;
    let file = file_bytes(6 * MIB, 2);
    let old = start_ok(&t, ALICE, "old", file.len()).await;
    let signed = sign_ok(&t, ALICE, "old", old["uploadId"].as_str().unwrap(), &[2]).await;
    upload_parts(&t, ALICE, "old", &old, &file, &[1]).await;
    let fresh = start_ok(&t, ALICE, "fresh", file.len()).await;
    upload_parts(&t, ALICE, "fresh", &fresh, &file, &[1]).await;
    t.age("multipart_uploads", "id = 'old'", 2 * 3600).await;
    t.replica()
        .await
        .remove_stale_uploads()
        .await
        .expect("sweep");
    assert_eq!(show(&t, ALICE, "old").await.status(), StatusCode::NOT_FOUND);
    let late = put_part(&signed[0], slice(&file, 5 * MIB, 2)).await;
    let expected = match backend {
        Backend::Local => StatusCode::CONFLICT,
        Backend::S3 => StatusCode::NOT_FOUND,
    };
    assert_eq!(late.status(), expected);
    let kept = json_ok(show(&t, ALICE, "fresh").await).await;
    assert_eq!(kept["parts"].as_array().map(Vec::len), Some(1));
}

async fn uploads_storage_holds_without_a_record_are_aborted<P: Database>(backend: Backend) {
    // Short ages so that storage's own start time can pass the limit.
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        // Signed part URLs must outlive a loaded machine's PUT.
        s.attachments.url_ttl = Duration::from_secs(2);
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3);
    })
    .await;
    let file = file_bytes(6 * MIB, 12);
    let view = start_ok(&t, ALICE, "orphan", file.len()).await;
    let upload_id = view["uploadId"].as_str().expect("uploadId").to_owned();
    upload_parts(&t, ALICE, "orphan", &view, &file, &[1]).await;
    // A crash between storage and the record: storage holds an upload
    // uplink no longer knows.
    t.app
        .db_pool
        .execute(&format!(
            "DELETE FROM uplink.multipart_uploads WHERE upload_id = {}",
            quoted(&upload_id)
        ))
        .await;
    let parts_dir = t
        .app
        .data_dir
        .join("attachments")
        .join(".parts")
        .join(&upload_id);
    if backend == Backend::Local {
        assert!(parts_dir.exists());
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    t.replica()
        .await
        .remove_stale_uploads()
        .await
        .expect("sweep");
    match backend {
        Backend::Local => assert!(!parts_dir.exists(), "the parts are removed"),
        Backend::S3 => {
            let s3 = t.s3.as_ref().expect("S3 server");
            let held = std::fs::read_dir(&s3.root)
                .expect("S3 root")
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().contains(&upload_id));
            assert!(!held, "S3 holds nothing of the aborted upload");
        }
    }
}
