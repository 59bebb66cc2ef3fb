//! 128-bit blocks as bit planes: public blocks to planes and back, opening a batch of shared
//! blocks in one round, XOR with public blocks, and the byte-stream view of a batch.
//!
//! A batch of B blocks is a [`BitPlanes`] with 128 planes of B bits: plane 8k + i holds bit i
//! (0 = least significant) of byte k of every block (see the module documentation of
//! `circuits`). This module holds no circuit and no AND gates.

use super::super::binary::{pack, unpack, words_for, BitPlanes, BitShares};
use super::super::error::{EngineError, Result};
use super::super::session::Session;
use super::super::transport::{PartyId, Transport};

/// Bits per block.
pub const BLOCK_BITS: usize = 128;

/// The planes of public blocks, packed: `out[8k + i]` has bit β set iff bit i of byte k of
/// `blocks[β]` is set.
pub fn blocks_to_words(blocks: &[[u8; 16]]) -> Vec<Vec<u64>> {
    let mut out = vec![vec![0u64; words_for(blocks.len())]; BLOCK_BITS];
    for (beta, block) in blocks.iter().enumerate() {
        for (k, byte) in block.iter().enumerate() {
            for i in 0..8 {
                if (byte >> i) & 1 == 1 {
                    out[8 * k + i][beta / 64] |= 1u64 << (beta % 64);
                }
            }
        }
    }
    out
}

/// Inverse of [`blocks_to_words`]: `len` blocks from 128 packed planes.
pub fn planes_to_blocks(planes: &[Vec<u64>], len: usize) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; len];
    for (j, plane) in planes.iter().enumerate().take(BLOCK_BITS) {
        for (beta, bit) in unpack(plane, len).into_iter().enumerate() {
            out[beta][j / 8] |= (bit as u8) << (j % 8);
        }
    }
    out
}

/// Party `party`'s sharing of public blocks (no communication).
pub fn blocks_from_public(party: PartyId, blocks: &[[u8; 16]]) -> BitPlanes {
    let len = blocks.len();
    let planes = blocks_to_words(blocks)
        .into_iter()
        .map(|w| BitShares::from_public(party, &w, len).expect("words sized for len"))
        .collect();
    BitPlanes { planes, len }
}

/// `Invalid` unless `x` is a batch of 128-bit blocks with planes of length `x.len`.
pub(crate) fn check_blocks(op: &str, x: &BitPlanes) -> Result<()> {
    if x.planes.len() != BLOCK_BITS {
        return Err(EngineError::Invalid(format!(
            "{op}: {} planes, expected {BLOCK_BITS}",
            x.planes.len()
        )));
    }
    if let Some(p) = x.planes.iter().find(|p| p.len != x.len) {
        return Err(EngineError::Invalid(format!(
            "{op}: a plane of {} bits in a batch of {} blocks",
            p.len, x.len
        )));
    }
    Ok(())
}

/// The sharing of x ⊕ c for shared blocks `x` and public blocks `c` (one per block; local).
pub fn xor_public_blocks(party: PartyId, x: &BitPlanes, c: &[[u8; 16]]) -> Result<BitPlanes> {
    check_blocks("xor_public_blocks", x)?;
    if c.len() != x.len {
        return Err(EngineError::Invalid(format!(
            "xor_public_blocks: {} public blocks for {} shared ones",
            c.len(),
            x.len
        )));
    }
    let words = blocks_to_words(c);
    let planes = x
        .planes
        .iter()
        .zip(&words)
        .map(|(p, w)| p.xor_public(party, w))
        .collect::<Result<_>>()?;
    Ok(BitPlanes { planes, len: x.len })
}

/// XOR of two batches of the same size (local).
pub fn xor_blocks(x: &BitPlanes, y: &BitPlanes) -> Result<BitPlanes> {
    check_blocks("xor_blocks", x)?;
    check_blocks("xor_blocks", y)?;
    let planes = x
        .planes
        .iter()
        .zip(&y.planes)
        .map(|(p, q)| p.xor(q))
        .collect::<Result<_>>()?;
    Ok(BitPlanes { planes, len: x.len })
}

/// The batch as a stream of bytes: 8 planes of 16·B bits, element 16β + k being byte k of
/// block β (plane i = bit i of each byte), the layout of the plaintext bytes of a record
/// (local).
pub fn byte_stream(x: &BitPlanes) -> Result<BitPlanes> {
    check_blocks("byte_stream", x)?;
    let n = 16 * x.len;
    let gather = |comp: fn(&BitShares) -> &Vec<u64>, i: usize| -> Vec<u64> {
        let mut bits = vec![false; n];
        for k in 0..16 {
            for (beta, bit) in unpack(comp(&x.planes[8 * k + i]), x.len)
                .into_iter()
                .enumerate()
            {
                bits[16 * beta + k] = bit;
            }
        }
        pack(&bits)
    };
    let planes = (0..8)
        .map(|i| BitShares {
            a: gather(|s| &s.a, i),
            b: gather(|s| &s.b, i),
            len: n,
        })
        .collect();
    Ok(BitPlanes { planes, len: n })
}

impl<T: Transport> Session<T> {
    /// Opens a batch of shared blocks to all parties in one round (each party sends 16 bytes
    /// per block).
    pub async fn open_blocks(&mut self, x: &BitPlanes) -> Result<Vec<[u8; 16]>> {
        check_blocks("open_blocks", x)?;
        let all = BitShares::concat(&x.planes.iter().collect::<Vec<_>>());
        let opened = self.open_bits(&all).await?;
        let len = x.len;
        let bits = unpack(&opened, all.len);
        let planes: Vec<Vec<u64>> = bits.chunks(len.max(1)).map(pack).collect();
        Ok(planes_to_blocks(&planes, len))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::binary::tests::test_share;
    use crate::engine::local::run3;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// A random replicated sharing of `blocks` (see `binary::tests::test_share`).
    pub(crate) fn share_blocks(id: PartyId, blocks: &[[u8; 16]], seed: u64) -> BitPlanes {
        let planes = blocks_to_words(blocks)
            .iter()
            .enumerate()
            .map(|(j, w)| test_share(id, &unpack(w, blocks.len()), seed * 1000 + j as u64))
            .collect();
        BitPlanes {
            planes,
            len: blocks.len(),
        }
    }

    pub(crate) fn rand_blocks(seed: u64, n: usize) -> Vec<[u8; 16]> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen()).collect()
    }

    #[test]
    fn words_roundtrip_and_bit_order() {
        for n in [0usize, 1, 3, 64, 100] {
            let b = rand_blocks(n as u64, n);
            assert_eq!(planes_to_blocks(&blocks_to_words(&b), n), b);
        }
        let mut one = [0u8; 16];
        one[2] = 0x80;
        let w = blocks_to_words(&[one]);
        for (j, p) in w.iter().enumerate() {
            assert_eq!(p[0], (j == 8 * 2 + 7) as u64, "plane {j}");
        }
        // Planes are the bits of u128::from_le_bytes.
        let x = rand_blocks(7, 1)[0];
        let v = u128::from_le_bytes(x);
        for (j, p) in blocks_to_words(&[x]).iter().enumerate() {
            assert_eq!(p[0], ((v >> j) & 1) as u64);
        }
    }

    #[tokio::test]
    async fn open_xor_and_byte_stream() {
        let b = rand_blocks(1, 70);
        let c = rand_blocks(2, 70);
        let (b2, c2) = (b.clone(), c.clone());
        let out = run3(3, move |mut s| {
            let (b, c) = (b2.clone(), c2.clone());
            async move {
                let id = s.id();
                let x = blocks_from_public(id, &b);
                let y = xor_public_blocks(id, &x, &c)?;
                let before = s.counters();
                let opened = s.open_blocks(&y).await?;
                let after = s.counters();
                let stream = byte_stream(&x)?;
                let bits = BitShares::concat(&stream.planes.iter().collect::<Vec<_>>());
                let stream_open = s.open_bits(&bits).await?;
                assert!(xor_public_blocks(id, &x, &c[1..]).is_err());
                Ok((opened, after.rounds - before.rounds, stream_open))
            }
        })
        .await
        .map(|r| r.unwrap());
        let want: Vec<[u8; 16]> = b
            .iter()
            .zip(&c)
            .map(|(p, q)| std::array::from_fn(|k| p[k] ^ q[k]))
            .collect();
        let bytes: Vec<u8> = b.concat();
        for o in &out {
            assert_eq!(o.0, want);
            assert_eq!(o.1, 1);
            let bits = unpack(&o.2, 8 * bytes.len());
            for (e, byte) in bytes.iter().enumerate() {
                let mut v = 0u8;
                for i in 0..8 {
                    v |= (bits[i * bytes.len() + e] as u8) << i;
                }
                assert_eq!(v, *byte, "byte {e}");
            }
        }
    }
}
