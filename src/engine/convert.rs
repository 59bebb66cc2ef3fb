//! Conversions between the arithmetic and the boolean domain: bit decomposition (A2B), the
//! most significant bit alone, B2A, and bit injection (b · x), as methods of [`Session`];
//! plus the bit-matrix transposition between integer vectors and bit planes.
//!
//! **Two summands instead of three.** Every arithmetic sharing x = x_0 + x_1 + x_2 is turned
//! into two boolean-shared numbers V + W ≡ x (mod 2^bits) in one cheap round: the elements
//! are split into three word-aligned blocks, block o "owned" by party o. The owner knows
//! x_o and x_{o+1} and inputs V = x_o + x_{o+1} as a boolean sharing (it sends V ⊕ r to its
//! previous party, r common with its next party: `bits` bits per owned element, so about
//! bits/3 bits per element per party). W = x_{o+2} is known to parties o + 1 and o + 2 and
//! is a boolean sharing with no communication (component o + 2 = W, the others zero). The
//! adder then needs no carry-save layer. The same split gives B2A: the owner inputs
//! d = c_o ⊕ c_{o+1} arithmetically and c = d ⊕ c_{o+2} = c_{o+2} + d (1 − 2 c_{o+2}) is one
//! product.
//!
//! Costs (per element, per party, `k` = bits): [`Session::msb`] is 2 + ⌈log2(k − 1)⌉
//! rounds and [`msb_and_gates`]`(k)` ≈ 2.4k AND gates, one bit each, plus ≈ k/3 input bits;
//! [`Session::a2b`] [`a2b_rounds`]`(k)` (one more) with two-bit blocks and a Sklansky
//! prefix adder over them, [`a2b_and_gates`]`(k)` ≈ 3.5k ANDs for k = 47; [`Session::b2a`] 2 rounds
//! and 4/3 ring elements.

use std::ops::Range;

use super::binary::{clear_tail, decode_bits, encode_bits_into, words_for, BitPlanes, BitShares};
use super::error::{EngineError, Result};
use super::ring::{Ring, Z64};
use super::session::{take, Session};
use super::share::{sum, Share};
use super::transport::{Expect, Outgoing, PartyId, Peer, Transport};

/// In-place transpose of a 64×64 bit matrix: bit c of row r moves to bit r of row c.
fn transpose64(m: &mut [u64; 64]) {
    let mut j = 32usize;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0usize;
        while k < 64 {
            // Swap the high j columns of row k with the low j columns of row k + j.
            let t = ((m[k] >> j) ^ m[k + j]) & mask;
            m[k] ^= t << j;
            m[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

/// Bit planes of `values`: plane j (j < `bits`) has bit j of every value, packed 64 values
/// per word (⌈n/64⌉ words, unused high bits zero). Bits of the values at or above `bits` are
/// ignored. Panics if `bits` > 128.
pub fn transpose_to_planes(values: &[u128], bits: u32) -> Vec<Vec<u64>> {
    assert!(bits <= 128, "transpose_to_planes: {bits} bits > 128");
    let bits = bits as usize;
    let words = words_for(values.len());
    let mut planes = vec![vec![0u64; words]; bits];
    let mut m = [0u64; 64];
    for (c, chunk) in values.chunks(64).enumerate() {
        for h in 0..bits.div_ceil(64) {
            for (t, v) in chunk.iter().enumerate() {
                m[t] = (v >> (64 * h)) as u64;
            }
            m[chunk.len()..].fill(0);
            transpose64(&mut m);
            for j in 0..(bits - 64 * h).min(64) {
                planes[64 * h + j][c] = m[j];
            }
        }
    }
    planes
}

/// Inverse of [`transpose_to_planes`]: `len` values from `planes.len()` ≤ 128 planes of
/// ⌈len/64⌉ words each (missing words read as zero).
pub fn planes_to_values(planes: &[Vec<u64>], len: usize) -> Vec<u128> {
    assert!(
        planes.len() <= 128,
        "planes_to_values: more than 128 planes"
    );
    let mut values = vec![0u128; len];
    let mut m = [0u64; 64];
    for c in 0..words_for(len) {
        let chunk = &mut values[64 * c..(64 * c + 64).min(len)];
        for h in 0..planes.len().div_ceil(64) {
            let count = (planes.len() - 64 * h).min(64);
            for (j, row) in m.iter_mut().enumerate() {
                *row = if j < count {
                    planes[64 * h + j].get(c).copied().unwrap_or(0)
                } else {
                    0
                };
            }
            transpose64(&mut m);
            for (t, v) in chunk.iter_mut().enumerate() {
                *v |= (m[t] as u128) << (64 * h);
            }
        }
    }
    values
}

/// The elements of the block owned by party `o` among `n`, in order: word-aligned thirds
/// from three words on, plain thirds below (so that no party inputs every bit of a short
/// vector).
pub fn owner_block(n: usize, o: PartyId) -> Range<usize> {
    let words = words_for(n);
    if words < 3 {
        return n * o / 3..n * (o + 1) / 3;
    }
    let lo = 64 * (words * o / 3);
    let hi = (64 * (words * (o + 1) / 3)).min(n);
    lo.min(n)..hi
}

/// 2^bits − 1.
fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

pub(crate) fn check_bits<R: Ring>(op: &str, bits: u32) -> Result<()> {
    if (1..=R::BITS).contains(&bits) {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: {bits} bits, expected 1..={}",
            R::BITS
        )))
    }
}

fn same_len(op: &str, x: usize, y: usize) -> Result<()> {
    if x == y {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: vectors of different lengths {x} and {y}"
        )))
    }
}

/// `words` random words drawn from the common stream with `peer`.
fn common_words<T: Transport>(s: &mut Session<T>, peer: Peer, words: usize) -> Vec<u64> {
    s.correlated()
        .common_with::<Z64>(peer, words)
        .into_iter()
        .map(|z| z.0)
        .collect()
}

fn bit_at(words: &[u64], e: usize) -> bool {
    (words[e / 64] >> (e % 64)) & 1 == 1
}

/// a + b − 2p element-wise: a ⊕ b for bits a, b when p = a b.
fn xor_combine<R: Ring>(a: &[Share<R>], b: &[Share<R>], p: &[Share<R>]) -> Vec<Share<R>> {
    let two = R::from_u64(2);
    a.iter()
        .zip(b)
        .zip(p)
        .map(|((a, b), p)| *a + *b - p.mul_public(two))
        .collect()
}

fn ring_bit<R: Ring>(b: bool) -> R {
    if b {
        R::one()
    } else {
        R::zero()
    }
}

/// Number of AND gates of [`Session::msb`] on `bits` bits, per element: m = `bits − 1`
/// carry bits in blocks of two (the highest block has one bit when m is odd), one AND per
/// bit to ripple each block's carry from a carry in of zero, one per two-bit block above
/// the lowest for its propagate, then a binary generate/propagate tree over the blocks that
/// skips the propagate ANDs of the blocks containing bit 0.
pub fn msb_and_gates(bits: u32) -> usize {
    let m = bits.saturating_sub(1) as usize;
    if m == 0 {
        return 0;
    }
    let mut ands = m + (m / 2).saturating_sub(1);
    // (number of blocks, the lowest block has no P)
    let mut blocks = m.div_ceil(2);
    while blocks > 1 {
        let pairs = blocks / 2;
        ands += pairs + (pairs - 1);
        blocks -= pairs;
    }
    ands
}

/// The merges of a Sklansky prefix tree over `m` positions: 2 ANDs per merge, 1 where
/// the range starts at position 0.
fn sklansky_ands(m: usize) -> usize {
    let mut ands = 0;
    let mut level = 0;
    while (1usize << level) < m {
        let half = 1usize << level;
        ands += (0..m)
            .filter(|j| j & half != 0)
            .map(|j| 1 + usize::from(j >> (level + 1) << (level + 1) > 0))
            .sum::<usize>();
        level += 1;
    }
    ands
}

/// Number of AND gates of [`Session::a2b`]'s adder on `bits` bits, per element, for its
/// m = `bits − 1` carries in blocks of two bits (the last alone when m is odd): one
/// generate per block, one propagate and one ripple AND per two-bit block (no propagate
/// for the lowest), a Sklansky prefix tree over the blocks, and one AND per two-bit block
/// above the lowest for the carry inside it. Malicious mode adds `bits − 1` for its
/// carry-save layer.
pub fn a2b_and_gates(bits: u32) -> usize {
    let m = bits.saturating_sub(1) as usize;
    let (blocks, twos) = (m.div_ceil(2), m / 2);
    blocks + 2 * twos.saturating_sub(1) + twos + sklansky_ands(blocks)
}

/// Rounds of [`Session::a2b`] on `bits` bits: the input round, the generates, the ripple
/// (with two-bit blocks), ⌈log2⌉ of the blocks for the prefix tree, and the carries inside
/// the blocks (with two-bit blocks above the lowest).
pub fn a2b_rounds(bits: u32) -> u64 {
    let m = bits.saturating_sub(1) as usize;
    if m == 0 {
        return 1;
    }
    let (blocks, twos) = (m.div_ceil(2), m / 2);
    2 + u64::from(twos >= 1)
        + u64::from(blocks.next_power_of_two().trailing_zeros())
        + u64::from(twos >= 2)
}

/// Rounds of [`Session::msb`] on `bits` bits: the input round, the
/// generate round and ⌈log2(bits − 1)⌉ tree levels.
pub fn msb_rounds(bits: u32) -> u64 {
    match bits {
        0 | 1 => 1,
        _ => 2 + u64::from((bits - 1).next_power_of_two().trailing_zeros()),
    }
}

/// Per-block pieces of a boolean sharing, for assembling planes over the whole vector.
struct Piece {
    a: Vec<Vec<u64>>,
    b: Vec<Vec<u64>>,
}

fn zero_planes(bits: usize, len: usize) -> Vec<Vec<u64>> {
    vec![vec![0u64; words_for(len)]; bits]
}

/// Concatenates the blocks plane by plane (bit by bit when they are not word-aligned).
fn assemble(pieces: [Piece; 3], bits: usize, n: usize) -> Vec<BitShares> {
    if words_for(n) < 3 {
        return (0..bits)
            .map(|j| {
                let parts: Vec<BitShares> = (0..3)
                    .map(|o| BitShares {
                        a: pieces[o].a[j].clone(),
                        b: pieces[o].b[j].clone(),
                        len: owner_block(n, o).len(),
                    })
                    .collect();
                BitShares::concat(&parts.iter().collect::<Vec<_>>())
            })
            .collect();
    }
    (0..bits)
        .map(|j| {
            let mut a = Vec::with_capacity(words_for(n));
            let mut b = Vec::with_capacity(words_for(n));
            for p in &pieces {
                a.extend_from_slice(&p.a[j]);
                b.extend_from_slice(&p.b[j]);
            }
            BitShares { a, b, len: n }
        })
        .collect()
}

impl<T: Transport> Session<T> {
    /// Boolean bit planes of two numbers V, W with V + W ≡ x (mod 2^bits), or
    /// V − W ≡ x if `negate_w` (then V = W exactly when x ≡ 0). One round, `bits` bits per
    /// owned element. See the module documentation.
    pub(crate) async fn two_summands<R: Ring>(
        &mut self,
        x: &[Share<R>],
        bits: u32,
        negate_w: bool,
    ) -> Result<(Vec<BitShares>, Vec<BitShares>)> {
        if self.malicious() {
            return self.two_summands_csa(x, bits, negate_w).await;
        }
        let n = x.len();
        let k = bits as usize;
        let me = self.id();
        let (prev, next) = (Peer::Prev.of(me), Peer::Next.of(me));
        let own = owner_block(n, me);
        let prev_block = owner_block(n, prev);
        let next_block = owner_block(n, next);
        let mask = low_mask(bits);

        // V for the own block, masked with r common with the next party.
        let v: Vec<u128> = x[own.clone()]
            .iter()
            .map(|s| (s.a + s.b).to_u128() & mask)
            .collect();
        let mut masked = transpose_to_planes(&v, bits);
        let own_words = words_for(own.len());
        let r = common_words(self, Peer::Next, k * own_words);
        let mut r_planes: Vec<Vec<u64>> = r.chunks(own_words.max(1)).map(<[u64]>::to_vec).collect();
        r_planes.resize(k, Vec::new());
        let mut msg = Vec::with_capacity(k * own.len().div_ceil(8));
        for (m, r) in masked.iter_mut().zip(r_planes.iter_mut()) {
            clear_tail(r, own.len());
            m.iter_mut().zip(r.iter()).for_each(|(m, r)| *m ^= r);
            encode_bits_into(&mut msg, m, own.len());
        }
        // The previous party's r, common with it.
        let prev_words = words_for(prev_block.len());
        let r_prev = common_words(self, Peer::Prev, k * prev_words);
        let mut r_prev: Vec<Vec<u64>> = r_prev
            .chunks(prev_words.max(1))
            .map(<[u64]>::to_vec)
            .collect();
        r_prev.resize(k, Vec::new());
        r_prev
            .iter_mut()
            .for_each(|r| clear_tail(r, prev_block.len()));

        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let expect = Expect {
            next: true,
            prev: false,
        };
        let inc = self.exchange(out, expect).await?;
        let from_next = decode_bits(inc.next, Peer::Next, &vec![next_block.len(); k])?;

        // W = x_{o+2}: this party holds it as b in the previous party's block and as a in
        // the next party's block.
        let w_of = |v: R| {
            let v = if negate_w { -v } else { v };
            v.to_u128() & mask
        };
        let wb: Vec<u128> = x[prev_block.clone()].iter().map(|s| w_of(s.b)).collect();
        let wa: Vec<u128> = x[next_block.clone()].iter().map(|s| w_of(s.a)).collect();
        let wb = transpose_to_planes(&wb, bits);
        let wa = transpose_to_planes(&wa, bits);

        let own_zero = zero_planes(k, own.len());
        let prev_zero = zero_planes(k, prev_block.len());
        let next_zero = zero_planes(k, next_block.len());
        let mut v_pieces: [Option<Piece>; 3] = [None, None, None];
        let mut w_pieces: [Option<Piece>; 3] = [None, None, None];
        v_pieces[me] = Some(Piece {
            a: masked,
            b: r_planes,
        });
        w_pieces[me] = Some(Piece {
            a: own_zero.clone(),
            b: own_zero,
        });
        v_pieces[prev] = Some(Piece {
            a: r_prev,
            b: prev_zero.clone(),
        });
        w_pieces[prev] = Some(Piece {
            a: prev_zero,
            b: wb,
        });
        v_pieces[next] = Some(Piece {
            a: next_zero.clone(),
            b: from_next,
        });
        w_pieces[next] = Some(Piece {
            a: wa,
            b: next_zero,
        });
        let unwrap = |p: [Option<Piece>; 3]| p.map(|q| q.expect("one piece per block"));
        Ok((
            assemble(unwrap(v_pieces), k, n),
            assemble(unwrap(w_pieces), k, n),
        ))
    }

    /// The malicious-mode split, with no input by any single party (an input V would have
    /// to be proven): each component x_j is a boolean number its two holders place with no
    /// communication, and one carry-save layer turns the three into V = x_0 ⊕ x_1 ⊕ x_2 and
    /// W = 2 · maj(x_0, x_1, x_2) with V + W ≡ x, at one round of bits − 1 ANDs per element
    /// (proven like every AND). With `negate_w` the third number is ¬(−x_2) instead, so
    /// that x_0 + x_1 + ¬(−x_2) = x − 1 = V + 2C and W = ¬(2C): then x ≡ 0 exactly when
    /// V = W, which is all `is_zero` needs.
    async fn two_summands_csa<R: Ring>(
        &mut self,
        x: &[Share<R>],
        bits: u32,
        negate_w: bool,
    ) -> Result<(Vec<BitShares>, Vec<BitShares>)> {
        let (v, w, _) = self.csa_layer(x, bits, negate_w, false).await?;
        Ok((v, w))
    }

    /// The wrap count of the components of Z_2^128 shares read as integers: the integer
    /// a_0 + a_1 + a_2 is x + 2^128·(t + c) for the two bits (t, c) returned. The carry-save
    /// layer gives a_0 + a_1 + a_2 = V + 2·M exactly, where 2·M = W + M_127·2^128; so t is
    /// M_127 (the carry the layer drops mod 2^128) and c the carry out of V + W. Proven
    /// ANDs only, no input: 128 ANDs for the layer, then the carry tree.
    pub(crate) async fn wrap_bits(
        &mut self,
        x: &[Share<super::ring::Z128>],
    ) -> Result<(BitShares, BitShares)> {
        let (v, w, top) = self.csa_layer(x, 128, false, true).await?;
        let carry = self.carry_out(&v, &w, x.len()).await?;
        Ok((top.expect("asked for the top carry"), carry))
    }

    /// The carry-save layer of [`Session::two_summands_csa`]; with `top` also the
    /// majority of the top bit plane (the carry of weight 2^bits that V + W drops).
    async fn csa_layer<R: Ring>(
        &mut self,
        x: &[Share<R>],
        bits: u32,
        negate_w: bool,
        top: bool,
    ) -> Result<(Vec<BitShares>, Vec<BitShares>, Option<BitShares>)> {
        let n = x.len();
        let k = bits as usize;
        let me = self.id();
        let mask = low_mask(bits);
        let value = |v: R, j: usize| {
            let v = if negate_w && j == 2 { -v } else { v };
            v.to_u128() & mask
        };
        // U_j: component j of the boolean sharing is the bits of x_j, the others zero.
        let number = |j: usize| -> Vec<BitShares> {
            let zeros = || zero_planes(k, n);
            let a = if me == j {
                transpose_to_planes(&x.iter().map(|s| value(s.a, j)).collect::<Vec<_>>(), bits)
            } else {
                zeros()
            };
            let b = if (me + 1) % 3 == j {
                transpose_to_planes(&x.iter().map(|s| value(s.b, j)).collect::<Vec<_>>(), bits)
            } else {
                zeros()
            };
            a.into_iter()
                .zip(b)
                .map(|(a, b)| BitShares { a, b, len: n })
                .collect()
        };
        let (u0, u1) = (number(0), number(1));
        let mut u2 = number(2);
        if negate_w {
            u2 = u2.iter().map(|p| p.not(me)).collect();
        }
        let t1: Vec<BitShares> = u0.iter().zip(&u2).map(|(a, c)| a.xor_same(c)).collect();
        let t2: Vec<BitShares> = u1.iter().zip(&u2).map(|(b, c)| b.xor_same(c)).collect();
        let planes = if top { k } else { k - 1 };
        let pairs: Vec<(&BitShares, &BitShares)> = t1[..planes].iter().zip(&t2[..planes]).collect();
        let ands = self.and_many(&pairs).await?;
        let v: Vec<BitShares> = t1.iter().zip(&u1).map(|(t, b)| t.xor_same(b)).collect();
        let mut w = Vec::with_capacity(k + 1);
        w.push(BitShares::zeros(n));
        for (g, c) in ands.iter().zip(&u2) {
            w.push(g.xor_same(c));
        }
        let carry = if top { w.pop() } else { None };
        if negate_w {
            w = w.iter().map(|p| p.not(me)).collect();
        }
        Ok((v, w, carry))
    }

    /// The carry out of V + W over the given planes (bit 0 first), in 1 + ⌈log2 m⌉ rounds
    /// for m planes, [`msb_and_gates`]`(m + 1)` ANDs per element. The planes go in blocks of
    /// two bits (bits 2i, 2i + 1; the highest block is bit m − 1 alone when m is odd), and
    /// each block's carry out from a carry in of zero ripples in two rounds at one AND per
    /// bit: c = v_{2i} ∧ w_{2i}, then G = maj(v_{2i+1}, w_{2i+1}, c) = c ⊕ (v ⊕ c)(w ⊕ c).
    /// Its propagate P = p_{2i} ∧ p_{2i+1} (p = v ⊕ w) takes the first of those rounds. A
    /// generate/propagate tree over the blocks follows. Two bits per block cost 3 ANDs here
    /// against 4 as two leaves of the tree (two generates and one merge), in the same two
    /// rounds.
    async fn carry_out(&mut self, v: &[BitShares], w: &[BitShares], n: usize) -> Result<BitShares> {
        if v.is_empty() {
            return Ok(BitShares::zeros(n));
        }
        let p: Vec<BitShares> = v.iter().zip(w).map(|(a, b)| a.xor_same(b)).collect();
        let (_, blocks) = self.two_bit_blocks(v, w, &p).await?;
        self.carry_tree(blocks, n).await
    }

    /// The (generate, propagate) of every two-bit block (bits 2i, 2i + 1; the highest block
    /// is bit m − 1 alone when m = `v.len()` is odd) from a carry in of zero, with the low
    /// bits' generates v_{2i} ∧ w_{2i}, in two rounds: round 1 the low generates and the
    /// propagate p_{2i} ∧ p_{2i+1} of every two-bit block above the lowest (whose carry in
    /// is zero, so its P is never needed), round 2 the ripple G = maj(v_{2i+1}, w_{2i+1},
    /// c) = c ⊕ (v ⊕ c)(w ⊕ c) with c the low generate. `p` is v ⊕ w; `v` is not empty.
    #[allow(clippy::type_complexity)] // (low generates, blocks) as the callers take them
    async fn two_bit_blocks(
        &mut self,
        v: &[BitShares],
        w: &[BitShares],
        p: &[BitShares],
    ) -> Result<(Vec<BitShares>, Vec<(BitShares, Option<BitShares>)>)> {
        let m = v.len();
        let lows: Vec<usize> = (0..m).step_by(2).collect();
        let two = |i: usize| i + 1 < m;
        let mut pairs: Vec<(&BitShares, &BitShares)> =
            lows.iter().map(|&i| (&v[i], &w[i])).collect();
        pairs.extend(
            lows.iter()
                .filter(|&&i| i > 0 && two(i))
                .map(|&i| (&p[i], &p[i + 1])),
        );
        let mut first = self.and_many(&pairs).await?.into_iter();
        let g_low: Vec<BitShares> = first.by_ref().take(lows.len()).collect();
        let mut props = first;
        let diffs: Vec<(BitShares, BitShares)> = lows
            .iter()
            .zip(&g_low)
            .filter(|(&i, _)| two(i))
            .map(|(&i, c)| (v[i + 1].xor_same(c), w[i + 1].xor_same(c)))
            .collect();
        let pairs: Vec<(&BitShares, &BitShares)> = diffs.iter().map(|(a, b)| (a, b)).collect();
        let mut ripple = if pairs.is_empty() {
            Vec::new()
        } else {
            self.and_many(&pairs).await?
        }
        .into_iter();
        let blocks = lows
            .iter()
            .zip(&g_low)
            .map(|(&i, g)| {
                if two(i) {
                    let g = g.xor_same(&ripple.next().expect("one ripple per two-bit block"));
                    (
                        g,
                        (i > 0).then(|| props.next().expect("one P per upper block")),
                    )
                } else {
                    // The one-bit top block (m odd): its P is p itself.
                    (g.clone(), (i > 0).then(|| p[i].clone()))
                }
            })
            .collect();
        Ok((g_low, blocks))
    }

    /// The carry out of the top block, from (generate, propagate) per bit, low to high; the
    /// block containing bit 0 needs no propagate (its generate includes any carry in). One
    /// round per level of a binary tree, 2 ANDs per merge (1 where the lower block is the
    /// lowest).
    pub(crate) async fn carry_tree(
        &mut self,
        mut blocks: Vec<(BitShares, Option<BitShares>)>,
        n: usize,
    ) -> Result<BitShares> {
        while blocks.len() > 1 {
            let mut ands: Vec<(&BitShares, &BitShares)> = Vec::new();
            for pair in blocks.chunks_exact(2) {
                let (lo, hi) = (&pair[0], &pair[1]);
                let p_hi = hi.1.as_ref().expect("only the lowest block lacks P");
                ands.push((p_hi, &lo.0));
                if let Some(p_lo) = &lo.1 {
                    ands.push((p_hi, p_lo));
                }
            }
            let mut res = self.and_many(&ands).await?.into_iter();
            let mut next = Vec::with_capacity(blocks.len().div_ceil(2));
            let mut it = blocks.into_iter();
            while let Some(lo) = it.next() {
                match it.next() {
                    Some(hi) => {
                        let mut g = hi.0;
                        g.xor_assign_same(&res.next().expect("one G per pair"));
                        let p = lo.1.map(|_| res.next().expect("one P per pair with P"));
                        next.push((g, p));
                    }
                    None => next.push(lo),
                }
            }
            blocks = next;
        }
        Ok(blocks
            .pop()
            .map(|b| b.0)
            .unwrap_or_else(|| BitShares::zeros(n)))
    }

    /// Bit (bits − 1) of x mod 2^bits, for every element: the sign bit of x read as a
    /// two's-complement number on `bits` bits. [`msb_rounds`]`(bits)` rounds and
    /// [`msb_and_gates`]`(bits)` one-bit ANDs plus about bits/3 input bits per element.
    pub async fn msb<R: Ring>(&mut self, x: &[Share<R>], bits: u32) -> Result<BitShares> {
        check_bits::<R>("msb", bits)?;
        let k = bits as usize;
        let (v, w) = self.two_summands(x, bits, false).await?;
        let top = v[k - 1].xor_same(&w[k - 1]);
        let carry = self.carry_out(&v[..k - 1], &w[..k - 1], x.len()).await?;
        Ok(top.xor_same(&carry))
    }

    /// Bit decomposition of x mod 2^bits: `planes[j]` is bit j of every element. Two
    /// summands, two-bit blocks, a Sklansky parallel-prefix adder over the blocks, then the
    /// carries inside them: [`a2b_rounds`]`(bits)` rounds, [`a2b_and_gates`]`(bits)` ANDs.
    pub async fn a2b<R: Ring>(&mut self, x: &[Share<R>], bits: u32) -> Result<BitPlanes> {
        check_bits::<R>("a2b", bits)?;
        let n = x.len();
        let k = bits as usize;
        let (v, w) = self.two_summands(x, bits, false).await?;
        let p: Vec<BitShares> = v.iter().zip(&w).map(|(a, b)| a.xor_same(b)).collect();
        let m = k - 1;
        if m == 0 {
            return Ok(BitPlanes { planes: p, len: n });
        }
        // Two-bit blocks as in `carry_out`; gs[b], ps[b] become the generate and propagate
        // of blocks [start, b] (no P when start = 0).
        let (g_low, blocks) = self.two_bit_blocks(&v[..m], &w[..m], &p[..m]).await?;
        let (mut gs, mut ps): (Vec<BitShares>, Vec<Option<BitShares>>) = blocks.into_iter().unzip();
        let lows: Vec<usize> = (0..m).step_by(2).collect();
        let two = |i: usize| i + 1 < m;
        let blocks = lows.len();
        let mut level = 0;
        while (1usize << level) < blocks {
            let half = 1usize << level;
            let mut ands: Vec<(&BitShares, &BitShares)> = Vec::new();
            let mut targets: Vec<(usize, bool)> = Vec::new();
            for j in (0..blocks).filter(|j| j & half != 0) {
                let src = (j >> level << level) - 1;
                let start = j >> (level + 1) << (level + 1);
                let p_j = ps[j].as_ref().expect("upper half ranges start above 0");
                ands.push((p_j, &gs[src]));
                if start > 0 {
                    ands.push((p_j, ps[src].as_ref().expect("range starts above 0")));
                }
                targets.push((j, start > 0));
            }
            let mut res = self.and_many(&ands).await?.into_iter();
            for (j, with_p) in targets {
                gs[j].xor_assign_same(&res.next().expect("one G per target"));
                ps[j] = if with_p {
                    Some(res.next().expect("one P per target with P"))
                } else {
                    None
                };
            }
            level += 1;
        }
        // The carry into bit 2i + 2 is gs[i]; into bit 2i + 1 of a two-bit block it is
        // g_{2i} ⊕ p_{2i} c_{2i}, one more round (c_0 = 0: block 0's is g_0).
        let fix: Vec<(&BitShares, &BitShares)> = lows
            .iter()
            .enumerate()
            .filter(|&(b, &i)| b > 0 && two(i))
            .map(|(b, &i)| (&p[i], &gs[b - 1]))
            .collect();
        let mut fixed = if fix.is_empty() {
            Vec::new()
        } else {
            self.and_many(&fix).await?
        }
        .into_iter();
        let mut carry: Vec<BitShares> = vec![BitShares::zeros(n)];
        for (b, &i) in lows.iter().enumerate() {
            if two(i) {
                let mut c = g_low[b].clone();
                if b > 0 {
                    c.xor_assign_same(&fixed.next().expect("one fix per upper two-bit block"));
                }
                carry.push(c);
            }
            carry.push(gs[b].clone());
        }
        let planes = p
            .iter()
            .zip(&carry)
            .map(|(pj, cj)| pj.xor_same(cj))
            .collect();
        Ok(BitPlanes { planes, len: n })
    }

    /// The three components of a boolean sharing as arithmetic sharings of bits, with no
    /// communication: component j of the j-th sharing is the bit c_j (held by parties j
    /// and j − 1), the other components are zero. Malicious mode builds B2A on these
    /// instead of an input by one party.
    fn bit_components<R: Ring>(&self, x: &BitShares) -> [Vec<Share<R>>; 3] {
        let me = self.id();
        [0, 1, 2].map(|j| {
            (0..x.len)
                .map(|e| Share {
                    a: if me == j {
                        ring_bit(bit_at(&x.a, e))
                    } else {
                        R::zero()
                    },
                    b: if (me + 1) % 3 == j {
                        ring_bit(bit_at(&x.b, e))
                    } else {
                        R::zero()
                    },
                })
                .collect()
        })
    }

    /// a ⊕ b = a + b − 2ab for arithmetic sharings of bits, element-wise: one product.
    async fn xor_arith<R: Ring>(
        &mut self,
        a: &[Share<R>],
        b: &[Share<R>],
    ) -> Result<Vec<Share<R>>> {
        let p = self.mul(a, b).await?;
        Ok(xor_combine(a, b, &p))
    }

    /// Round 1 of B2A: arithmetic sharings D (the owner's d = c_o ⊕ c_{o+1}, input) and E
    /// (c_{o+2}, local) with c = D ⊕ E, plus the reshared products of `extra` (this
    /// party's additive terms, sent in the same round).
    async fn b2a_round1<R: Ring>(
        &mut self,
        x: &BitShares,
        extra: Option<Vec<R>>,
    ) -> Result<(Vec<Share<R>>, Vec<Share<R>>, Vec<Share<R>>)> {
        self.refuse_unproven("B2A")?;
        let n = x.len;
        let me = self.id();
        let (prev, next) = (Peer::Prev.of(me), Peer::Next.of(me));
        let own = owner_block(n, me);
        let prev_block = owner_block(n, prev);
        let next_block = owner_block(n, next);
        let r: Vec<R> = self.correlated().common_with(Peer::Next, own.len());
        let r_prev: Vec<R> = self.correlated().common_with(Peer::Prev, prev_block.len());
        let masked: Vec<R> = own
            .clone()
            .zip(&r)
            .map(|(e, r)| ring_bit::<R>(bit_at(&x.a, e) ^ bit_at(&x.b, e)) - *r)
            .collect();
        let mut msg = R::encode_slice(&masked);
        let extra = match extra {
            Some(t) => {
                let z: Vec<R> = self.correlated().zero_shares(t.len());
                let t: Vec<R> = t.into_iter().zip(z).map(|(t, z)| t + z).collect();
                msg.extend(R::encode_slice(&t));
                Some(t)
            }
            None => None,
        };
        let extra_len = extra.as_ref().map_or(0, Vec::len);
        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let expect = Expect {
            next: true,
            prev: false,
        };
        let inc = self.exchange(out, expect).await?;
        let bytes = take(inc.next, Peer::Next)?;
        let want = next_block.len() + extra_len;
        let recv = R::decode_vec(&bytes, want).ok_or_else(|| EngineError::Malformed {
            peer: Peer::Next.name(),
            expected: format!("{want} ring elements of {} bytes", R::BYTES),
            found: format!("{} bytes", bytes.len()),
        })?;
        let (from_next, extra_next) = recv.split_at(next_block.len());

        let mut d = Vec::with_capacity(n);
        let mut e = Vec::with_capacity(n);
        for blk in 0..3 {
            let range = owner_block(n, blk);
            if blk == me {
                for (m, r) in masked.iter().zip(&r) {
                    d.push(Share { a: *m, b: *r });
                    e.push(Share::zero());
                }
            } else if blk == prev {
                for (idx, el) in range.enumerate() {
                    d.push(Share {
                        a: r_prev[idx],
                        b: R::zero(),
                    });
                    e.push(Share {
                        a: R::zero(),
                        b: ring_bit(bit_at(&x.b, el)),
                    });
                }
            } else {
                for (idx, el) in range.enumerate() {
                    d.push(Share {
                        a: R::zero(),
                        b: from_next[idx],
                    });
                    e.push(Share {
                        a: ring_bit(bit_at(&x.a, el)),
                        b: R::zero(),
                    });
                }
            }
        }
        let products = extra
            .unwrap_or_default()
            .into_iter()
            .zip(extra_next)
            .map(|(a, b)| Share { a, b: *b })
            .collect();
        Ok((d, e, products))
    }

    /// Each shared bit as an arithmetic sharing of 0 or 1. Two rounds; per bit and party
    /// about 1/3 ring element (input) plus one (product).
    pub async fn b2a<R: Ring>(&mut self, x: &BitShares) -> Result<Vec<Share<R>>> {
        if self.malicious() {
            let [e0, e1, e2] = self.bit_components::<R>(x);
            let e = self.xor_arith(&e0, &e1).await?;
            return self.xor_arith(&e, &e2).await;
        }
        let me = self.id();
        let (d, e, _) = self.b2a_round1::<R>(x, None).await?;
        // c = e + d (1 − 2e).
        let f: Vec<Share<R>> = e
            .iter()
            .map(|s| s.mul_public(-R::from_u64(2)).add_public(me, R::one()))
            .collect();
        let df = self.mul(&d, &f).await?;
        Ok(e.into_iter().zip(df).map(|(e, p)| e + p).collect())
    }

    /// The value Σ_j 2^j · plane_j of every element of bit planes (bit 0 first, all of one
    /// length; at most 128 planes), arithmetically shared: B2A of every bit, then a local
    /// weighted sum. Empty without planes.
    pub async fn b2a_planes<R: Ring>(&mut self, planes: &[&BitShares]) -> Result<Vec<Share<R>>> {
        let Some(len) = planes.first().map(|p| p.len) else {
            return Ok(Vec::new());
        };
        let bits = self.b2a::<R>(&BitShares::concat(planes)).await?;
        let mut out = vec![Share::<R>::default(); len];
        for (j, plane) in bits.chunks(len.max(1)).enumerate() {
            let weight = R::from_u128(1u128 << j);
            for (o, b) in out.iter_mut().zip(plane) {
                *o += b.mul_public(weight);
            }
        }
        Ok(out)
    }

    /// The number of ones in `x`, arithmetically shared. Two rounds; about 1/3 ring element
    /// per bit (input) plus one element in total (a dot product).
    pub async fn b2a_sum<R: Ring>(&mut self, x: &BitShares) -> Result<Share<R>> {
        let mut v = self.b2a_sums::<R>(x, x.len.max(1)).await?;
        Ok(v.pop().unwrap_or_default())
    }

    /// The number of ones in each consecutive group of `group` bits of `x` (the last group
    /// may be shorter). Semi-honest: all in the same two rounds, one conversion round for
    /// every bit, then one dot product per group. Malicious: a boolean population count
    /// (`popcount`, 1 + 2 + … + L rounds for groups of up to 2^L bits), then B2A of the
    /// L + 1 bits of each count.
    pub async fn b2a_sums<R: Ring>(
        &mut self,
        x: &BitShares,
        group: usize,
    ) -> Result<Vec<Share<R>>> {
        if group == 0 {
            return Err(EngineError::Invalid("b2a_sums: empty groups".into()));
        }
        if self.malicious() {
            // Count in the boolean domain, then convert only the totals' bits: proven AND
            // gates cost far less than a proven product per bit (see `popcount`).
            let planes = self.popcounts(x, group).await?;
            return self.b2a_planes(&planes.iter().collect::<Vec<_>>()).await;
        }
        // Semi-honest: c = e + d (1 − 2e), so Σ c = Σ e + <d, 1 − 2e> per group.
        let two = R::from_u64(2);
        let me = self.id();
        let (d, e, _) = self.b2a_round1::<R>(x, None).await?;
        let right: Vec<Share<R>> = e
            .iter()
            .map(|s| s.mul_public(-two).add_public(me, R::one()))
            .collect();
        let pairs: Vec<_> = d.chunks(group).zip(right.chunks(group)).collect();
        let dots = self.dots(&pairs).await?;
        let mut out = Vec::with_capacity(dots.len());
        for (k, dk) in dots.into_iter().enumerate() {
            let range = k * group..((k + 1) * group).min(e.len());
            out.push(sum(&e[range]) + dk);
        }
        Ok(out)
    }

    /// b · x for shared bits b and arithmetic values x, element-wise. Two rounds:
    /// y = e · x is computed in the input round, then b · x = y + d (x − 2y). Per element
    /// and party about 7/3 ring elements.
    pub async fn bit_inject<R: Ring>(
        &mut self,
        bits: &BitShares,
        x: &[Share<R>],
    ) -> Result<Vec<Share<R>>> {
        same_len("bit_inject", bits.len, x.len())?;
        if self.malicious() {
            // b x = e x + w − 2 e w with e = c0 ⊕ c1 and w = c2 x: two rounds of products.
            let [e0, e1, e2] = self.bit_components::<R>(bits);
            let n = x.len();
            let mut first = e0.clone();
            first.extend_from_slice(&e2);
            let mut second = e1.clone();
            second.extend_from_slice(x);
            let r1 = self.mul(&first, &second).await?;
            let (p, w) = r1.split_at(n);
            let e = xor_combine(&e0, &e1, p);
            let mut left = e.clone();
            left.extend_from_slice(&e);
            let mut right = x.to_vec();
            right.extend_from_slice(w);
            let r2 = self.mul(&left, &right).await?;
            let (ex, ew) = r2.split_at(n);
            return Ok(xor_combine(ex, w, ew));
        }
        let n = x.len();
        let me = self.id();
        let (prev, next) = (Peer::Prev.of(me), Peer::Next.of(me));
        // Party i's local view of e (c_{o+2} of the block owner o), to form e · x in round 1.
        let mut e_local = Vec::with_capacity(n);
        for blk in 0..3 {
            for el in owner_block(n, blk) {
                e_local.push(if blk == prev {
                    Share {
                        a: R::zero(),
                        b: ring_bit(bit_at(&bits.b, el)),
                    }
                } else if blk == next {
                    Share {
                        a: ring_bit(bit_at(&bits.a, el)),
                        b: R::zero(),
                    }
                } else {
                    Share::zero()
                });
            }
        }
        let cross = e_local
            .iter()
            .zip(x)
            .map(|(e, x)| super::arith::local_cross(e, x))
            .collect();
        let (d, e, y) = self.b2a_round1::<R>(bits, Some(cross)).await?;
        debug_assert_eq!(e, e_local);
        let two = R::from_u64(2);
        let rest: Vec<Share<R>> = x
            .iter()
            .zip(&y)
            .map(|(x, y)| *x - y.mul_public(two))
            .collect();
        let dr = self.mul(&d, &rest).await?;
        Ok(y.into_iter().zip(dr).map(|(y, p)| y + p).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::binary::tests::{rand_bits, recon_bits, test_share};
    use crate::engine::binary::{pack, unpack};
    use crate::engine::local::run3;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::share::{reconstruct, split};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::sync::Arc;

    /// Splits plaintext values into the three parties' share vectors (fixed seed).
    pub(crate) fn share_all<R: Ring>(vals: &[R], seed: u64) -> [Vec<Share<R>>; 3] {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = [Vec::new(), Vec::new(), Vec::new()];
        for v in vals {
            let s = split(*v, &mut rng);
            for i in 0..3 {
                out[i].push(s[i]);
            }
        }
        out
    }

    pub(crate) fn recon<R: Ring>(parts: &[Vec<Share<R>>; 3]) -> Vec<R> {
        (0..parts[0].len())
            .map(|j| reconstruct(&[parts[0][j], parts[1][j], parts[2][j]]).unwrap())
            .collect()
    }

    fn ok<O>(r: [Result<O>; 3]) -> [O; 3] {
        r.map(|x| x.unwrap())
    }

    fn naive_planes(values: &[u128], bits: u32) -> Vec<Vec<u64>> {
        (0..bits)
            .map(|j| pack(&values.iter().map(|v| (v >> j) & 1 == 1).collect::<Vec<_>>()))
            .collect()
    }

    #[test]
    fn transpose_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for (n, bits) in [
            (0usize, 64u32),
            (1, 1),
            (63, 64),
            (64, 84),
            (65, 128),
            (1000, 84),
            (130, 7),
        ] {
            let vals: Vec<u128> = (0..n).map(|_| rng.gen::<u128>() & low_mask(bits)).collect();
            let planes = transpose_to_planes(&vals, bits);
            assert_eq!(planes, naive_planes(&vals, bits));
            assert_eq!(planes_to_values(&planes, n), vals);
        }
        // High bits are ignored.
        let planes = transpose_to_planes(&[u128::MAX], 3);
        assert_eq!(planes, vec![vec![1], vec![1], vec![1]]);
    }

    /// For short vectors the input bits are spread over the three parties too.
    #[tokio::test]
    async fn short_vectors_balance_the_input_round() {
        for n in [3usize, 100, 128] {
            let vals: Vec<Z64> = (0..n as u64).map(Z64).collect();
            let shares = share_all(&vals, 3);
            let out = run3(4, move |mut s| {
                let shares = shares.clone();
                async move {
                    let me = s.id();
                    let before = s.counters().bytes_sent;
                    s.two_summands(&shares[me], 64, false).await?;
                    Ok(s.counters().bytes_sent - before)
                }
            })
            .await;
            let sent: Vec<u64> = out.into_iter().map(|r| r.unwrap()).collect();
            let (lo, hi) = (sent.iter().min().unwrap(), sent.iter().max().unwrap());
            assert!(*lo > 0, "{n}: every party inputs a share, {sent:?}");
            assert!(
                hi - lo <= 8 * 2,
                "{n}: balanced within a few bytes per plane, {sent:?}"
            );
        }
    }

    #[test]
    fn owner_blocks_partition() {
        for n in [0usize, 1, 63, 64, 65, 128, 129, 192, 1000, 6400] {
            let b: Vec<Range<usize>> = (0..3).map(|o| owner_block(n, o)).collect();
            assert_eq!(b[0].start, 0);
            assert_eq!(b[0].end, b[1].start);
            assert_eq!(b[1].end, b[2].start);
            assert_eq!(b[2].end, n);
            if n >= 129 {
                assert!(b[0].end.is_multiple_of(64) || b[0].end == n);
                assert!(b[1].end.is_multiple_of(64) || b[1].end == n);
            } else {
                // Short vectors: every party owns a third, none all of it.
                assert!(b.iter().all(|r| r.len() <= n.div_ceil(3)), "{n}: {b:?}");
            }
        }
        assert_eq!(owner_block(192, 1), 64..128);
        assert_eq!(owner_block(128, 0), 0..42);
        assert_eq!(owner_block(1, 2), 0..1);
    }

    /// Random values with the edge cases 0, 1, 2^bits − 1, 2^bits − 2 and 2^(bits−1) ± 1.
    fn edge_values<R: Ring>(seed: u64, n: usize, bits: u32) -> Vec<R> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let m = low_mask(bits);
        let half = 1u128 << (bits - 1);
        let mut v: Vec<R> = vec![0, 1, m, m - 1, half, half - 1, half + 1]
            .into_iter()
            .map(|x| R::from_u128(x & m))
            .collect();
        // Values above 2^bits too (ignored bits).
        while v.len() < n {
            v.push(R::random(&mut rng));
        }
        v
    }

    async fn check_a2b_msb<R: Ring>(n: usize, bits: u32, seed: u64) {
        let vals = edge_values::<R>(seed, n, bits);
        let shares = Arc::new(share_all(&vals, seed));
        let out = ok(run3(seed, move |mut s| {
            let shares = shares.clone();
            async move {
                let x = &shares[s.id()];
                let start = s.counters().rounds;
                let planes = s.a2b(x, bits).await?;
                let before = s.counters();
                let msb = s.msb(x, bits).await?;
                let after = s.counters();
                Ok((
                    planes,
                    msb,
                    after.rounds - before.rounds,
                    before.rounds - start,
                ))
            }
        })
        .await);
        let m = low_mask(bits);
        for j in 0..bits as usize {
            let p = [
                out[0].0.planes[j].clone(),
                out[1].0.planes[j].clone(),
                out[2].0.planes[j].clone(),
            ];
            let expect: Vec<bool> = vals.iter().map(|v| (v.to_u128() >> j) & 1 == 1).collect();
            assert_eq!(recon_bits(&p), expect, "a2b plane {j} of {bits}");
        }
        assert_eq!(out[0].0.bits(), bits as usize);
        let msb = [out[0].1.clone(), out[1].1.clone(), out[2].1.clone()];
        let expect: Vec<bool> = vals
            .iter()
            .map(|v| ((v.to_u128() & m) >> (bits - 1)) & 1 == 1)
            .collect();
        assert_eq!(recon_bits(&msb), expect, "msb of {bits}");
        assert_eq!(out[0].2, msb_rounds(bits));
        assert_eq!(out[0].3, a2b_rounds(bits), "a2b rounds, {bits} bits");
    }

    #[tokio::test]
    async fn a2b_and_msb_match_plaintext() {
        check_a2b_msb::<Z64>(300, 64, 1).await;
        check_a2b_msb::<Z64>(9, 64, 2).await;
        check_a2b_msb::<Z64>(70, 20, 3).await;
        check_a2b_msb::<Z64>(10, 1, 4).await;
        check_a2b_msb::<Z64>(10, 2, 5).await;
        check_a2b_msb::<Z64>(10, 3, 5).await;
        // The carry's blocks: odd and even counts of carry bits, with and without a
        // one-bit top block.
        for bits in 4..=9 {
            check_a2b_msb::<Z64>(70, bits, 20 + u64::from(bits)).await;
        }
        check_a2b_msb::<Z128>(200, 84, 6).await;
        check_a2b_msb::<Z128>(130, 128, 7).await;
        check_a2b_msb::<Z128>(8, 65, 8).await;
    }

    #[tokio::test]
    async fn empty_vectors() {
        let out = ok(run3(3, |mut s| async move {
            let x: Vec<Share<Z64>> = vec![];
            let m = s.msb(&x, 64).await?;
            let p = s.a2b(&x, 64).await?;
            let b: Vec<Share<Z64>> = s.b2a(&BitShares::zeros(0)).await?;
            let c: Share<Z64> = s.b2a_sum(&BitShares::zeros(0)).await?;
            Ok((m.len, p.len, b.len(), c))
        })
        .await);
        for o in out {
            assert_eq!((o.0, o.1, o.2), (0, 0, 0));
        }
    }

    #[tokio::test]
    async fn bad_bits_are_invalid() {
        let out = run3(3, |mut s| async move {
            let x = vec![Share::<Z64>::zero(); 3];
            let e1 = s.msb(&x, 65).await.err();
            let e2 = s.a2b(&x, 0).await.err();
            let e3 = s.bit_inject(&BitShares::zeros(2), &x).await.err();
            Ok((e1, e2, e3, s.counters().rounds))
        })
        .await;
        for r in out {
            let (e1, e2, e3, rounds) = r.unwrap();
            assert!(matches!(e1, Some(EngineError::Invalid(_))));
            assert!(matches!(e2, Some(EngineError::Invalid(_))));
            assert!(matches!(e3, Some(EngineError::Invalid(_))));
            assert_eq!(rounds, 1);
        }
    }

    async fn check_b2a<R: Ring>(n: usize, seed: u64) {
        let bits = rand_bits(seed, n);
        let vals: Vec<R> = {
            let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
            (0..n).map(|_| R::random(&mut rng)).collect()
        };
        let shares = Arc::new(share_all(&vals, seed));
        let b2 = bits.clone();
        let out = ok(run3(seed, move |mut s| {
            let (shares, bits) = (shares.clone(), b2.clone());
            async move {
                let id = s.id();
                let b = test_share(id, &bits, seed);
                let c0 = s.counters();
                let a: Vec<Share<R>> = s.b2a(&b).await?;
                let c1 = s.counters();
                let inj = s.bit_inject(&b, &shares[id]).await?;
                let c2 = s.counters();
                let total: Share<R> = s.b2a_sum(&b).await?;
                Ok((a, inj, total, c1.rounds - c0.rounds, c2.rounds - c1.rounds))
            }
        })
        .await);
        let a = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
        let expect: Vec<R> = bits.iter().map(|&b| ring_bit(b)).collect();
        assert_eq!(recon(&a), expect);
        let inj = [out[0].1.clone(), out[1].1.clone(), out[2].1.clone()];
        let expect: Vec<R> = bits
            .iter()
            .zip(&vals)
            .map(|(&b, &v)| if b { v } else { R::zero() })
            .collect();
        assert_eq!(recon(&inj), expect);
        let count = bits.iter().filter(|&&b| b).count() as u64;
        assert_eq!(
            reconstruct(&[out[0].2, out[1].2, out[2].2]).unwrap(),
            R::from_u64(count)
        );
        for o in &out {
            assert_eq!(o.3, 2);
            assert_eq!(o.4, 2);
        }
    }

    #[tokio::test]
    async fn b2a_bit_inject_and_sum_match_plaintext() {
        for (k, n) in [1usize, 63, 64, 65, 1000].into_iter().enumerate() {
            check_b2a::<Z64>(n, 40 + k as u64).await;
            check_b2a::<Z128>(n, 50 + k as u64).await;
        }
    }

    /// The proven ANDs of a malicious A2B and msb are what the counts say: the carry-save
    /// layer's bits − 1, then the adder or the carry.
    #[tokio::test]
    async fn malicious_gate_counts_are_exact() {
        use crate::engine::local::{local_transports, run3_secure};
        use crate::engine::Security;
        for bits in [2u32, 3, 5, 47, 64] {
            let vals = edge_values::<Z64>(bits as u64, 128, bits);
            let shares = Arc::new(share_all(&vals, 3));
            let out = run3_secure(3, Security::Malicious, local_transports(), move |mut s| {
                let shares = shares.clone();
                async move {
                    let x = &shares[s.id()];
                    s.a2b(x, bits).await?;
                    s.verify().await?;
                    let a2b = s.proven().and_words;
                    s.msb(x, bits).await?;
                    s.verify().await?;
                    Ok((a2b, s.proven().and_words - a2b))
                }
            })
            .await;
            for r in out {
                let (a2b, msb) = r.expect("honest run");
                let csa = bits as usize - 1;
                assert_eq!(
                    a2b as usize * 64 / 128,
                    csa + a2b_and_gates(bits),
                    "a2b, {bits}"
                );
                assert_eq!(
                    msb as usize * 64 / 128,
                    csa + msb_and_gates(bits),
                    "msb, {bits}"
                );
            }
        }
    }

    #[test]
    fn gate_counts() {
        assert_eq!(a2b_and_gates(1), 0);
        assert_eq!(a2b_and_gates(2), 1);
        // Blocks (0, 1) and (2): two generates, one ripple, one merge of the lowest.
        assert_eq!(a2b_and_gates(4), 2 + 1 + 1);
        // 23 blocks of two bits: 23 generates, 22 propagates, 23 ripples, the prefix tree
        // over 23 blocks, 22 carries inside the blocks.
        assert_eq!(a2b_and_gates(47), 23 + 22 + 23 + sklansky_ands(23) + 22);
        assert_eq!(a2b_rounds(1), 1);
        assert_eq!(a2b_rounds(2), 2);
        assert_eq!(a2b_rounds(3), 3);
        assert_eq!(a2b_rounds(64), 9);
        assert_eq!(msb_and_gates(1), 0);
        assert_eq!(msb_and_gates(2), 1);
        // One two-bit block: its generate, then the ripple; no tree.
        assert_eq!(msb_and_gates(3), 2);
        // A two-bit block and a one-bit block: 3 bits, no P (the lowest needs none, the
        // one-bit block's is free), one merge of the lowest (1 AND).
        assert_eq!(msb_and_gates(4), 3 + 1);
        // 31 two-bit blocks and a one-bit one: 63 bits, 30 Ps, a tree over 32 blocks.
        assert_eq!(msb_and_gates(64), 63 + 30 + (31 + 15 + 7 + 3 + 1));
        assert_eq!(msb_and_gates(65), 64 + 31 + (31 + 15 + 7 + 3 + 1));
        assert_eq!(msb_rounds(64), 8);
        assert_eq!(msb_rounds(84), 9);
        assert_eq!(msb_rounds(2), 2);
        assert_eq!(msb_rounds(3), 3);
        let _ = unpack(&[0], 0);
    }
}
