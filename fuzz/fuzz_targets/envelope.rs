//! The write path's untrusted input: the JSON depth scan that runs before
//! any parser (checked against the depth of what serde_json parses), the
//! envelope parser (both body shapes and the single-row compatibility
//! routes), then every value through the coercion of every column kind. No
//! panic, no hang, bounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uplink::limits::json_depth::json_depth_exceeds;
use uplink::upload::coerce;
use uplink::upload::envelope::{Batch, Op};
use uplink::upload::schema::{Column, ValueKind};

fn column(kind: ValueKind, numeric: bool) -> Column {
    Column {
        name: "c".to_owned(),
        sql_type: "text".to_owned(),
        cast_type: "text".to_owned(),
        kind,
        numeric,
        not_null: false,
        default: None,
        writable: true,
    }
}

/// Nesting of arrays and objects; a scalar is depth 0.
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    const LIMIT: usize = 8;
    let too_deep = json_depth_exceeds(data, LIMIT);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(
            too_deep,
            depth(&value) > LIMIT,
            "depth scan disagrees with the parser"
        );
    }
    let columns = [
        column(ValueKind::Boolean, false),
        column(ValueKind::Integer, true),
        column(ValueKind::Json, false),
        column(
            ValueKind::Array {
                text_elements: true,
            },
            false,
        ),
        column(
            ValueKind::Array {
                text_elements: false,
            },
            false,
        ),
        column(ValueKind::Other, true),
        column(ValueKind::Other, false),
    ];
    if let Ok(batch) = Batch::parse(data, Some("fuzz-client")) {
        let _ = batch.entry_count();
        for tx in &batch.transactions {
            for entry in &tx.entries {
                for (_, value) in &entry.data {
                    for column in &columns {
                        let _ = coerce(column, value);
                    }
                }
            }
        }
    }
    let _ = Batch::parse_single(data, Op::Patch);
});
