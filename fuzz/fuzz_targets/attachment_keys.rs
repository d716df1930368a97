//! Attachment ids, owners and filenames as clients send them (and object
//! keys as a signed URL's path carries them): every key uplink derives has
//! the shape it later checks, stays inside its prefix as a path, and two
//! different owners never share a key segment; a key that passes the check
//! cannot leave the storage directory.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use uplink::attachments::key::{
    AttachmentId, clean_filename, extension, is_object_key, object_key, owner_segment,
};

const PREFIX: &str = "attachments";

/// Only plain names below the storage directory.
fn stays_inside(key: &str) {
    assert!(!key.contains(['\\', '\0']), "{key:?}");
    for component in Path::new(key).components() {
        assert!(
            matches!(component, Component::Normal(_)),
            "{key:?} leaves the directory"
        );
    }
    for segment in key.split('/') {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{key:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(4, '\n');
    let (owner, other_owner, id, filename) = (
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
    );

    let cleaned = clean_filename(filename);
    assert!(cleaned.chars().count() <= 255);
    assert!(!cleaned.chars().any(char::is_control), "{cleaned:?}");
    let ext = extension(filename);
    assert!(
        !ext.is_empty()
            && ext.len() <= 16
            && ext
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{ext:?}"
    );

    let segment = owner_segment(owner);
    if owner != other_owner {
        assert_ne!(
            segment,
            owner_segment(other_owner),
            "two owners share a segment"
        );
    }
    if let Ok(parsed) = AttachmentId::parse(id) {
        let key = object_key(PREFIX, owner, &parsed, filename);
        assert!(is_object_key(PREFIX, &key), "derived key refused: {key:?}");
        assert_eq!(key, format!("{PREFIX}/{segment}/{id}.{ext}"));
        stays_inside(&key);
    }
    // The whole input as a key from a URL path.
    if is_object_key(PREFIX, &text) {
        assert!(text.starts_with("attachments/"));
        stays_inside(&text);
    }
});
