//! Membership of shared bytes in public byte sets, as circuit wires: the character classes the
//! request and value checks are made of (digits, the safe set of query values, hex digits).
//!
//! A byte is its high nibble h and low nibble l. For each bit pair the four "pair equals ab"
//! indicators follow from one AND (x = p ∧ q gives ¬p∧¬q = 1⊕p⊕q⊕x, ¬p∧q = q⊕x, p∧¬q = p⊕x,
//! p∧q = x); the 16 indicators of each nibble cost 16 more ANDs; membership of any set S is
//! then ⊕_h [high = h] ∧ (⊕_{l : 16h+l ∈ S} [low = l]) — the indicators are exclusive, so XOR
//! is OR. Depth 3 for any set. Must not hold: openings.

use crate::engine::error::Result;

use super::circuit::{Circuit, Wire};
use super::shared::SharedBytes;

/// The nibble indicators of a shared byte string.
pub struct ByteClasses {
    high: Vec<Wire>,
    low: Vec<Wire>,
    len: usize,
}

/// The four indicators [pq = 00, 01, 10, 11] of bit wires p (high) and q (low).
fn pair(c: &mut Circuit, p: Wire, q: Wire) -> Result<[Wire; 4]> {
    let x = c.and(p, q)?;
    let pq = c.xor(p, q)?;
    let pqx = c.xor(pq, x)?;
    let none = c.not(pqx);
    Ok([none, c.xor(q, x)?, c.xor(p, x)?, x])
}

/// The 16 indicators [nibble = v] from its bits b3 b2 b1 b0.
fn nibble(c: &mut Circuit, b: [Wire; 4]) -> Result<Vec<Wire>> {
    let hi = pair(c, b[3], b[2])?;
    let lo = pair(c, b[1], b[0])?;
    let mut out = Vec::with_capacity(16);
    for v in 0..16 {
        out.push(c.and(hi[v >> 2], lo[v & 3])?);
    }
    Ok(out)
}

impl ByteClasses {
    /// The indicators of `bytes` (its 8 bit planes become circuit inputs).
    pub fn new(c: &mut Circuit, bytes: &SharedBytes) -> Result<Self> {
        let planes: Vec<Wire> = bytes.planes.iter().map(|p| c.input(p.clone())).collect();
        Self::from_planes(c, &planes, bytes.len())
    }

    /// The indicators of a byte string given as 8 plane wires (bit 0 first).
    pub fn from_planes(c: &mut Circuit, planes: &[Wire], len: usize) -> Result<Self> {
        let low = nibble(c, [planes[0], planes[1], planes[2], planes[3]])?;
        let high = nibble(c, [planes[4], planes[5], planes[6], planes[7]])?;
        Ok(ByteClasses { high, low, len })
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One bit per byte: whether it is in the set `member`.
    pub fn member(&self, c: &mut Circuit, member: impl Fn(u8) -> bool) -> Result<Wire> {
        let mut terms = Vec::new();
        for h in 0..16u8 {
            let lows: Vec<Wire> = (0..16u8)
                .filter(|l| member(h << 4 | l))
                .map(|l| self.low[usize::from(l)])
                .collect();
            match lows.len() {
                0 => {}
                16 => terms.push(self.high[usize::from(h)]),
                _ => {
                    let any_low = c.xor_all(&lows, self.len)?;
                    terms.push(c.and(self.high[usize::from(h)], any_low)?);
                }
            }
        }
        c.xor_all(&terms, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::{unpack, BitShares};
    use crate::engine::local::run3;

    #[tokio::test]
    async fn every_byte_classified_as_in_plaintext() {
        let bytes: Vec<u8> = (0..=255).collect();
        let sets: [fn(u8) -> bool; 4] = [
            |b| b.is_ascii_digit(),
            crate::oracle::template::request::is_safe_char,
            |b| b.is_ascii_hexdigit(),
            |b| b == b'.',
        ];
        let out = run3(9, move |mut s| {
            let bytes = bytes.clone();
            async move {
                let id = s.id();
                let zeros = SharedBytes {
                    planes: std::array::from_fn(|_| BitShares::zeros(bytes.len())),
                };
                let x = zeros.xor_public(id, &bytes)?;
                let mut c = Circuit::new(id);
                let classes = ByteClasses::new(&mut c, &x)?;
                let wires: Vec<Wire> = sets
                    .iter()
                    .map(|f| classes.member(&mut c, f))
                    .collect::<Result<_>>()?;
                let before = s.counters().rounds;
                let mut ands = 0;
                let v = c.eval(&mut s, &wires, &mut ands).await?;
                let rounds = s.counters().rounds - before;
                let mut opened = Vec::new();
                for w in &v {
                    opened.push(unpack(&s.open_bits(w).await?, 256));
                }
                Ok((opened, rounds))
            }
        })
        .await;
        for r in out {
            let (opened, rounds) = r.unwrap();
            assert_eq!(rounds, 3);
            for (k, f) in sets.iter().enumerate() {
                for b in 0..=255u8 {
                    assert_eq!(opened[k][usize::from(b)], f(b), "set {k} byte {b:#04x}");
                }
            }
        }
    }
}
