//! JSON text that Postgres' `jsonb` accepts, for what uplink stores of a
//! client's entries (dead letters, recorded conflicts).

use std::borrow::Cow;

/// JSON text that `jsonb` accepts: Postgres refuses `\u0000`, unpaired
/// surrogate escapes and numbers beyond its `numeric` range, which are valid
/// JSON a client may send. The escapes become U+FFFD and such numbers
/// strings of their text, so a rejected entry is still stored (it could
/// never be written to a table anyway).
pub fn jsonb_safe(json: &str) -> Cow<'_, str> {
    let mut ranges = super::coerce::unstorable_numbers(json).peekable();
    if ranges.peek().is_none() {
        return escapes_safe(json);
    }
    let mut quoted = String::with_capacity(json.len() + 16);
    let mut copied = 0;
    for range in ranges {
        quoted.push_str(&json[copied..range.start]);
        quoted.push('"');
        quoted.push_str(&json[range.clone()]);
        quoted.push('"');
        copied = range.end;
    }
    quoted.push_str(&json[copied..]);
    Cow::Owned(escapes_safe(&quoted).into_owned())
}

fn escapes_safe(json: &str) -> Cow<'_, str> {
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        json.get(at..at + 4)
            .and_then(|h| u16::from_str_radix(h, 16).ok())
    };
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2; // an escaped character, `\\` included
            continue;
        }
        let Some(unit) = hex(i + 2) else {
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&unit)
            && json.get(i + 6..i + 8) == Some("\\u")
            && hex(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if unit == 0 || (0xD800..0xE000).contains(&unit) {
            out.push_str(&json[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::jsonb_safe;

    #[test]
    fn jsonb_safe_replaces_only_what_postgres_refuses() {
        let cases = [
            (r#"{"a":"x\u0000y"}"#, r#"{"a":"x\ufffdy"}"#),
            (r#"["\ud800"]"#, r#"["\ufffd"]"#),
            (r#"["\udc00\ud800"]"#, r#"["\ufffd\ufffd"]"#),
            (r#"["\ud83d\ude00"]"#, r#"["\ud83d\ude00"]"#),
            (r#"["\\u0000"]"#, r#"["\\u0000"]"#),
            (r#"["\u00e9 \n"]"#, r#"["\u00e9 \n"]"#),
        ];
        for (input, expected) in cases {
            assert_eq!(jsonb_safe(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_postgres_cannot_hold_become_strings() {
        assert_eq!(
            jsonb_safe(r#"[{"data":{"n":1e99999999,"s":"1e99999999","ok":1e5}}]"#),
            r#"[{"data":{"n":"1e99999999","s":"1e99999999","ok":1e5}}]"#
        );
    }
}
