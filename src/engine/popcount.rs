//! Population counts in the boolean domain: the number of ones in each group of shared bits
//! as a bit-sliced binary number, from a tree of ripple-carry adders. About 2 ANDs per
//! input bit and 1 + 2 + … + L rounds for groups of up to 2^L bits, all groups at once.
//!
//! Malicious-mode B2A sums count this way and convert only the L-bit totals: an AND gate
//! costs a small fraction of a ring product to prove (64 gates share one GF(2^64) entry,
//! against one GR(2^k, 48) entry per product), so a histogram's counts over 10^6 bits
//! need about 3 · 10^4 proven AND words instead of 10^6 proven ring products. This module
//! holds the counting circuit only: no conversion, no proof.

use super::binary::BitShares;
use super::error::Result;
use super::session::Session;
use super::transport::Transport;

impl<T: Transport> Session<T> {
    /// The number of ones in each consecutive group of `group` bits of `x` (the last group
    /// may be shorter), as bit planes, least significant first: plane j holds bit j of
    /// every group's count. Empty for an empty `x`.
    pub(crate) async fn popcounts(
        &mut self,
        x: &BitShares,
        group: usize,
    ) -> Result<Vec<BitShares>> {
        if x.len == 0 {
            return Ok(Vec::new());
        }
        let group = group.clamp(1, x.len);
        let groups = x.len.div_ceil(group);
        // One plane of groups × group one-bit numbers, the last group padded with zeros.
        let pad = BitShares::zeros(groups * group - x.len);
        let mut planes = vec![BitShares::concat(&[x, &pad])];
        let mut cnt = group;
        while cnt > 1 {
            let half = cnt.div_ceil(2);
            let zeros = BitShares::zeros(2 * half - cnt);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for p in &planes {
                // Group g's first half against its second half, padded to the same length.
                let firsts = (0..groups)
                    .map(|g| p.slice(g * cnt, half))
                    .collect::<Result<Vec<_>>>()?;
                let seconds = (0..groups)
                    .map(|g| p.slice(g * cnt + half, cnt - half))
                    .collect::<Result<Vec<_>>>()?;
                a.push(BitShares::concat(&firsts.iter().collect::<Vec<_>>()));
                let padded: Vec<&BitShares> = seconds.iter().flat_map(|s| [s, &zeros]).collect();
                b.push(BitShares::concat(&padded));
            }
            planes = self.ripple_add(&a, &b).await?;
            cnt = half;
        }
        Ok(planes)
    }

    /// a + b for bit-sliced numbers of the same width w, element-wise: w + 1 planes, w
    /// rounds of one AND per element (carry = ((a ⊕ c) ∧ (b ⊕ c)) ⊕ c).
    async fn ripple_add(&mut self, a: &[BitShares], b: &[BitShares]) -> Result<Vec<BitShares>> {
        let mut out = Vec::with_capacity(a.len() + 1);
        let mut carry: Option<BitShares> = None;
        for (aj, bj) in a.iter().zip(b) {
            let next = match &carry {
                None => {
                    out.push(aj.xor(bj)?);
                    self.and(aj, bj).await?
                }
                Some(c) => {
                    let (ac, bc) = (aj.xor(c)?, bj.xor(c)?);
                    out.push(ac.xor(bj)?);
                    self.and(&ac, &bc).await?.xor(c)?
                }
            };
            carry = Some(next);
        }
        out.extend(carry);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::binary::tests::{rand_bits, recon_bits, test_share};
    use crate::engine::local::run3;

    /// Counts of random groups, of a group of all ones (the widest count) and of a short
    /// last group, against plaintext.
    #[tokio::test]
    async fn popcounts_match_plaintext() {
        for (len, group) in [
            (1usize, 1usize),
            (7, 3),
            (64, 64),
            (300, 37),
            (1000, 1000),
            (129, 200),
        ] {
            let mut bits = rand_bits(len as u64, len);
            if len == 64 {
                bits.iter_mut().for_each(|b| *b = true);
            }
            let b2 = bits.clone();
            let out = run3(9, move |mut s| {
                let bits = b2.clone();
                async move {
                    let x = test_share(s.id(), &bits, 5);
                    s.popcounts(&x, group).await
                }
            })
            .await;
            let parts = out.map(|r| r.unwrap());
            let width = parts[0].len();
            let planes: Vec<Vec<bool>> = (0..width)
                .map(|j| {
                    recon_bits(&[
                        parts[0][j].clone(),
                        parts[1][j].clone(),
                        parts[2][j].clone(),
                    ])
                })
                .collect();
            for (g, chunk) in bits.chunks(group.min(len)).enumerate() {
                let want = chunk.iter().filter(|b| **b).count();
                let got = planes
                    .iter()
                    .enumerate()
                    .fold(0usize, |acc, (j, p)| acc | (p[g] as usize) << j);
                assert_eq!(got, want, "len {len}, group {group}, group index {g}");
            }
        }
    }
}
