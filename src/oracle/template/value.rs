//! The text a proven value may have: ASCII digits with at most one point, at least one digit
//! on each side of it, at most the template's decimals after it — `12`, `0.01`, `12.5` —
//! and nothing else. The parties check the same rule inside the MPC on the hidden window
//! (`oracle::mpc::value`); this is the prover's plaintext mirror, with errors that say which
//! rule failed (never the text itself).

use thiserror::Error;

/// Longest value text accepted (10^30 < 2^100 fits Z_2^128 with room to add).
pub const MAX_VALUE_LEN: usize = 30;
/// Bound on text length + scale: the parse Σ digit · 10^e stays below 10^38 < 2^127.
pub const MAX_DIGITS_WITH_SCALE: usize = 38;

/// Why a value's text is not a plain decimal.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("the value is empty")]
    Empty,
    #[error("the value is {found} characters long, at most {MAX_VALUE_LEN} are accepted")]
    TooLong { found: usize },
    #[error("the value has a sign: negative values and a leading + are refused")]
    Sign,
    #[error("the value has an exponent (e/E): write it as plain digits")]
    Exponent,
    #[error("the value holds non-ASCII characters (only the digits 0-9 are accepted)")]
    NonAscii,
    #[error("the value holds a character other than the digits 0-9 and one point")]
    NotDigit,
    #[error("the value's point must have a digit on each side, and there may be only one")]
    Point,
    #[error("the value has {found} decimals; the template accepts at most {max}")]
    Decimals { found: usize, max: u32 },
}

/// Checks `text` against the rule of the module documentation.
pub fn check_value_text(text: &[u8], max_decimals: u32) -> Result<(), ValueError> {
    if text.is_empty() {
        return Err(ValueError::Empty);
    }
    if text.len() > MAX_VALUE_LEN {
        return Err(ValueError::TooLong { found: text.len() });
    }
    if text.iter().any(|c| *c == b'+' || *c == b'-') {
        return Err(ValueError::Sign);
    }
    if text.iter().any(|c| *c == b'e' || *c == b'E') {
        return Err(ValueError::Exponent);
    }
    if !text.is_ascii() {
        return Err(ValueError::NonAscii);
    }
    if !text.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return Err(ValueError::NotDigit);
    }
    let points: Vec<usize> = (0..text.len()).filter(|&i| text[i] == b'.').collect();
    match points.as_slice() {
        [] => Ok(()),
        [p] if *p > 0 && *p + 1 < text.len() => {
            let found = text.len() - 1 - p;
            if found > max_decimals as usize {
                Err(ValueError::Decimals {
                    found,
                    max: max_decimals,
                })
            } else {
                Ok(())
            }
        }
        _ => Err(ValueError::Point),
    }
}

/// The positions at which a window of `len` bytes may hold its point: at least one digit
/// before, one to `max_decimals` after.
pub fn point_positions(len: usize, max_decimals: u32) -> Vec<usize> {
    (1..len.saturating_sub(1))
        .filter(|&p| len - 1 - p <= max_decimals as usize)
        .collect()
}

/// value × 10^scale of a checked text, digits beyond `scale` truncated (the plaintext of the
/// MPC's parse).
pub fn scaled(text: &[u8], scale: u32) -> u128 {
    let point = text.iter().position(|c| *c == b'.').unwrap_or(text.len());
    let mut v = 0u128;
    for &c in &text[..point] {
        v = v * 10 + u128::from(c - b'0');
    }
    let frac = text.get(point + 1..).unwrap_or(&[]);
    for k in 0..scale as usize {
        v = v * 10 + frac.get(k).map_or(0, |c| u128::from(c - b'0'));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_with_any_number_of_decimals_up_to_the_maximum() {
        for ok in ["0", "12", "0.01", "12.5", "12.34567890", "007"] {
            assert_eq!(check_value_text(ok.as_bytes(), 8), Ok(()), "{ok}");
        }
        let long = "9".repeat(MAX_VALUE_LEN);
        assert_eq!(check_value_text(long.as_bytes(), 8), Ok(()));
        let cases = [
            ("", ValueError::Empty),
            ("-1", ValueError::Sign),
            ("+1", ValueError::Sign),
            ("1e5", ValueError::Exponent),
            ("1E5", ValueError::Exponent),
            ("NaN", ValueError::NotDigit),
            ("١٢", ValueError::NonAscii),
            ("1,5", ValueError::NotDigit),
            (" 1", ValueError::NotDigit),
            (".5", ValueError::Point),
            ("5.", ValueError::Point),
            ("1.2.3", ValueError::Point),
            ("1.123456789", ValueError::Decimals { found: 9, max: 8 }),
        ];
        for (text, want) in cases {
            assert_eq!(check_value_text(text.as_bytes(), 8), Err(want), "{text}");
        }
        let too_long = "9".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            check_value_text(too_long.as_bytes(), 8),
            Err(ValueError::TooLong { found: 31 })
        );
        assert_eq!(
            check_value_text(b"1.5", 0),
            Err(ValueError::Decimals { found: 1, max: 0 })
        );
    }

    #[test]
    fn scaling_truncates_beyond_the_scale() {
        assert_eq!(scaled(b"12.5", 8), 1_250_000_000);
        assert_eq!(scaled(b"0.01", 2), 1);
        assert_eq!(scaled(b"0.019", 2), 1);
        assert_eq!(scaled(b"7", 3), 7000);
        assert_eq!(point_positions(4, 8), vec![1, 2]);
        assert_eq!(point_positions(6, 2), vec![3, 4]);
        assert!(point_positions(2, 8).is_empty());
    }
}
