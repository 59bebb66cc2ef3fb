//! The consumer's last step under differential privacy: from the opened noisy values to the
//! printed answer. Noisy values are read as signed numbers and then clamped to what the
//! dataset allows (post-processing, which costs no privacy): a sum to [0, n·max], a
//! variance to [0, max²/4·n/d], a count to [0, n], a quantile to [0, max].

use anyhow::{bail, Result};
use num_bigint::{BigInt, BigUint};
use num_traits::{Signed, ToPrimitive, Zero};

use super::answer::{div_round_big as div_round, sqrt_ratio_round_big};
use super::{Query, Stat};
use crate::decimal;

/// A Z_2^128 value read as a signed number.
fn signed128(v: u128) -> BigInt {
    BigInt::from(v as i128)
}

/// A Z_2^256 value (low and high halves) read as a signed number.
fn signed256(lo: u128, hi: u128) -> BigInt {
    let u = BigInt::from(lo) + (BigInt::from(hi) << 128);
    if hi >> 127 == 1 {
        u - (BigInt::from(1u8) << 256)
    } else {
        u
    }
}

fn clamp(v: BigInt, hi: &BigInt) -> BigUint {
    let v = if v.is_negative() { BigInt::zero() } else { v };
    let v = if &v > hi { hi.clone() } else { v };
    v.to_biguint().expect("non-negative")
}

fn fmt(v: &BigUint, scale: u32) -> Result<String> {
    match v.to_u128() {
        Some(x) => Ok(decimal::format(x, scale)),
        None => bail!("result rejected: out of range"),
    }
}

/// The text of a differentially private answer over `count` contributions.
pub fn finish(q: &Query, count: u64, opened: &[u128]) -> Result<String> {
    let n = BigInt::from(count);
    let max = BigInt::from(q.max_scaled);
    Ok(match q.stat {
        Stat::Count => count.to_string(),
        Stat::Sum => fmt(&clamp(signed128(opened[0]), &(&n * &max)), q.scale)?,
        Stat::Mean => {
            let s = clamp(signed128(opened[0]), &(&n * &max));
            fmt(&div_round(&s, &BigUint::from(count)), q.scale)?
        }
        Stat::Variance | Stat::Stddev => {
            let s1 = signed256(opened[0], opened[1]);
            let s2 = signed256(opened[2], opened[3]);
            // V = n·Σx² − (Σx)², at most n²·max²/4.
            let v = &n * s2 - &s1 * &s1;
            let top = (&n * &n * &max * &max) / 4;
            let v = clamp(v, &top);
            let d = if q.population { count } else { count - 1 };
            let den = BigUint::from(count) * BigUint::from(d);
            let r = if q.stat == Stat::Variance {
                div_round(&v, &(den * BigUint::from(10u128.pow(q.scale))))
            } else {
                sqrt_ratio_round_big(&v, &den)
            };
            fmt(&r, q.scale)?
        }
        Stat::Median | Stat::Quantile | Stat::Percentile => {
            fmt(&clamp(signed128(opened[0]), &max), q.scale)?
        }
        Stat::Histogram => {
            let c: Vec<BigUint> = opened
                .iter()
                .map(|&v| clamp(BigInt::from(v as u64 as i64), &n))
                .collect();
            let e = |k: usize| decimal::format(q.edges[k], q.scale);
            let k = q.edges.len();
            let mut parts = vec![format!("< {}: {}", e(0), c[0])];
            for i in 0..k - 1 {
                parts.push(format!("[{}, {}): {}", e(i), e(i + 1), c[i + 1]));
            }
            parts.push(format!(">= {}: {}", e(k - 1), c[k]));
            parts.join(" · ")
        }
        Stat::Min | Stat::Max | Stat::Gini | Stat::Lorenz => {
            bail!(
                "{} is not released under differential privacy",
                q.stat.name()
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::Sign;

    #[test]
    fn signed_readings() {
        assert_eq!(signed128(u128::MAX), BigInt::from(-1));
        assert_eq!(signed128(5), BigInt::from(5));
        assert_eq!(signed256(u128::MAX, u128::MAX), BigInt::from(-1));
        assert_eq!(signed256(0, 1), BigInt::from(1u8) << 128);
        assert_eq!(
            clamp(
                BigInt::from_biguint(Sign::Minus, BigUint::from(3u8)),
                &BigInt::from(9)
            ),
            BigUint::zero()
        );
        assert_eq!(
            clamp(BigInt::from(12), &BigInt::from(9)),
            BigUint::from(9u8)
        );
    }
}
