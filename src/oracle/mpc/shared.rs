//! Shared byte strings and the AND trees the checks are built from.
//!
//! A [`SharedBytes`] is a string of n secret bytes as 8 bit planes of n bits (plane i = bit i
//! of every byte), the layout `engine::circuits::blocks::byte_stream` produces. Slicing,
//! concatenation and XOR with public bytes are local; [`open_bytes`] opens any number of
//! strings in one round. [`and_groups`] and [`and_across`] evaluate many AND trees side by
//! side, one [`Session::and_many`] per tree level, and count the AND gates.

use crate::engine::binary::{pack, unpack, BitShares};
use crate::engine::error::Result;
use crate::engine::session::Session;
use crate::engine::transport::{PartyId, Transport};

/// n shared bytes as 8 bit planes of n bits.
#[derive(Clone, Debug, Default)]
pub struct SharedBytes {
    pub planes: [BitShares; 8],
}

/// Bit `i` of every byte of `bytes`, packed.
fn plane_of(bytes: &[u8], i: usize) -> Vec<u64> {
    pack(&bytes.iter().map(|b| (b >> i) & 1 == 1).collect::<Vec<_>>())
}

impl SharedBytes {
    /// The empty string.
    pub fn empty() -> Self {
        SharedBytes::default()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.planes[0].len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `start .. start + len`.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self> {
        let mut planes: [BitShares; 8] = Default::default();
        for (out, p) in planes.iter_mut().zip(&self.planes) {
            *out = p.slice(start, len)?;
        }
        Ok(SharedBytes { planes })
    }

    /// The concatenation of `parts`.
    pub fn concat(parts: &[&SharedBytes]) -> Self {
        SharedBytes {
            planes: std::array::from_fn(|i| {
                BitShares::concat(&parts.iter().map(|p| &p.planes[i]).collect::<Vec<_>>())
            }),
        }
    }

    /// The sharing of x ⊕ c for public bytes c of the same length (local).
    pub fn xor_public(&self, party: PartyId, c: &[u8]) -> Result<Self> {
        let mut planes: [BitShares; 8] = Default::default();
        for (i, (out, p)) in planes.iter_mut().zip(&self.planes).enumerate() {
            *out = p.xor_public(party, &plane_of(c, i))?;
        }
        Ok(SharedBytes { planes })
    }

    /// One literal per byte: 1 where bit `i` of byte j equals bit `i` of `targets[j]`
    /// (`targets` as long as the string; local).
    pub fn bit_equals(&self, party: PartyId, i: usize, targets: &[u8]) -> Result<BitShares> {
        let not_target: Vec<u8> = targets.iter().map(|t| !t).collect();
        self.planes[i].xor_public(party, &plane_of(&not_target, i))
    }
}

/// Opens several shared strings to all parties in one round.
pub async fn open_bytes<T: Transport>(
    s: &mut Session<T>,
    parts: &[&SharedBytes],
) -> Result<Vec<Vec<u8>>> {
    let all = SharedBytes::concat(parts);
    let n = all.len();
    let bits = BitShares::concat(&all.planes.iter().collect::<Vec<_>>());
    let opened = unpack(&s.open_bits(&bits).await?, 8 * n);
    let mut bytes = vec![0u8; n];
    for (i, plane) in opened.chunks(n.max(1)).enumerate().take(8) {
        for (b, &bit) in bytes.iter_mut().zip(plane) {
            *b |= (bit as u8) << i;
        }
    }
    let mut out = Vec::with_capacity(parts.len());
    let mut pos = 0;
    for p in parts {
        out.push(bytes[pos..pos + p.len()].to_vec());
        pos += p.len();
    }
    Ok(out)
}

/// The element-wise AND of the vectors of each group (the vectors of a group have equal
/// lengths; an empty group is all ones of length 0), all groups side by side:
/// ⌈log2 (largest group)⌉ rounds. Adds the AND gates used to `ands`.
pub async fn and_groups<T: Transport>(
    s: &mut Session<T>,
    mut groups: Vec<Vec<BitShares>>,
    ands: &mut u64,
) -> Result<Vec<BitShares>> {
    while groups.iter().any(|g| g.len() > 1) {
        let mut pairs = Vec::new();
        for g in &groups {
            for pair in g.chunks_exact(2) {
                pairs.push((&pair[0], &pair[1]));
            }
        }
        *ands += pairs.iter().map(|(x, _)| x.len as u64).sum::<u64>();
        let mut products = s.and_many(&pairs).await?.into_iter();
        groups = groups
            .iter()
            .map(|g| {
                let mut next: Vec<BitShares> = products.by_ref().take(g.len() / 2).collect();
                if g.len() % 2 == 1 {
                    next.push(g[g.len() - 1].clone());
                }
                next
            })
            .collect();
    }
    Ok(groups
        .into_iter()
        .map(|mut g| g.pop().unwrap_or_default())
        .collect())
}

/// The AND of all elements of each vector (1 for an empty vector), all vectors side by side:
/// one bit per vector, ⌈log2 (longest vector)⌉ rounds. Adds the AND gates used to `ands`.
pub async fn and_across<T: Transport>(
    s: &mut Session<T>,
    mut vecs: Vec<BitShares>,
    ands: &mut u64,
) -> Result<BitShares> {
    let id = s.id();
    for v in vecs.iter_mut().filter(|v| v.len == 0) {
        *v = BitShares::from_public(id, &[1], 1)?;
    }
    while vecs.iter().any(|v| v.len > 1) {
        let mut halves = Vec::with_capacity(vecs.len());
        for v in &vecs {
            let h = v.len / 2;
            halves.push((
                v.slice(0, h)?,
                v.slice(h, h)?,
                v.slice(2 * h, v.len - 2 * h)?,
            ));
        }
        let pairs: Vec<(&BitShares, &BitShares)> = halves.iter().map(|(x, y, _)| (x, y)).collect();
        *ands += pairs.iter().map(|(x, _)| x.len as u64).sum::<u64>();
        let products = s.and_many(&pairs).await?;
        vecs = products
            .iter()
            .zip(&halves)
            .map(|(p, (_, _, rest))| BitShares::concat(&[p, rest]))
            .collect();
    }
    Ok(BitShares::concat(&vecs.iter().collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::run3;

    #[tokio::test]
    async fn open_and_trees_match_plaintext() {
        let out = run3(5, |mut s| async move {
            let id = s.id();
            let text = b"ab\r\n\r\nxyz".to_vec();
            let x = SharedBytes::concat(&[&SharedBytes::empty(), &SharedBytes::empty()]);
            assert!(x.is_empty());
            let zeros = SharedBytes::concat(&[&SharedBytes {
                planes: std::array::from_fn(|_| BitShares::zeros(text.len())),
            }]);
            let x = zeros.xor_public(id, &text)?;
            let opened = open_bytes(&mut s, &[&x.slice(0, 3)?, &x.slice(5, 4)?]).await?;
            // '\r' at every position: equality literals, one group per position class.
            let lits: Vec<BitShares> = (0..8)
                .map(|i| x.bit_equals(id, i, &vec![b'\r'; text.len()]))
                .collect::<Result<_>>()?;
            let mut ands = 0;
            let eq = and_groups(
                &mut s,
                vec![lits, vec![], vec![x.planes[0].clone()]],
                &mut ands,
            )
            .await?;
            let eq_open = s.open_bits(&eq[0]).await?;
            let all = and_across(
                &mut s,
                vec![
                    eq[0].not(id),
                    BitShares::zeros(0),
                    BitShares::from_public(id, &[u64::MAX; 2], 100)?,
                ],
                &mut ands,
            )
            .await?;
            let all_open = s.open_bits(&all).await?;
            Ok((opened, eq_open, all_open, ands))
        })
        .await
        .map(|r| r.unwrap());
        for o in &out {
            assert_eq!(o.0, vec![b"ab\r".to_vec(), b"\nxyz".to_vec()]);
            // '\r' at positions 2 and 4.
            assert_eq!(o.1, vec![0b10100]);
            // Not all non-'\r'; empty is true; 100 ones is true.
            assert_eq!(o.2, vec![0b110]);
            assert_eq!(o.3, 7 * 9 + (8 + 99));
        }
    }
}
