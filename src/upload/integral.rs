//! Integers the client sent as floats: SQLite and JavaScript turn `25`
//! into `25.0`, which both databases would refuse or round. The number's
//! text is read exactly, never through a float: `12345678901234567.5` is a
//! fraction, not `12345678901234568`.

/// A number with a fraction or an exponent (`2.5`, `25.0`, `1e3`).
pub fn is_float_literal(text: &str) -> bool {
    text.as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
        && text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// The most digits an integer column takes (a `bigint` has 19); longer
/// values are left for the database to refuse as out of range.
const MAX_DIGITS: usize = 40;

/// `25.0` → `25`, `2.5e1` → `25`, `-1e3` → `-1000`; `None` for a JSON number
/// with a fraction (`2.5`, `1.0000000000000001`), one too long to be an
/// integer column's, or text that is not a JSON number.
pub fn integral_float(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The value is `digits × 10^shift`.
    let digits = format!("{int}{frac}");
    let shift = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let integer = if shift >= 0 {
        let zeros = usize::try_from(shift).ok().filter(|z| *z <= MAX_DIGITS)?;
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        let dropped = usize::try_from(-shift).ok()?;
        let kept = digits.len().saturating_sub(dropped);
        if !digits[kept..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits[..kept].to_owned()
    };
    let integer = integer.trim_start_matches('0');
    if integer.len() > MAX_DIGITS {
        return None;
    }
    Some(match (integer.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{integer}"),
        (false, false) => integer.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::integral_float;

    #[test]
    fn integral_numbers_are_read_exactly() {
        let cases = [
            ("25.0", Some("25")),
            ("-25.000", Some("-25")),
            ("2.5e1", Some("25")),
            ("1e3", Some("1000")),
            ("-1E+3", Some("-1000")),
            ("0.0", Some("0")),
            ("-0.0", Some("0")),
            ("12345678901234567.0", Some("12345678901234567")),
            ("9223372036854775807.0", Some("9223372036854775807")),
            ("123450e-1", Some("12345")),
            ("2.5", None),
            ("12345678901234567.5", None),
            ("1.0000000000000001", None),
            ("1e-1", None),
            ("1e400", None),
            ("1e99999999999999999999", None),
            ("abc", None),
            (".5", None),
            ("1.", Some("1")),
        ];
        for (text, expected) in cases {
            assert_eq!(integral_float(text).as_deref(), expected, "{text}");
        }
    }
}
