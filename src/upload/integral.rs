//! Integers the client sent as floats: SQLite and JavaScript turn `25`
//! into `25.0`, which both databases would refuse or round.

/// A number with a fraction or an exponent (`2.5`, `25.0`, `1e3`).
pub fn is_float_literal(text: &str) -> bool {
    text.as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
        && text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// `25.0` → `25`; `None` for `2.5`, which is left for the database (Postgres)
/// or uplink (MySQL) to refuse, never rounded.
pub fn integral_float(text: &str) -> Option<String> {
    let value: f64 = text.parse().ok()?;
    // Beyond 2^63 an f64 is not an i64; leave the range error to the database.
    (value.is_finite() && value.fract() == 0.0 && value.abs() < 9.2e18)
        .then(|| format!("{}", value as i64))
}
