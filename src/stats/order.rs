//! Order statistics in MPC: the values at given ranks, and the whole sorted vector.
//!
//! Comparison keys are value · 2^ℓ + i with i the public storage index, so no two keys are
//! equal (the engine's sort and selection open comparison bits after an oblivious shuffle,
//! which is safe only for distinct keys). The keys themselves are never opened: a sort
//! carries the values as a payload column; a selection takes the few selected keys' high
//! bits instead.

use super::key_bits;
use crate::engine::{BitShares, Result, Session, Share, Transport, Z128};

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

/// Shares of the values at the given 0-based ascending ranks. The selection shuffles the
/// keys alone (no payload column: half the shuffle's bytes); the values are then the keys'
/// high bits, ⌊key / 2^ℓ⌋, by bit decomposition and conversion of the few selected keys.
pub async fn at_ranks<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    ranks: &[usize],
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let (keys, bits) = keys(s, x, value_bits);
    let found = s.select_ranks(&keys, &[], ranks, bits).await?;
    let picked: Vec<Share<Z128>> = found.into_iter().map(|(k, _)| k).collect();
    values_of_keys(s, &picked, key_bits(x.len(), value_bits).0, value_bits).await
}

/// ⌊k / 2^ℓ⌋ for keys k below 2^(value_bits + ℓ): the bits ℓ.. of each key, as a value.
/// Exact (no probabilistic truncation).
async fn values_of_keys<T: Transport>(
    s: &mut Session<T>,
    k: &[Share<Z128>],
    l: u32,
    value_bits: u32,
) -> Result<Vec<Share<Z128>>> {
    let planes = s.a2b(k, value_bits + l).await?;
    let high: Vec<&BitShares> = planes.planes[l as usize..].iter().collect();
    s.b2a_planes(&high).await
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
