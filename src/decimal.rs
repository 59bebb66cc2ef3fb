//! Exact decimal text ⇄ scaled integers, and exact rounding of rationals for printing.
//! No floating point anywhere: a value "12.345" at scale 8 is the integer 1_234_500_000.

use anyhow::{bail, Result};

/// What to do with digits beyond the scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excess {
    /// More decimals than the scale is an error.
    Reject,
    /// Extra decimals are dropped (truncation toward zero).
    Truncate,
}

/// Parses a non-negative decimal ("12", "12.5", "0.00012") into value × 10^scale.
pub fn parse(text: &str, scale: u32, excess: Excess) -> Result<u128> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        bail!("expected digits before the decimal point in {text:?}");
    }
    if text.contains('.') && frac.is_empty() {
        bail!("expected digits after the decimal point in {text:?}");
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        bail!("expected only digits after the decimal point in {text:?}");
    }
    let frac = if frac.len() > scale as usize {
        let (kept, dropped) = frac.split_at(scale as usize);
        if excess == Excess::Reject && dropped.bytes().any(|c| c != b'0') {
            bail!("{text:?} has more than {scale} decimal places");
        }
        kept
    } else {
        frac
    };
    let mut v: u128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(c - b'0')))
            .ok_or_else(|| anyhow::anyhow!("{text:?} is too large"))?;
    }
    for _ in frac.len()..scale as usize {
        v = v
            .checked_mul(10)
            .ok_or_else(|| anyhow::anyhow!("{text:?} is too large"))?;
    }
    Ok(v)
}

/// Formats value × 10^-scale with exactly `scale` decimals. Any scale: from 39 on, 10^scale
/// exceeds every u128, so the integer part is 0.
pub fn format(v: u128, scale: u32) -> String {
    if scale == 0 {
        return v.to_string();
    }
    match 10u128.checked_pow(scale) {
        Some(p) => format!("{}.{:0width$}", v / p, v % p, width = scale as usize),
        None => format!("0.{v:0width$}", width = scale as usize),
    }
}

/// num / den rounded to the nearest integer, ties to even. `den` must be non-zero.
pub fn div_round(num: u128, den: u128) -> u128 {
    let q = num / den;
    let r = num % den;
    // Compare 2r with den without overflow: r < den.
    let twice_r_vs_den = if r > den - r {
        std::cmp::Ordering::Greater
    } else {
        r.cmp(&(den - r))
    };
    match twice_r_vs_den {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    }
}

/// floor(sqrt(v)).
pub fn isqrt(v: u128) -> u128 {
    if v < 2 {
        return v;
    }
    // Newton's method from an over-estimate.
    let mut x = 1u128 << (128 - v.leading_zeros()).div_ceil(2);
    loop {
        let y = (x + v / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// sqrt(num / den) rounded to the nearest integer. `den` must be non-zero.
pub fn sqrt_ratio_round(num: u128, den: u128) -> u128 {
    // s = floor(sqrt(num/den)) = floor(sqrt(floor(num/den))).
    let s = isqrt(num / den);
    // Round up iff num/den >= (s + 1/2)^2, i.e. num - den*s^2 >= den*s + den/4.
    let rem = num - den * s * s;
    let Some(lhs) = rem.checked_sub(den * s) else {
        return s;
    };
    match lhs.checked_mul(4) {
        Some(l) if l < den => s,
        _ => s + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse("12.345", 8, Excess::Reject).unwrap(), 1_234_500_000);
        assert_eq!(parse("0", 2, Excess::Reject).unwrap(), 0);
        assert_eq!(parse("7", 0, Excess::Reject).unwrap(), 7);
        assert_eq!(parse("1.50", 1, Excess::Reject).unwrap(), 15);
        assert_eq!(parse("1.59", 1, Excess::Truncate).unwrap(), 15);
        assert!(parse("1.59", 1, Excess::Reject).is_err());
        for bad in ["", "-1", "1.", ".5", "1e5", "1,5", " 1", "1.2.3", "+1"] {
            assert!(parse(bad, 2, Excess::Reject).is_err(), "{bad:?}");
        }
        assert!(parse(
            "999999999999999999999999999999999999999999",
            0,
            Excess::Reject
        )
        .is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format(1_234_500_000, 8), "12.34500000");
        assert_eq!(format(5, 2), "0.05");
        assert_eq!(format(5, 0), "5");
    }

    #[test]
    fn rounds_half_even() {
        assert_eq!(div_round(5, 2), 2);
        assert_eq!(div_round(7, 2), 4);
        assert_eq!(div_round(10, 4), 2);
        assert_eq!(div_round(11, 4), 3);
        assert_eq!(div_round(u128::MAX, u128::MAX), 1);
        assert_eq!(div_round(u128::MAX - 1, u128::MAX), 1);
    }

    #[test]
    fn square_roots() {
        for v in [0u128, 1, 2, 3, 4, 15, 16, 17, 1 << 100, u128::MAX] {
            let s = isqrt(v);
            assert!(s * s <= v);
            assert!((s + 1).checked_mul(s + 1).is_none_or(|q| q > v));
        }
        assert_eq!(sqrt_ratio_round(2, 1), 1); // 1.414
        assert_eq!(sqrt_ratio_round(3, 1), 2); // 1.732
        assert_eq!(sqrt_ratio_round(9, 4), 2); // 1.5 rounds up
        assert_eq!(sqrt_ratio_round(100, 1), 10);
    }
}
