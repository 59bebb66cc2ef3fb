//! Order statistics in MPC: the values at given ranks, and the whole sorted vector.
//!
//! Comparison keys are value · 2^ℓ + i with i the public storage index, so no two keys are
//! equal (the engine's sort and selection open comparison bits after an oblivious shuffle,
//! which is safe only for distinct keys). The keys themselves are never opened: results are
//! taken from the payload, which carries the plain value shares.

use super::key_bits;
use crate::engine::{Result, Session, Share, Transport, Z128};

/// The keys of `x` (values below 2^value_bits) and the bits their comparisons need.
fn keys<T: Transport>(
    s: &Session<T>,
    x: &[Share<Z128>],
    value_bits: u32,
) -> (Vec<Share<Z128>>, u32) {
    let (l, bits) = key_bits(x.len(), value_bits);
    let me = s.id();
    let keys = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.mul_public(Z128(1u128 << l))
                .add_public(me, Z128(i as u128))
        })
        .collect();
    (keys, bits)
}

/// Shares of the values at the given 0-based ascending ranks.
pub async fn at_ranks<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    ranks: &[usize],
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let (keys, bits) = keys(s, x, value_bits);
    let found = s.select_ranks(&keys, &[x.to_vec()], ranks, bits).await?;
    Ok(found.into_iter().map(|(_, payload)| payload[0]).collect())
}

/// Shares of the values in ascending order.
pub async fn sorted<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let (keys, bits) = keys(s, x, value_bits);
    let (_, mut payload) = s.sort_by_key(&keys, &[x.to_vec()], bits).await?;
    Ok(payload.swap_remove(0))
}

/// The ranks numpy's linear `percentile` interpolates between, and the weight of the upper
/// one as a fraction num/den: result = x_lo + (num/den)·(x_hi − x_lo).
pub fn quantile_ranks(n: usize, q: super::Fraction) -> (usize, usize, u128) {
    let h = (n as u128 - 1) * q.num;
    let lo = (h / q.den) as usize;
    let frac = h % q.den;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, frac)
}
