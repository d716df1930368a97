//! JSON read back from stored rows and JSON uplink stores of a client's
//! entries: any JSON object a row can print is read (every member, as its
//! text), and what uplink stores is JSON that Postgres' jsonb accepts: no
//! NUL character, no lone surrogate, no number beyond Postgres' range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use uplink::upload::{Stored, jsonb_safe};

/// Whether a string or key anywhere in `value` holds a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(members) => members.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = serde_json::from_str::<Value>(text);
    if let Some(row) = Stored::parse(text) {
        for name in row.names().map(str::to_owned).collect::<Vec<_>>() {
            let member = row.raw(&name).expect("a member it names");
            let as_text = row.text(&name);
            if member.get().starts_with('"') {
                if let Ok(decoded) = serde_json::from_str::<String>(member.get()) {
                    assert_eq!(as_text.as_deref(), Some(decoded.as_str()));
                }
            } else if member.get() == "null" {
                assert_eq!(as_text, None);
            } else {
                assert_eq!(as_text.as_deref(), Some(member.get()));
            }
        }
    } else if let Ok(Value::Object(_)) = parsed {
        panic!("a JSON object is not read back: {text}");
    }

    // What uplink stores: valid JSON whenever the input was, with nothing
    // jsonb refuses (serde_json refuses lone surrogates too).
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        let safe = jsonb_safe(text);
        serde_json::from_str::<serde::de::IgnoredAny>(&safe)
            .unwrap_or_else(|err| panic!("stored JSON is not valid ({err}): {safe}"));
        // Numbers past f64 are beyond serde_json's Value, not Postgres'.
        if let Ok(stored) = serde_json::from_str::<Value>(&safe) {
            assert!(!has_nul(&stored), "a NUL is stored: {safe}");
        }
    }
});
