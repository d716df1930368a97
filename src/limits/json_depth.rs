//! The JSON nesting-depth scan (applied to request bodies by `crate::body`).

/// Deepest nesting of arrays and objects in a JSON text, by a byte scan
/// that skips strings (most of a body) with `memchr`. Stops counting once
/// past `limit`. Malformed text is left for the parser to refuse.
pub fn json_depth_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        at += 1;
        match byte {
            b'"' => loop {
                let Some(rest) = body.get(at..) else {
                    return false;
                };
                match memchr::memchr2(b'"', b'\\', rest) {
                    None => return false,
                    Some(found) if rest[found] == b'"' => {
                        at += found + 1;
                        break;
                    }
                    // An escape: skip the escaped byte too.
                    Some(found) => at += found + 2,
                }
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_and_ignores_brackets_in_strings() {
        let twenty = format!("{}{}", "[".repeat(20), "]".repeat(20));
        let twenty_one = format!("{}{}", "[".repeat(21), "]".repeat(21));
        assert!(!json_depth_exceeds(twenty.as_bytes(), 20));
        assert!(json_depth_exceeds(twenty_one.as_bytes(), 20));
        let in_string = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(50), "{".repeat(50));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 20));
        // The string ends after an escaped backslash; the nesting after it counts.
        let after_escape = format!(
            r#"{{"a": "x\\", "b": {}{}}}"#,
            "[".repeat(20),
            "]".repeat(20)
        );
        assert!(json_depth_exceeds(after_escape.as_bytes(), 20));
        assert!(!json_depth_exceeds(after_escape.as_bytes(), 21));
    }
}
