//! AES-128 on shared keys: key shares from a provider's XOR sharing, the key schedule, and
//! encryption of many blocks under one or several keys in one vectorised pass.
//!
//! Only SubBytes costs communication; ShiftRows, MixColumns and AddRoundKey are local. Each
//! round evaluates the S-boxes of all blocks (and of all keys, in the key schedule) in one
//! [`Session::sbox_many`] call, so the number of rounds does not depend on the number of
//! blocks: 10 · [`SBOX_AND_DEPTH`] = 40 rounds for the key schedule, 40 for encryption, and
//! 40 for both together with [`Session::aes128_expand_and_encrypt`], which evaluates the
//! S-boxes of key-schedule round r alongside those of encryption round r. Cost per block:
//! 160 S-boxes, 160 · [`SBOX_ANDS`] = 5,440 AND gates, 680 bytes sent per party; per key:
//! 40 S-boxes, 1,360 AND gates.
//!
//! Several keys (TLS has a client and a server key) are one [`KeyShares`] of K lanes; the
//! round keys are expanded locally to the lanes (blocks) that use them, so a single pass
//! encrypts blocks under different keys.
//!
//! Caller's duty: the engine is semi-honest and [`key_from_xor_pairs`] does not check that a
//! provider's pairs are consistent (party i's second component k_{i+1} must equal party
//! i + 1's first). Neighbours can check it without leaking anything by comparing a hash of
//! the component they share; a key that is not well defined otherwise just yields garbage
//! and a failed tag check.

use super::super::binary::{clear_tail, words_for, BitPlanes, BitShares};
use super::super::error::{EngineError, Result};
use super::super::session::Session;
use super::super::transport::{PartyId, Transport};
use super::blocks::{blocks_from_public, check_blocks, BLOCK_BITS};
#[cfg(doc)]
use super::sbox::{SBOX_ANDS, SBOX_AND_DEPTH};

/// Rounds of AES-128.
pub const AES_ROUNDS: usize = 10;

/// K shared AES-128 keys, bit-sliced like blocks: 128 planes of K bits (lane κ is key κ).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyShares {
    pub planes: BitPlanes,
}

/// Party i's share of one key from the provider's XOR sharing k = k_0 ⊕ k_1 ⊕ k_2 of the 16
/// key bytes: `a` = k_i and `b` = k_{i+1} (no communication).
pub fn key_from_xor_pairs(a: [u8; 16], b: [u8; 16]) -> KeyShares {
    let bit = |x: &[u8; 16], j: usize| ((x[j / 8] >> (j % 8)) & 1) as u64;
    let planes = (0..BLOCK_BITS)
        .map(|j| BitShares {
            a: vec![bit(&a, j)],
            b: vec![bit(&b, j)],
            len: 1,
        })
        .collect();
    KeyShares {
        planes: BitPlanes { planes, len: 1 },
    }
}

impl KeyShares {
    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.planes.len
    }

    /// Party `party`'s sharing of public keys (for tests and public-key uses).
    pub fn from_public(party: PartyId, keys: &[[u8; 16]]) -> KeyShares {
        KeyShares {
            planes: blocks_from_public(party, keys),
        }
    }

    /// The keys of `parts`, in order, as one batch.
    pub fn join(parts: &[&KeyShares]) -> Result<KeyShares> {
        for p in parts {
            check_blocks("KeyShares::join", &p.planes)?;
        }
        let len = parts.iter().map(|p| p.keys()).sum();
        let planes = (0..BLOCK_BITS)
            .map(|j| {
                BitShares::concat(
                    &parts
                        .iter()
                        .map(|p| &p.planes.planes[j])
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        Ok(KeyShares {
            planes: BitPlanes { planes, len },
        })
    }
}

/// The 11 round keys of K keys: `rounds[r]` is round key r of every key (128 planes of K bits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundKeys {
    pub keys: usize,
    pub rounds: Vec<BitPlanes>,
}

impl RoundKeys {
    fn check(&self, op: &str) -> Result<()> {
        if self.rounds.len() != AES_ROUNDS + 1 {
            return Err(EngineError::Invalid(format!(
                "{op}: {} round keys, expected {}",
                self.rounds.len(),
                AES_ROUNDS + 1
            )));
        }
        for r in &self.rounds {
            check_blocks(op, r)?;
            if r.len != self.keys {
                return Err(EngineError::Invalid(format!(
                    "{op}: a round key of {} lanes for {} keys",
                    r.len, self.keys
                )));
            }
        }
        Ok(())
    }
}

/// Bit i of byte k of a batch.
fn bit(x: &BitPlanes, k: usize, i: usize) -> &BitShares {
    &x.planes[8 * k + i]
}

/// Source byte of state byte k after ShiftRows: row r = k mod 4 moves left by r columns.
fn shift_rows_src(k: usize) -> usize {
    let (r, c) = (k % 4, k / 4);
    r + 4 * ((c + r) % 4)
}

/// Doubling in GF(2^8) of a bit-sliced byte (bit i at index i).
fn xtime(a: &[BitShares; 8]) -> [BitShares; 8] {
    [
        a[7].clone(),
        a[0].xor_same(&a[7]),
        a[1].clone(),
        a[2].xor_same(&a[7]),
        a[3].xor_same(&a[7]),
        a[4].clone(),
        a[5].clone(),
        a[6].clone(),
    ]
}

fn xor8(a: &[BitShares; 8], b: &[BitShares; 8]) -> [BitShares; 8] {
    std::array::from_fn(|i| a[i].xor_same(&b[i]))
}

/// MixColumns on 16 bit-sliced bytes: b_i = a_i ⊕ t ⊕ 2(a_i ⊕ a_{i+1}), t = a_0 ⊕ … ⊕ a_3.
fn mix_columns(bytes: &mut [[BitShares; 8]]) {
    for col in bytes.chunks_mut(4) {
        let t = xor8(&xor8(&col[0], &col[1]), &xor8(&col[2], &col[3]));
        let old: Vec<[BitShares; 8]> = col.to_vec();
        for i in 0..4 {
            let d = xtime(&xor8(&old[i], &old[(i + 1) % 4]));
            col[i] = xor8(&xor8(&old[i], &t), &d);
        }
    }
}

/// The S-box inputs of one key-schedule round: RotWord of word 3 of the previous round key,
/// i.e. bytes 13, 14, 15, 12, each K lanes (4K bits per plane).
fn schedule_sbox_input(prev: &BitPlanes) -> [BitShares; 8] {
    std::array::from_fn(|i| BitShares::concat(&[13, 14, 15, 12].map(|k| bit(prev, k, i))))
}

/// The next round key from the previous one and the S-box outputs (4K bits per plane).
fn schedule_finish(
    id: PartyId,
    prev: &BitPlanes,
    sub: &[BitShares; 8],
    rcon: u8,
) -> Result<BitPlanes> {
    let kk = prev.len;
    let mut planes = vec![BitShares::default(); BLOCK_BITS];
    for t in 0..4 {
        for i in 0..8 {
            let mut v = sub[i].slice(t * kk, kk)?;
            if t == 0 && (rcon >> i) & 1 == 1 {
                v = v.not(id);
            }
            planes[8 * t + i] = bit(prev, t, i).xor(&v)?;
        }
    }
    for k in 4..16 {
        for i in 0..8 {
            planes[8 * k + i] = bit(prev, k, i).xor(&planes[8 * (k - 4) + i])?;
        }
    }
    Ok(BitPlanes { planes, len: kk })
}

/// The S-box inputs of one encryption round with ShiftRows folded in: segment k of each plane
/// (B bits) is byte `shift_rows_src(k)` of the state (16B bits per plane).
fn round_sbox_input(state: &BitPlanes) -> [BitShares; 8] {
    std::array::from_fn(|i| {
        let parts: Vec<&BitShares> = (0..16).map(|k| bit(state, shift_rows_src(k), i)).collect();
        BitShares::concat(&parts)
    })
}

/// The state after SubBytes, ShiftRows and (unless `last`) MixColumns, from the S-box outputs
/// (16B bits per plane), before AddRoundKey.
fn round_finish(sub: &[BitShares; 8], len: usize, last: bool) -> Result<BitPlanes> {
    let mut bytes = Vec::with_capacity(16);
    for k in 0..16 {
        let mut byte: [BitShares; 8] = Default::default();
        for (i, b) in byte.iter_mut().enumerate() {
            *b = sub[i].slice(k * len, len)?;
        }
        bytes.push(byte);
    }
    if !last {
        mix_columns(&mut bytes);
    }
    Ok(BitPlanes {
        planes: bytes.into_iter().flatten().collect(),
        len,
    })
}

/// Round keys of K keys expanded to the B lanes of a batch: lane β uses key `key_of[β]`
/// (local copying).
struct LaneKeys {
    /// masks[κ]: the lanes that use key κ.
    masks: Vec<Vec<u64>>,
    len: usize,
}

impl LaneKeys {
    fn new(op: &str, keys: usize, key_of: &[usize]) -> Result<Self> {
        let len = key_of.len();
        let mut masks = vec![vec![0u64; words_for(len)]; keys];
        for (beta, &k) in key_of.iter().enumerate() {
            let m = masks.get_mut(k).ok_or_else(|| {
                EngineError::Invalid(format!("{op}: block {beta} uses key {k} of {keys}"))
            })?;
            m[beta / 64] |= 1 << (beta % 64);
        }
        Ok(LaneKeys { masks, len })
    }

    fn spread(&self, words: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; words_for(self.len)];
        for (k, m) in self.masks.iter().enumerate() {
            if (words[k / 64] >> (k % 64)) & 1 == 1 {
                out.iter_mut().zip(m).for_each(|(o, w)| *o ^= w);
            }
        }
        clear_tail(&mut out, self.len);
        out
    }

    /// `state` ⊕ the expanded round key `rk` (K lanes).
    fn add_round_key(&self, state: &BitPlanes, rk: &BitPlanes) -> Result<BitPlanes> {
        let planes = state
            .planes
            .iter()
            .zip(&rk.planes)
            .map(|(s, k)| {
                s.xor(&BitShares {
                    a: self.spread(&k.a),
                    b: self.spread(&k.b),
                    len: self.len,
                })
            })
            .collect::<Result<_>>()?;
        Ok(BitPlanes {
            planes,
            len: state.len,
        })
    }
}

/// The round constants of AES-128, rounds 1 to 10.
const RCON: [u8; AES_ROUNDS] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

fn check_batch(op: &str, keys: usize, key_of: &[usize], blocks: &BitPlanes) -> Result<LaneKeys> {
    check_blocks(op, blocks)?;
    if key_of.len() != blocks.len {
        return Err(EngineError::Invalid(format!(
            "{op}: {} key indices for {} blocks",
            key_of.len(),
            blocks.len
        )));
    }
    LaneKeys::new(op, keys, key_of)
}

impl<T: Transport> Session<T> {
    /// The round keys of K shared keys at once: 10 rounds of 4K S-boxes,
    /// 10 · [`SBOX_AND_DEPTH`] communication rounds for any K.
    pub async fn aes128_key_schedule(&mut self, key: &KeyShares) -> Result<RoundKeys> {
        check_blocks("aes128_key_schedule", &key.planes)?;
        let id = self.id();
        let mut rounds = vec![key.planes.clone()];
        for rcon in RCON {
            let prev = rounds.last().expect("round 0 present");
            let sub = self.sbox_many(&schedule_sbox_input(prev)).await?;
            let next = schedule_finish(id, prev, &sub, rcon)?;
            rounds.push(next);
        }
        Ok(RoundKeys {
            keys: key.keys(),
            rounds,
        })
    }

    /// AES-128 encryption of B shared blocks under K keys: block β under key `key_of[β]`.
    /// One pass: 10 · [`SBOX_AND_DEPTH`] rounds for any B and K; each party sends
    /// 16 · 10 · [`SBOX_ANDS`] / 8 = 680 bytes per block.
    pub async fn aes128_encrypt_multi(
        &mut self,
        rk: &RoundKeys,
        key_of: &[usize],
        blocks: &BitPlanes,
    ) -> Result<BitPlanes> {
        rk.check("aes128_encrypt")?;
        let lanes = check_batch("aes128_encrypt", rk.keys, key_of, blocks)?;
        let mut state = lanes.add_round_key(blocks, &rk.rounds[0])?;
        for r in 1..=AES_ROUNDS {
            let sub = self.sbox_many(&round_sbox_input(&state)).await?;
            let mixed = round_finish(&sub, blocks.len, r == AES_ROUNDS)?;
            state = lanes.add_round_key(&mixed, &rk.rounds[r])?;
        }
        Ok(state)
    }

    /// AES-128 encryption of B shared blocks under a single key (`rk.keys` must be 1).
    pub async fn aes128_encrypt(
        &mut self,
        rk: &RoundKeys,
        blocks: &BitPlanes,
    ) -> Result<BitPlanes> {
        if rk.keys != 1 {
            return Err(EngineError::Invalid(format!(
                "aes128_encrypt: {} keys, use aes128_encrypt_multi",
                rk.keys
            )));
        }
        self.aes128_encrypt_multi(rk, &vec![0; blocks.len], blocks)
            .await
    }

    /// AES-128 encryption of public blocks (counter blocks) under shared keys: block β under
    /// key `key_of[β]`. The result is shared.
    pub async fn aes128_encrypt_public(
        &mut self,
        rk: &RoundKeys,
        key_of: &[usize],
        blocks: &[[u8; 16]],
    ) -> Result<BitPlanes> {
        let x = blocks_from_public(self.id(), blocks);
        self.aes128_encrypt_multi(rk, key_of, &x).await
    }

    /// Key schedule and encryption together: the S-boxes of key-schedule round r and of
    /// encryption round r share one [`Session::sbox_many`] call, so the whole costs
    /// 10 · [`SBOX_AND_DEPTH`] = 40 rounds instead of 80. Returns the round keys too (for
    /// more blocks later) and the B encrypted blocks (block β under key `key_of[β]`).
    pub async fn aes128_expand_and_encrypt(
        &mut self,
        key: &KeyShares,
        key_of: &[usize],
        blocks: &BitPlanes,
    ) -> Result<(RoundKeys, BitPlanes)> {
        check_blocks("aes128_expand_and_encrypt", &key.planes)?;
        let lanes = check_batch("aes128_expand_and_encrypt", key.keys(), key_of, blocks)?;
        let (id, kk, len) = (self.id(), key.keys(), blocks.len);
        let mut rounds = vec![key.planes.clone()];
        let mut state = lanes.add_round_key(blocks, &rounds[0])?;
        for (r, rcon) in (1..=AES_ROUNDS).zip(RCON) {
            let prev = rounds.last().expect("round 0 present");
            let ks_in = schedule_sbox_input(prev);
            let enc_in = round_sbox_input(&state);
            let both: [BitShares; 8] =
                std::array::from_fn(|i| BitShares::concat(&[&ks_in[i], &enc_in[i]]));
            let sub = self.sbox_many(&both).await?;
            let mut ks_sub: [BitShares; 8] = Default::default();
            let mut enc_sub: [BitShares; 8] = Default::default();
            for i in 0..8 {
                ks_sub[i] = sub[i].slice(0, 4 * kk)?;
                enc_sub[i] = sub[i].slice(4 * kk, 16 * len)?;
            }
            let next = schedule_finish(id, prev, &ks_sub, rcon)?;
            let mixed = round_finish(&enc_sub, len, r == AES_ROUNDS)?;
            state = lanes.add_round_key(&mixed, &next)?;
            rounds.push(next);
        }
        Ok((RoundKeys { keys: kk, rounds }, state))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::circuits::blocks::tests::rand_blocks;
    use crate::engine::circuits::blocks::{blocks_to_words, planes_to_blocks};
    use crate::engine::circuits::sbox::tests::{gf256_mul, sbox_ref};
    use crate::engine::circuits::sbox::{SBOX_ANDS, SBOX_AND_DEPTH};
    use crate::engine::local::run3;
    use crate::engine::session::Counters;
    use crate::engine::transport::FRAME_HEADER;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::time::Instant;

    /// Plaintext reference: the 11 round keys of AES-128 (FIPS-197 §5.2).
    pub(crate) fn ref_expand(key: [u8; 16]) -> [[u8; 16]; 11] {
        let mut rk = [[0u8; 16]; 11];
        rk[0] = key;
        for r in 1..=10 {
            let p = rk[r - 1];
            let mut t = [p[13], p[14], p[15], p[12]].map(sbox_ref);
            t[0] ^= RCON[r - 1];
            for k in 0..16 {
                let prev_word = if k < 4 { t[k] } else { rk[r][k - 4] };
                rk[r][k] = p[k] ^ prev_word;
            }
        }
        rk
    }

    /// Plaintext reference: AES-128 encryption of one block (FIPS-197 §5.1).
    pub(crate) fn ref_encrypt(key: [u8; 16], block: [u8; 16]) -> [u8; 16] {
        let rk = ref_expand(key);
        let mut s: [u8; 16] = std::array::from_fn(|k| block[k] ^ rk[0][k]);
        for (r, key) in rk.iter().enumerate().skip(1) {
            let sub = s.map(sbox_ref);
            s = std::array::from_fn(|k| sub[shift_rows_src(k)]);
            if r < 10 {
                let old = s;
                for c in 0..4 {
                    let a = &old[4 * c..4 * c + 4];
                    for i in 0..4 {
                        s[4 * c + i] = gf256_mul(a[i], 2)
                            ^ gf256_mul(a[(i + 1) % 4], 3)
                            ^ a[(i + 2) % 4]
                            ^ a[(i + 3) % 4];
                    }
                }
            }
            s.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
        }
        s
    }

    pub(crate) fn hex16(s: &str) -> [u8; 16] {
        std::array::from_fn(|k| u8::from_str_radix(&s[2 * k..2 * k + 2], 16).unwrap())
    }

    #[test]
    fn reference_matches_fips197() {
        // Appendix C.1.
        let key = hex16("000102030405060708090a0b0c0d0e0f");
        let pt = hex16("00112233445566778899aabbccddeeff");
        assert_eq!(
            ref_encrypt(key, pt),
            hex16("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
        // Appendix A.1: the last round key of 2b7e1516….
        let rk = ref_expand(hex16("2b7e151628aed2a6abf7158809cf4f3c"));
        assert_eq!(rk[10], hex16("d014f9a8c9ee2589e13f0cc8b6630ca6"));
        // Appendix B.
        assert_eq!(
            ref_encrypt(
                hex16("2b7e151628aed2a6abf7158809cf4f3c"),
                hex16("3243f6a8885a308d313198a2e0370734")
            ),
            hex16("3925841d02dc09fbdc118597196a0b32")
        );
    }

    /// XOR shares of `key` for the three parties (k_0 ⊕ k_1 ⊕ k_2 = key), from `seed`.
    pub(crate) fn xor_share_key(key: [u8; 16], seed: u64) -> [[u8; 16]; 3] {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let k1: [u8; 16] = rng.gen();
        let k2: [u8; 16] = rng.gen();
        let k0 = std::array::from_fn(|k| key[k] ^ k1[k] ^ k2[k]);
        [k0, k1, k2]
    }

    /// Party `id`'s shares of `keys`, each XOR-shared by a provider.
    pub(crate) fn party_keys(id: PartyId, keys: &[[u8; 16]], seed: u64) -> KeyShares {
        let parts: Vec<KeyShares> = keys
            .iter()
            .enumerate()
            .map(|(n, &key)| {
                let sh = xor_share_key(key, seed + n as u64);
                key_from_xor_pairs(sh[id], sh[(id + 1) % 3])
            })
            .collect();
        KeyShares::join(&parts.iter().collect::<Vec<_>>()).unwrap()
    }

    /// Reconstructs blocks from the three parties' planes, checking consistency.
    pub(crate) fn recon_blocks(parts: [&BitPlanes; 3]) -> Vec<[u8; 16]> {
        let len = parts[0].len;
        let planes: Vec<Vec<u64>> = (0..BLOCK_BITS)
            .map(|j| {
                for i in 0..3 {
                    assert_eq!(parts[i].planes[j].a, parts[(i + 2) % 3].planes[j].b);
                }
                (0..words_for(len))
                    .map(|w| (0..3).fold(0, |acc, i| acc ^ parts[i].planes[j].a[w]))
                    .collect()
            })
            .collect();
        planes_to_blocks(&planes, len)
    }

    fn diff(a: Counters, b: Counters) -> Counters {
        Counters {
            rounds: b.rounds - a.rounds,
            bytes_sent: b.bytes_sent - a.bytes_sent,
            bytes_received: b.bytes_received - a.bytes_received,
        }
    }

    #[tokio::test]
    async fn key_schedule_matches_reference() {
        let mut keys = vec![hex16("2b7e151628aed2a6abf7158809cf4f3c")];
        keys.extend(rand_blocks(40, 4));
        let k2 = keys.clone();
        let out = run3(1, move |mut s| {
            let keys = k2.clone();
            async move {
                let ks = party_keys(s.id(), &keys, 7);
                let before = s.counters();
                let rk = s.aes128_key_schedule(&ks).await?;
                Ok((rk, diff(before, s.counters())))
            }
        })
        .await
        .map(|r| r.unwrap());
        for r in 0..=AES_ROUNDS {
            let got = recon_blocks([
                &out[0].0.rounds[r],
                &out[1].0.rounds[r],
                &out[2].0.rounds[r],
            ]);
            for (n, key) in keys.iter().enumerate() {
                assert_eq!(got[n], ref_expand(*key)[r], "key {n} round {r}");
            }
        }
        for o in &out {
            assert_eq!(o.1.rounds, (AES_ROUNDS * SBOX_AND_DEPTH) as u64);
        }
    }

    /// Runs the encryption of `blocks` under `keys` (block β under `key_of[β]`) both with a
    /// separate key schedule and fused; checks both against the reference and returns the
    /// counters of the separate encryption and of the fused pass.
    async fn encrypt_case(
        seed: u64,
        keys: Vec<[u8; 16]>,
        key_of: Vec<usize>,
        blocks: Vec<[u8; 16]>,
    ) -> (Counters, Counters) {
        let (k2, o2, b2) = (keys.clone(), key_of.clone(), blocks.clone());
        let out = run3(seed, move |mut s| {
            let (keys, key_of, blocks) = (k2.clone(), o2.clone(), b2.clone());
            async move {
                let id = s.id();
                let ks = party_keys(id, &keys, seed * 100);
                let rk = s.aes128_key_schedule(&ks).await?;
                let before = s.counters();
                let ct = s.aes128_encrypt_public(&rk, &key_of, &blocks).await?;
                let enc = diff(before, s.counters());
                let before = s.counters();
                let x = blocks_from_public(id, &blocks);
                let (rk2, ct2) = s.aes128_expand_and_encrypt(&ks, &key_of, &x).await?;
                let fused = diff(before, s.counters());
                let opened = s.open_blocks(&ct).await?;
                Ok((ct, ct2, rk2, enc, fused, opened))
            }
        })
        .await
        .map(|r| r.unwrap());
        let want: Vec<[u8; 16]> = blocks
            .iter()
            .zip(&key_of)
            .map(|(b, &k)| ref_encrypt(keys[k], *b))
            .collect();
        assert_eq!(recon_blocks([&out[0].0, &out[1].0, &out[2].0]), want);
        assert_eq!(recon_blocks([&out[0].1, &out[1].1, &out[2].1]), want);
        for r in [1, AES_ROUNDS] {
            let got = recon_blocks([
                &out[0].2.rounds[r],
                &out[1].2.rounds[r],
                &out[2].2.rounds[r],
            ]);
            for (n, key) in keys.iter().enumerate() {
                assert_eq!(
                    got[n],
                    ref_expand(*key)[r],
                    "fused round keys, key {n} round {r}"
                );
            }
        }
        for o in &out {
            assert_eq!(o.5, want);
        }
        (out[0].3, out[0].4)
    }

    #[tokio::test]
    async fn encrypt_fips197_under_shared_key() {
        let key = hex16("000102030405060708090a0b0c0d0e0f");
        let pt = hex16("00112233445566778899aabbccddeeff");
        let out = run3(2, move |mut s| async move {
            let sh = xor_share_key(key, 9);
            let id = s.id();
            let ks = key_from_xor_pairs(sh[id], sh[(id + 1) % 3]);
            let rk = s.aes128_key_schedule(&ks).await?;
            let ct = s
                .aes128_encrypt(&rk, &blocks_from_public(id, &[pt, pt]))
                .await?;
            s.open_blocks(&ct).await
        })
        .await
        .map(|r| r.unwrap());
        let want = hex16("69c4e0d86a7b0430d8cdb78070b4c55a");
        for o in out {
            assert_eq!(o, vec![want, want]);
        }
    }

    #[tokio::test]
    async fn encrypt_random_rounds_independent_of_batch() {
        let mut seen = Vec::new();
        for (n, b) in [1usize, 3, 100].into_iter().enumerate() {
            let keys = rand_blocks(50 + n as u64, 1);
            let blocks = rand_blocks(60 + n as u64, b);
            let (enc, fused) = encrypt_case(n as u64 + 3, keys, vec![0; b], blocks).await;
            assert_eq!(enc.rounds, (AES_ROUNDS * SBOX_AND_DEPTH) as u64);
            assert_eq!(fused.rounds, (AES_ROUNDS * SBOX_AND_DEPTH) as u64);
            // One frame to the previous party per AND layer.
            assert_eq!(
                enc.bytes_sent,
                (AES_ROUNDS * (SBOX_ANDS * (16 * b).div_ceil(8) + SBOX_AND_DEPTH * FRAME_HEADER))
                    as u64
            );
            eprintln!(
                "AES-128, B = {b}: encryption {enc}; key schedule + encryption fused {fused}"
            );
            seen.push(enc.rounds);
        }
        assert!(seen.iter().all(|&r| r == seen[0]));
    }

    #[tokio::test]
    async fn two_keys_in_one_pass() {
        let keys = rand_blocks(70, 2);
        let blocks = rand_blocks(71, 37);
        let key_of: Vec<usize> = (0..37).map(|b| (b % 3 == 0) as usize).collect();
        let (enc, _) = encrypt_case(11, keys.clone(), key_of, blocks.clone()).await;
        assert_eq!(enc.rounds, (AES_ROUNDS * SBOX_AND_DEPTH) as u64);
        // The same with the FIPS key as key 1.
        let keys = vec![keys[0], hex16("000102030405060708090a0b0c0d0e0f")];
        let mut blocks = blocks;
        blocks[1] = hex16("00112233445566778899aabbccddeeff");
        encrypt_case(12, keys, vec![1; 37], blocks).await;
    }

    #[tokio::test]
    async fn invalid_inputs_are_rejected() {
        let out = run3(4, |mut s| async move {
            let id = s.id();
            let ks = KeyShares::from_public(id, &rand_blocks(1, 2));
            let rk = s.aes128_key_schedule(&ks).await?;
            let x = blocks_from_public(id, &rand_blocks(2, 3));
            let many_keys = s.aes128_encrypt(&rk, &x).await.is_err();
            let bad_index = s.aes128_encrypt_multi(&rk, &[0, 2, 1], &x).await.is_err();
            let bad_len = s.aes128_encrypt_multi(&rk, &[0, 1], &x).await.is_err();
            let mut short = x.clone();
            short.planes.pop();
            let bad_planes = s
                .aes128_encrypt_multi(&rk, &[0, 1, 0], &short)
                .await
                .is_err();
            Ok([many_keys, bad_index, bad_len, bad_planes])
        })
        .await;
        for o in out {
            assert_eq!(o.unwrap(), [true; 4]);
        }
    }

    #[tokio::test]
    async fn costs_and_time_for_64_and_256_blocks() {
        for b in [64usize, 256] {
            let blocks = rand_blocks(80, b);
            let key = rand_blocks(81, 1)[0];
            let b2 = blocks.clone();
            let start = Instant::now();
            let out = run3(13, move |mut s| {
                let blocks = b2.clone();
                async move {
                    let id = s.id();
                    let t0 = Instant::now();
                    let c0 = s.counters();
                    let ks = party_keys(id, &[key], 5);
                    let rk = s.aes128_key_schedule(&ks).await?;
                    let c1 = s.counters();
                    let ct = s
                        .aes128_encrypt_public(&rk, &vec![0; blocks.len()], &blocks)
                        .await?;
                    let c2 = s.counters();
                    let sep = t0.elapsed();
                    let t1 = Instant::now();
                    let x = blocks_from_public(id, &blocks);
                    let (_, ct2) = s
                        .aes128_expand_and_encrypt(&ks, &vec![0; blocks.len()], &x)
                        .await?;
                    let fused = t1.elapsed();
                    let c3 = s.counters();
                    let opened = s.open_blocks(&ct).await?;
                    assert_eq!(opened, s.open_blocks(&ct2).await?);
                    Ok((diff(c0, c1), diff(c1, c2), diff(c2, c3), sep, fused, opened))
                }
            })
            .await
            .map(|r| r.unwrap());
            let total = start.elapsed();
            let want: Vec<[u8; 16]> = blocks.iter().map(|x| ref_encrypt(key, *x)).collect();
            assert_eq!(out[0].5, want);
            let (ks, enc, fused) = (out[0].0, out[0].1, out[0].2);
            eprintln!(
                "AES-128 {b} blocks ({} bytes), local transport, party 0:\n  key schedule: {ks} \
                 ({} ANDs)\n  encryption: {enc}; per block {} bytes sent, {} ANDs\n  \
                 key schedule + encryption, separate: {:?}; fused ({fused}): {:?}; \
                 whole test incl. session setup and open: {total:?}",
                16 * b,
                4 * AES_ROUNDS * SBOX_ANDS,
                enc.bytes_sent as f64 / b as f64,
                16 * AES_ROUNDS * SBOX_ANDS,
                out[0].3,
                out[0].4,
            );
            assert_eq!(ks.rounds, enc.rounds);
            assert_eq!(fused.rounds, enc.rounds);
            assert_eq!(
                enc.bytes_sent,
                (b * 16 * AES_ROUNDS * SBOX_ANDS / 8 + AES_ROUNDS * SBOX_AND_DEPTH * FRAME_HEADER)
                    as u64
            );
        }
    }

    #[test]
    fn shift_rows_and_words() {
        // ShiftRows moves row r left by r: state byte (r, c) takes (r, c + r).
        assert_eq!(
            (0..16).map(shift_rows_src).collect::<Vec<_>>(),
            vec![0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11]
        );
        let k = hex16("000102030405060708090a0b0c0d0e0f");
        let w = blocks_to_words(&[k]);
        let ks = key_from_xor_pairs(k, [0; 16]);
        for (p, wj) in ks.planes.planes.iter().zip(&w) {
            assert_eq!(&p.a, wj);
            assert_eq!(p.b, vec![0]);
        }
    }
}
