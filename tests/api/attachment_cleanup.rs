//! Uploads requested and never completed are cleaned up: by a sweep, by
//! several sweeps at once without doing the work twice, and by the periodic
//! task on its own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::attachments::{
    ALICE, AttachmentApp, Backend, Database, ago, json_ok, on_both_backends, quoted,
    request_upload, state_of, upload,
};
use crate::support::backend::on_both_databases;

on_both_backends!(
    stale_pending_uploads_are_cleaned_up,
    concurrent_cleanups_split_the_work,
);
on_both_databases!(the_periodic_task_sweeps_on_its_own);

/// Leaves a pending upload with its object stored, aged by `age` seconds.
async fn stale_pending<P: Database>(t: &AttachmentApp<P>, id: &str, age: u64) -> String {
    let (body, presigned) = request_upload(
        t,
        ALICE,
        json!({"id": id, "filename": "p.png", "contentType": "image/png", "size": 1}),
    )
    .await;
    assert_eq!(presigned.put(b"p".to_vec()).await.status(), StatusCode::OK);
    t.age("attachments", &format!("id = {}", quoted(id)), age)
        .await;
    body["key"].as_str().expect("key").to_owned()
}

async fn stale_pending_uploads_are_cleaned_up<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn_with(backend, |s| {
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3600);
    })
    .await;
    let stale_key = stale_pending(&t, "stale", 2 * 3600).await;
    let fresh_key = stale_pending(&t, "fresh", 600).await;
    let (done_id, done_key) = upload(&t, ALICE, "done.png", b"keep me").await;
    t.age(
        "attachments",
        &format!("id = {}", quoted(&done_id)),
        2 * 86400,
    )
    .await;

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

    let removed = t
        .replica()
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

async fn concurrent_cleanups_split_the_work<P: Database>(backend: Backend) {
    let t = AttachmentApp::<P>::spawn(backend).await;
    let three_days_ago = ago::<P>(3 * 86400);
    let rows: Vec<String> = (1..=250)
        .map(|i| {
            format!(
                "('bulk-{i}', 'alice', 'attachments/alice/bulk-{i}.png', 'p.png', 'image/png', \
                 'pending', {three_days_ago})"
            )
        })
        .collect();
    t.app
        .db_pool
        .execute(&format!(
            "INSERT INTO uplink.attachments \
             (id, owner_id, object_key, filename, content_type, state, updated_at) VALUES {}",
            rows.join(", ")
        ))
        .await;
    // Two replicas' sweeps at once: `SKIP LOCKED` hands each row to one.
    let (a, b) = (t.replica().await, t.replica().await);
    let (ra, rb) = tokio::join!(a.remove_stale_uploads(), b.remove_stale_uploads());
    let total = ra.expect("first cleanup") + rb.expect("second cleanup");
    assert_eq!(total, 250, "each stale row removed exactly once");
    let left = t
        .app
        .number("SELECT count(*) FROM uplink.attachments")
        .await;
    assert_eq!(left, 0);
}

async fn the_periodic_task_sweeps_on_its_own<P: Database>() {
    let t = AttachmentApp::<P>::spawn_with(Backend::Local, |s| {
        s.attachments.cleanup.interval = Duration::from_millis(200);
        s.attachments.cleanup.pending_max_age = Duration::from_secs(3600);
    })
    .await;
    let stale_key = stale_pending(&t, "swept", 2 * 3600).await;
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
