//! The client id: which device's upload queue a request comes from. It keys
//! the exactly-once progress and the write checkpoints, so every route that
//! takes one applies the same rule.

/// Longest client id accepted, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// Why `id` cannot be a client id (control characters, a NUL among them,
/// cannot be stored or logged faithfully; whitespace at either end would
/// make `c ` the same client as `c` where the database pads text), or `Ok`.
pub fn check(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > MAX_CLIENT_ID_LEN
        || id.chars().any(char::is_control)
        || id.trim() != id
    {
        return Err(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_LEN} bytes without control characters \
             or whitespace at either end"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_lengths_are_refused() {
        for bad in [
            "",
            "a\0b",
            "tab\there",
            "\u{7f}",
            "c ",
            " c",
            &"x".repeat(257),
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["phone", "ünïcode-😀", &"x".repeat(256)] {
            assert!(check(good).is_ok(), "{good:?} refused");
        }
    }
}
