//! The value window: the literals of the decimal check (ASCII digits, and '.' exactly
//! `decimals` places from the end) and the oblivious parse into an arithmetic share.
//!
//! A digit is a byte 0011 l3 l2 l1 l0 with l3 l2 l1 l0 ≤ 9, i.e. ¬l3 ∨ (¬l2 ∧ ¬l1). The high
//! nibble and the point are equality literals (local); the low nibble costs two ANDs per
//! byte: u = ¬l2 ∧ ¬l1, v = l3 ∧ ¬u, and the check is ¬v.

use crate::engine::binary::BitShares;
use crate::engine::error::Result;
use crate::engine::ring::{Ring, Z128};
use crate::engine::session::Session;
use crate::engine::share::Share;
use crate::engine::transport::{PartyId, Transport};

use super::inspect::mask;
use super::shared::SharedBytes;

/// The literals of the decimal check of one window.
pub struct Literals<'a> {
    id: PartyId,
    window: &'a SharedBytes,
    /// Positions that must be digits.
    digit: Vec<u64>,
    /// The position of the point, if any.
    point: Vec<u64>,
    targets: Vec<u8>,
}

/// The position of the point in a window of `len` bytes with `decimals` decimals (the caller
/// has checked `len ≥ decimals + 2` when `decimals > 0`).
pub fn point_at(len: usize, decimals: u32) -> Option<usize> {
    (decimals > 0).then(|| len - 1 - decimals as usize)
}

impl<'a> Literals<'a> {
    pub fn new(id: PartyId, window: &'a SharedBytes, decimals: u32) -> Result<Self> {
        let len = window.len();
        let point = point_at(len, decimals);
        Ok(Literals {
            id,
            window,
            digit: mask(len, |j| Some(j) != point),
            point: mask(len, |j| Some(j) == point),
            targets: (0..len)
                .map(|j| if Some(j) == point { b'.' } else { b'0' })
                .collect(),
        })
    }

    fn bit(&self, i: usize) -> &BitShares {
        &self.window.planes[i]
    }

    /// [¬l2, ¬l1]: their AND is u.
    pub fn u_group(&self) -> Vec<BitShares> {
        vec![self.bit(2).not(self.id), self.bit(1).not(self.id)]
    }

    /// [l3, ¬u]: their AND is v (low nibble > 9).
    pub fn v_group(&self, u: &BitShares) -> Vec<BitShares> {
        vec![self.bit(3).clone(), u.not(self.id)]
    }

    /// Eight literals that all hold iff the high nibble of every digit is 3 and the point is
    /// '.' (the low bits of digits are left to [`Literals::nibble_ok`]).
    pub fn pattern_group(&self) -> Result<Vec<BitShares>> {
        let mut lits = Vec::with_capacity(8);
        for i in 0..8 {
            let eq = self.window.bit_equals(self.id, i, &self.targets)?;
            lits.push(if i >= 4 {
                eq
            } else {
                eq.and_public(&self.point)?
                    .xor_public(self.id, &self.digit)?
            });
        }
        Ok(lits)
    }

    /// ¬v at digit positions, 1 at the point.
    pub fn nibble_ok(&self, v: &BitShares) -> Result<BitShares> {
        v.not(self.id)
            .and_public(&self.digit)?
            .xor_public(self.id, &self.point)
    }
}

/// Σ digit · 10^e over the integer digits and the first `scale` decimals of a checked window:
/// the value × 10^scale, digits beyond the scale truncated. The low nibbles go to arithmetic
/// shares with one B2A (two rounds); the rest is a public linear combination.
pub async fn value<T: Transport>(
    s: &mut Session<T>,
    window: &SharedBytes,
    decimals: u32,
    scale: u32,
) -> Result<Share<Z128>> {
    let len = window.len();
    let int_len = point_at(len, decimals).unwrap_or(len);
    let used = SharedBytes::concat(&[
        &window.slice(0, int_len)?,
        &window.slice((int_len + 1).min(len), scale as usize)?,
    ]);
    let k = used.len();
    let bits = BitShares::concat(&used.planes[..4].iter().collect::<Vec<_>>());
    let shares = s.b2a::<Z128>(&bits).await?;
    let mut acc = Share::<Z128>::zero();
    for (idx, sh) in shares.into_iter().enumerate() {
        let (t, d) = (idx / k, idx % k);
        let weight = (1u128 << t) * 10u128.pow((k - 1 - d) as u32);
        acc += sh.mul_public(Z128::from_u128(weight));
    }
    Ok(acc)
}
