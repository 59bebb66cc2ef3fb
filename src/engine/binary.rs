//! Boolean replicated sharing over Z_2, bit-sliced: a vector of shared bits is packed 64 per
//! `u64` word, so one word operation acts on 64 elements at once.
//!
//! A bit c = c_0 ⊕ c_1 ⊕ c_2; party i holds (c_i, c_{i+1}) as ([`BitShares::a`],
//! [`BitShares::b`]), exactly like the arithmetic [`super::share::Share`]. Bit j of word w is
//! element 64w + j; the unused high bits of the last word are zero in every share.
//!
//! Local operations (XOR, NOT, public masks, slicing) are methods of [`BitShares`]; the
//! interactive ones (AND, open) are methods of [`Session`] and cost one round for any number
//! of bits. On the wire a vector of `len` bits takes ⌈len/8⌉ bytes (little-endian words cut
//! to length); a message of any other length is `EngineError::Malformed`.

use super::error::{EngineError, Result};
use super::session::{take, Session};
use super::transport::{Expect, Outgoing, PartyId, Peer, Transport};
use super::verify::MAX_PENDING_WORDS;

/// A vector of `len` shared bits: this party's two components, packed 64 per word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitShares {
    /// Component c_i, ⌈len/64⌉ words.
    pub a: Vec<u64>,
    /// Component c_{i+1}, ⌈len/64⌉ words.
    pub b: Vec<u64>,
    /// Number of bits.
    pub len: usize,
}

/// A bit-sliced vector of `len` shared k-bit integers: `planes[j]` holds bit j of every
/// element (k = `planes.len()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitPlanes {
    pub planes: Vec<BitShares>,
    pub len: usize,
}

/// Words needed for `len` bits.
pub fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

/// The mask of the valid bits of the last word of a `len`-bit vector (all ones if `len` is a
/// multiple of 64).
pub fn tail_mask(len: usize) -> u64 {
    match len % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

/// Clears the unused high bits of the last word.
pub(crate) fn clear_tail(words: &mut [u64], len: usize) {
    if let Some(last) = words.last_mut() {
        *last &= tail_mask(len);
    }
}

/// The first `len` bits of `words` as booleans.
pub fn unpack(words: &[u64], len: usize) -> Vec<bool> {
    (0..len)
        .map(|k| (words[k / 64] >> (k % 64)) & 1 == 1)
        .collect()
}

/// Packs booleans 64 per word (inverse of [`unpack`]).
pub fn pack(bits: &[bool]) -> Vec<u64> {
    let mut out = vec![0u64; words_for(bits.len())];
    for (k, &bit) in bits.iter().enumerate() {
        out[k / 64] |= (bit as u64) << (k % 64);
    }
    out
}

/// `count` ≤ 64 bits of `src` starting at bit `off` (bits past the end read as zero).
fn get_bits(src: &[u64], off: usize, count: usize) -> u64 {
    let (w, s) = (off / 64, off % 64);
    let mut v = src.get(w).copied().unwrap_or(0) >> s;
    if s > 0 {
        v |= src.get(w + 1).copied().unwrap_or(0) << (64 - s);
    }
    if count < 64 {
        v &= (1u64 << count) - 1;
    }
    v
}

/// ORs the low `count` ≤ 64 bits of `val` (higher bits zero) into `dst` at bit `off`.
fn put_bits(dst: &mut [u64], off: usize, val: u64, count: usize) {
    let (w, s) = (off / 64, off % 64);
    dst[w] |= val << s;
    if s > 0 && count > 64 - s {
        dst[w + 1] |= val >> (64 - s);
    }
}

/// Copies `len` bits of `src` from bit `src_off` into the zeroed region of `dst` at `dst_off`.
fn copy_bits(dst: &mut [u64], dst_off: usize, src: &[u64], src_off: usize, len: usize) {
    let mut k = 0;
    while k < len {
        let count = (len - k).min(64);
        put_bits(dst, dst_off + k, get_bits(src, src_off + k, count), count);
        k += count;
    }
}

/// Appends the ⌈len/8⌉ little-endian bytes of a `len`-bit word vector to `out`.
pub(crate) fn encode_bits_into(out: &mut Vec<u8>, words: &[u64], len: usize) {
    let nbytes = len.div_ceil(8);
    for (k, w) in words.iter().enumerate() {
        let bytes = w.to_le_bytes();
        let take = (nbytes - 8 * k).min(8);
        out.extend_from_slice(&bytes[..take]);
    }
}

/// Splits a message into bit vectors of the given lengths, each ⌈len/8⌉ bytes; the total
/// must match exactly. Unused high bits are cleared.
pub(crate) fn decode_bits(
    msg: Option<Vec<u8>>,
    peer: Peer,
    lens: &[usize],
) -> Result<Vec<Vec<u64>>> {
    let bytes = take(msg, peer)?;
    let expected: usize = lens.iter().map(|l| l.div_ceil(8)).sum();
    if bytes.len() != expected {
        return Err(EngineError::Malformed {
            peer: peer.name(),
            expected: format!(
                "{expected} bytes for {} bits in {} vectors",
                lens.iter().sum::<usize>(),
                lens.len()
            ),
            found: format!("{} bytes", bytes.len()),
        });
    }
    let mut out = Vec::with_capacity(lens.len());
    let mut pos = 0;
    for &len in lens {
        let nbytes = len.div_ceil(8);
        let chunk = &bytes[pos..pos + nbytes];
        pos += nbytes;
        let mut words: Vec<u64> = chunk
            .chunks(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        clear_tail(&mut words, len);
        out.push(words);
    }
    Ok(out)
}

fn same_len(op: &str, x: usize, y: usize) -> Result<()> {
    if x == y {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: bit vectors of different lengths {x} and {y}"
        )))
    }
}

fn check_words(op: &str, c: &[u64], len: usize) -> Result<()> {
    if c.len() == words_for(len) {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: {} public words for {len} bits, expected {}",
            c.len(),
            words_for(len)
        )))
    }
}

impl BitShares {
    /// The sharing of `len` zero bits.
    pub fn zeros(len: usize) -> Self {
        BitShares {
            a: vec![0; words_for(len)],
            b: vec![0; words_for(len)],
            len,
        }
    }

    /// Party `party`'s share of the public bits `bits` (packed, ⌈len/64⌉ words): they form
    /// component 0, held by party 0 as `a` and party 2 as `b`. High bits past `len` are
    /// ignored.
    pub fn from_public(party: PartyId, bits: &[u64], len: usize) -> Result<Self> {
        check_words("from_public", bits, len)?;
        let mut c = bits.to_vec();
        clear_tail(&mut c, len);
        let zero = vec![0; c.len()];
        Ok(match party {
            0 => BitShares { a: c, b: zero, len },
            2 => BitShares { a: zero, b: c, len },
            _ => BitShares {
                a: zero.clone(),
                b: zero,
                len,
            },
        })
    }

    /// Number of words per component.
    pub fn words(&self) -> usize {
        self.a.len()
    }

    /// Sharing of x ⊕ y; `Invalid` on different lengths.
    pub fn xor(&self, o: &BitShares) -> Result<Self> {
        same_len("xor", self.len, o.len)?;
        Ok(self.xor_same(o))
    }

    /// XOR of vectors known to have the same length.
    pub(crate) fn xor_same(&self, o: &BitShares) -> Self {
        debug_assert_eq!(self.len, o.len);
        BitShares {
            a: self.a.iter().zip(&o.a).map(|(p, q)| p ^ q).collect(),
            b: self.b.iter().zip(&o.b).map(|(p, q)| p ^ q).collect(),
            len: self.len,
        }
    }

    /// In-place XOR with a vector of the same length.
    pub(crate) fn xor_assign_same(&mut self, o: &BitShares) {
        debug_assert_eq!(self.len, o.len);
        self.a.iter_mut().zip(&o.a).for_each(|(p, q)| *p ^= q);
        self.b.iter_mut().zip(&o.b).for_each(|(p, q)| *p ^= q);
    }

    /// Sharing of ¬x, as computed by party `party`: component 0 is flipped (held by party 0
    /// as `a` and party 2 as `b`), the same convention as `Share::add_public`.
    pub fn not(&self, party: PartyId) -> Self {
        let ones = {
            let mut w = vec![u64::MAX; self.words()];
            clear_tail(&mut w, self.len);
            w
        };
        // Lengths agree by construction.
        self.xor_public_same(party, &ones)
    }

    /// Sharing of x ⊕ c for public packed bits c (⌈len/64⌉ words; bits past `len` ignored).
    pub fn xor_public(&self, party: PartyId, c: &[u64]) -> Result<Self> {
        check_words("xor_public", c, self.len)?;
        let mut c = c.to_vec();
        clear_tail(&mut c, self.len);
        Ok(self.xor_public_same(party, &c))
    }

    fn xor_public_same(&self, party: PartyId, c: &[u64]) -> Self {
        let mut out = self.clone();
        let target = match party {
            0 => &mut out.a,
            2 => &mut out.b,
            _ => return out,
        };
        target.iter_mut().zip(c).for_each(|(p, q)| *p ^= q);
        out
    }

    /// Sharing of x ∧ c for public packed bits c (⌈len/64⌉ words).
    pub fn and_public(&self, c: &[u64]) -> Result<Self> {
        check_words("and_public", c, self.len)?;
        let mut c = c.to_vec();
        clear_tail(&mut c, self.len);
        Ok(BitShares {
            a: self.a.iter().zip(&c).map(|(p, q)| p & q).collect(),
            b: self.b.iter().zip(&c).map(|(p, q)| p & q).collect(),
            len: self.len,
        })
    }

    /// Bits `start .. start + len`; `Invalid` if out of range.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self> {
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(EngineError::Invalid(format!(
                "slice: bits {start}..{start}+{len} of a {}-bit vector",
                self.len
            )));
        }
        let mut out = BitShares::zeros(len);
        copy_bits(&mut out.a, 0, &self.a, start, len);
        copy_bits(&mut out.b, 0, &self.b, start, len);
        Ok(out)
    }

    /// The concatenation of `parts`, in order.
    pub fn concat(parts: &[&BitShares]) -> Self {
        let len = parts.iter().map(|p| p.len).sum();
        let mut out = BitShares::zeros(len);
        let mut off = 0;
        for p in parts {
            copy_bits(&mut out.a, off, &p.a, 0, p.len);
            copy_bits(&mut out.b, off, &p.b, 0, p.len);
            off += p.len;
        }
        out
    }
}

impl BitPlanes {
    /// Number of planes (bits per element).
    pub fn bits(&self) -> usize {
        self.planes.len()
    }
}

/// This party's XOR share of x ∧ y (before the zero share): x_i y_i ⊕ x_i y_{i+1} ⊕ x_{i+1} y_i.
fn cross_words(x: &BitShares, y: &BitShares) -> Vec<u64> {
    x.a.iter()
        .zip(&x.b)
        .zip(y.a.iter().zip(&y.b))
        .map(|((xa, xb), (ya, yb))| (xa & ya) ^ (xa & yb) ^ (xb & ya))
        .collect()
}

const ONLY_NEXT: Expect = Expect {
    next: true,
    prev: false,
};

impl<T: Transport> Session<T> {
    /// Element-wise AND. One round; each party sends one bit per AND (⌈len/8⌉ bytes).
    pub async fn and(&mut self, x: &BitShares, y: &BitShares) -> Result<BitShares> {
        let mut v = self.and_many(&[(x, y)]).await?;
        v.pop()
            .ok_or_else(|| EngineError::Invalid("and: no result".into()))
    }

    /// Several independent element-wise ANDs in one round; each party sends one bit per AND,
    /// each vector packed to ⌈len/8⌉ bytes.
    pub async fn and_many(&mut self, pairs: &[(&BitShares, &BitShares)]) -> Result<Vec<BitShares>> {
        for (x, y) in pairs {
            same_len("and", x.len, y.len)?;
        }
        let total_words: usize = pairs.iter().map(|(x, _)| x.words()).sum();
        let record = self.malicious();
        if record && self.pending_and_words() + total_words > MAX_PENDING_WORDS {
            self.prove_ands().await?;
        }
        let (f_own, f_next) = self.correlated().zero_bit_parts(total_words);
        let mut zero = f_own.iter().zip(&f_next).map(|(p, q)| p ^ q);
        let mut mine = Vec::with_capacity(pairs.len());
        let mut msg = Vec::with_capacity(pairs.iter().map(|(x, _)| x.len.div_ceil(8)).sum());
        for (x, y) in pairs {
            let mut t = cross_words(x, y);
            t.iter_mut().zip(zero.by_ref()).for_each(|(w, z)| *w ^= z);
            clear_tail(&mut t, x.len);
            encode_bits_into(&mut msg, &t, x.len);
            mine.push(t);
        }
        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let inc = self.exchange(out, ONLY_NEXT).await?;
        let lens: Vec<usize> = pairs.iter().map(|(x, _)| x.len).collect();
        let theirs = decode_bits(inc.next, Peer::Next, &lens)?;
        if record {
            self.record_ands(pairs, &f_own, &f_next, &theirs);
        }
        Ok(mine
            .into_iter()
            .zip(theirs)
            .zip(lens)
            .map(|((a, b), len)| BitShares { a, b, len })
            .collect())
    }

    /// Reveals `x` to all three parties, packed. One round; each party sends ⌈len/8⌉ bytes
    /// (its `a` to its next party, which lacks exactly that component).
    pub async fn open_bits(&mut self, x: &BitShares) -> Result<Vec<u64>> {
        let mut msg = Vec::with_capacity(x.len.div_ceil(8));
        encode_bits_into(&mut msg, &x.a, x.len);
        let b = || {
            let mut m = Vec::with_capacity(x.len.div_ceil(8));
            encode_bits_into(&mut m, &x.b, x.len);
            m
        };
        let bytes = self.open_round(msg, b).await?;
        let missing = decode_bits(Some(bytes), Peer::Prev, &[x.len])?
            .pop()
            .unwrap_or_default();
        Ok(x.a
            .iter()
            .zip(&x.b)
            .zip(missing)
            .map(|((a, b), m)| a ^ b ^ m)
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::local::{local_transports, run3, run3_over, Truncating};
    use crate::engine::transport::framed;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    pub(crate) fn rand_bits(seed: u64, len: usize) -> Vec<bool> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen()).collect()
    }

    fn ok<O>(r: [Result<O>; 3]) -> [O; 3] {
        r.map(|x| x.unwrap())
    }

    /// Reconstructs packed bits from the three parties' shares, checking consistency.
    pub(crate) fn recon_bits(parts: &[BitShares; 3]) -> Vec<bool> {
        let len = parts[0].len;
        for i in 0..3 {
            assert_eq!(parts[i].len, len);
            assert_eq!(parts[i].a.len(), words_for(len));
            assert_eq!(parts[i].a, parts[(i + 2) % 3].b, "component {i} disagrees");
            if let Some(l) = parts[i].a.last() {
                assert_eq!(l & !tail_mask(len), 0, "tail bits must be zero");
            }
        }
        let words: Vec<u64> = (0..words_for(len))
            .map(|w| parts[0].a[w] ^ parts[1].a[w] ^ parts[2].a[w])
            .collect();
        unpack(&words, len)
    }

    #[test]
    fn pack_unpack_slice_concat() {
        for len in [0usize, 1, 63, 64, 65, 200] {
            let bits = rand_bits(len as u64, len);
            assert_eq!(unpack(&pack(&bits), len), bits);
        }
        let bits = rand_bits(3, 300);
        let sh = BitShares {
            a: pack(&bits),
            b: pack(&rand_bits(4, 300)),
            len: 300,
        };
        for (start, len) in [(0, 0), (0, 300), (1, 64), (63, 2), (70, 130), (299, 1)] {
            let s = sh.slice(start, len).unwrap();
            assert_eq!(unpack(&s.a, len), bits[start..start + len].to_vec());
            assert_eq!(s.a.len(), words_for(len));
        }
        assert!(sh.slice(250, 51).is_err());
        assert!(sh.slice(usize::MAX, 2).is_err());
        let parts = [
            sh.slice(0, 5).unwrap(),
            sh.slice(5, 64).unwrap(),
            sh.slice(69, 0).unwrap(),
            sh.slice(69, 231).unwrap(),
        ];
        let back = BitShares::concat(&parts.iter().collect::<Vec<_>>());
        assert_eq!(back, sh);
    }

    #[test]
    fn encode_decode_bits() {
        let w = pack(&rand_bits(5, 70));
        let mut msg = Vec::new();
        encode_bits_into(&mut msg, &w, 70);
        encode_bits_into(&mut msg, &[0xff], 3);
        assert_eq!(msg.len(), 9 + 1);
        let d = decode_bits(Some(msg.clone()), Peer::Next, &[70, 3]).unwrap();
        assert_eq!(d, vec![w, vec![7]]);
        assert!(matches!(
            decode_bits(Some(msg[1..].to_vec()), Peer::Next, &[70, 3]),
            Err(EngineError::Malformed { .. })
        ));
        assert!(decode_bits(Some(vec![]), Peer::Next, &[0, 0])
            .unwrap()
            .iter()
            .all(Vec::is_empty));
    }

    /// Shares `bits` with a random replicated sharing: component 0 = bits ⊕ r1 ⊕ r2 where
    /// r1, r2 are known to everybody in the test (fixed seeds), so every party can compute
    /// its own pair.
    pub(crate) fn test_share(id: PartyId, bits: &[bool], seed: u64) -> BitShares {
        let len = bits.len();
        let c1 = pack(&rand_bits(seed ^ 0x1111, len));
        let c2 = pack(&rand_bits(seed ^ 0x2222, len));
        let c0: Vec<u64> = pack(bits)
            .iter()
            .zip(&c1)
            .zip(&c2)
            .map(|((x, p), q)| x ^ p ^ q)
            .collect();
        let c = [c0, c1, c2];
        BitShares {
            a: c[id].clone(),
            b: c[(id + 1) % 3].clone(),
            len,
        }
    }

    #[tokio::test]
    async fn and_xor_not_open_match_plaintext() {
        for (k, len) in [0usize, 1, 63, 64, 65, 1000].into_iter().enumerate() {
            let xs = rand_bits(10 + k as u64, len);
            let ys = rand_bits(20 + k as u64, len);
            let cs = rand_bits(30 + k as u64, len);
            let (x2, y2, c2) = (xs.clone(), ys.clone(), cs.clone());
            let out = ok(run3(k as u64, move |mut s| {
                let (xs, ys, cs) = (x2.clone(), y2.clone(), c2.clone());
                async move {
                    let id = s.id();
                    let x = test_share(id, &xs, 1);
                    let y = test_share(id, &ys, 2);
                    let before = s.counters();
                    let z = s.and(&x, &y).await?;
                    let after = s.counters();
                    let many = s.and_many(&[(&x, &y), (&y, &y), (&x, &x.not(id))]).await?;
                    let after_many = s.counters();
                    let c = pack(&cs);
                    let e = x.xor(&y)?.not(id).xor_public(id, &c)?.and_public(&c)?;
                    let opened = s.open_bits(&z).await?;
                    Ok((
                        z,
                        many,
                        e,
                        opened,
                        after.bytes_sent - before.bytes_sent,
                        after.rounds - before.rounds,
                        after_many.rounds - after.rounds,
                        after_many.bytes_sent - after.bytes_sent,
                    ))
                }
            })
            .await);
            let and: Vec<bool> = xs.iter().zip(&ys).map(|(x, y)| x & y).collect();
            let z = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
            assert_eq!(recon_bits(&z), and);
            for m in 0..3 {
                let v = [
                    out[0].1[m].clone(),
                    out[1].1[m].clone(),
                    out[2].1[m].clone(),
                ];
                let expect: Vec<bool> = match m {
                    0 => and.clone(),
                    1 => ys.clone(),
                    _ => vec![false; len],
                };
                assert_eq!(recon_bits(&v), expect);
            }
            let e = [out[0].2.clone(), out[1].2.clone(), out[2].2.clone()];
            let expect: Vec<bool> = (0..len)
                .map(|j| (!(xs[j] ^ ys[j]) ^ cs[j]) & cs[j])
                .collect();
            assert_eq!(recon_bits(&e), expect);
            for o in &out {
                assert_eq!(unpack(&o.3, len), and);
                assert_eq!(o.3.len(), words_for(len));
                // One frame to the previous party per round, the three ANDs in one.
                assert_eq!(o.4, framed(len.div_ceil(8)));
                assert_eq!(o.5, 1);
                assert_eq!(o.6, 1);
                assert_eq!(o.7, framed(3 * len.div_ceil(8)));
            }
        }
    }

    #[tokio::test]
    async fn from_public_and_zeros() {
        let bits = rand_bits(9, 77);
        let b2 = bits.clone();
        let out = ok(run3(9, move |s| {
            let bits = b2.clone();
            async move {
                let id = s.id();
                Ok((
                    BitShares::from_public(id, &pack(&bits), 77)?,
                    BitShares::zeros(77),
                    BitShares::from_public(id, &[1], 77).is_err(),
                ))
            }
        })
        .await);
        let p = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
        assert_eq!(recon_bits(&p), bits);
        let z = [out[0].1.clone(), out[1].1.clone(), out[2].1.clone()];
        assert_eq!(recon_bits(&z), vec![false; 77]);
        assert!(out.iter().all(|o| o.2));
    }

    #[tokio::test]
    async fn and_rejects_unequal_lengths() {
        let out = run3(3, |mut s| async move {
            let e = s
                .and(&BitShares::zeros(3), &BitShares::zeros(4))
                .await
                .err();
            Ok((e, s.counters().rounds))
        })
        .await;
        for r in out {
            let (e, rounds) = r.unwrap();
            assert!(matches!(e, Some(EngineError::Invalid(_))));
            assert_eq!(rounds, 1);
        }
    }

    #[tokio::test]
    async fn wrong_length_message_is_malformed() {
        let ts = local_transports().map(|inner| Truncating { inner, rounds: 0 });
        let out = run3_over(7, ts, |mut s| async move {
            let x = BitShares::zeros(1000);
            s.and(&x, &x).await
        })
        .await;
        for r in out {
            match r {
                Err(EngineError::Malformed {
                    peer,
                    expected,
                    found,
                }) => {
                    assert_eq!(peer, "next");
                    assert_eq!(expected, "125 bytes for 1000 bits in 1 vectors");
                    assert_eq!(found, "124 bytes");
                }
                other => panic!("expected Malformed, got {other:?}"),
            }
        }
    }
}
