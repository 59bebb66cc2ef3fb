//! AES-128-GCM of every record of both directions in one vectorised AES pass: the GHASH keys,
//! the tag masks and the CTR keystream under the shared keys; the tag checks in public; the
//! shared plaintext of every record.
//!
//! # Why H and E_K(J0) may be opened
//!
//! The pass encrypts three kinds of input block under each key K: 0^128 (giving the GHASH
//! key H), J0 = nonce ‖ 00000001 of every record (giving its tag mask), and nonce ‖ i for
//! i ≥ 2 (the keystream). No opened input equals a hidden one: J0 and the counter blocks of
//! any two records differ in their last 4 bytes (1 against ≥ 2), and 0^128 is no counter
//! block because no counter is 0. The nonces of two records of one direction differ too
//! (TLS 1.3: IV ⊕ distinct sequence numbers; TLS 1.2: salt ‖ explicit nonce, and a repeated
//! explicit nonce is refused), so no two keystream blocks coincide either. AES is a
//! pseudorandom permutation, so its outputs on distinct inputs are computationally
//! independent: opening H and every E_K(J0) tells nothing about the keystream blocks, which
//! stay shared, and so nothing about the plaintext. What H and E_K(J0) do give is the power
//! to forge GCM tags under K for those nonces. That power is worthless here: the session is
//! over, the records are fixed (the attestation signs their hashes, and the caller checks
//! them before running this), and the provider who could abuse a forgery already knows K.
//! With H and the masks public, each tag check is public arithmetic over the public
//! ciphertext (`ghash(H, header, ciphertext) ⊕ E_K(J0) = tag`), which every party computes
//! and so reaches the same verdict, with no shared GF(2^128) multiplication.

use crate::engine::binary::BitPlanes;
use crate::engine::circuits::aes::key_from_xor_pairs;
use crate::engine::circuits::blocks::{blocks_from_public, byte_stream};
use crate::engine::circuits::ghash::ghash;
use crate::engine::circuits::sbox::SBOX_ANDS;
use crate::engine::circuits::{KeyShares, AES_ROUNDS};
use crate::engine::error::{EngineError, Result as EngineResult};
use crate::engine::session::Session;
use crate::engine::transport::Transport;
use crate::oracle::attestation::Direction;
use crate::oracle::handshake::TlsVersion;
use crate::oracle::tls12::{EXPLICIT_NONCE_LEN, SALT_LEN};
use crate::oracle::tls13::{
    parse_records, CONTENT_ALERT, CONTENT_APPLICATION_DATA, IV_LEN, RECORD_HEADER_LEN, TAG_LEN,
};

use super::shared::SharedBytes;
use super::{KeyPairs, VerifyError};

/// One protected record, public parts.
#[derive(Clone, Debug)]
pub struct RecordInfo {
    pub direction: Direction,
    /// Index among its direction's attested records, from 0.
    pub seq: u64,
    pub header: [u8; RECORD_HEADER_LEN],
    /// The GCM nonce.
    pub nonce: [u8; IV_LEN],
    /// The additional data the tag covers (TLS 1.3: the header; TLS 1.2: sequence number,
    /// type, version, plaintext length).
    pub aad: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub tag: [u8; TAG_LEN],
}

/// A record with its shared inner plaintext (content ‖ content type ‖ padding).
pub struct SharedRecord {
    pub info: RecordInfo,
    pub plaintext: SharedBytes,
}

/// Splits each entry into exactly one protected record with at least one byte of plaintext,
/// and computes its nonce and additional data for `version` from the direction's `iv`.
pub fn parse(
    version: TlsVersion,
    direction: Direction,
    iv: &[u8; IV_LEN],
    entries: &[Vec<u8>],
) -> Result<Vec<RecordInfo>, VerifyError> {
    let mut explicit_nonces = std::collections::HashSet::new();
    entries
        .iter()
        .enumerate()
        .map(|(seq, bytes)| {
            let seq = seq as u64;
            let bad = |reason: String| VerifyError::MalformedRecord {
                direction,
                seq,
                reason,
            };
            let records = parse_records(bytes).map_err(|e| bad(e.to_string()))?;
            let [record] = records.as_slice() else {
                return Err(bad(format!("{} records in one entry", records.len())));
            };
            let (allowed, explicit): (&[u8], usize) = match version {
                TlsVersion::Tls13 => (&[CONTENT_APPLICATION_DATA], 0),
                TlsVersion::Tls12 => (
                    &[CONTENT_APPLICATION_DATA, CONTENT_ALERT],
                    EXPLICIT_NONCE_LEN,
                ),
            };
            if !allowed.contains(&record.content_type) {
                return Err(bad(format!(
                    "outer content type {}, expected {allowed:?}",
                    record.content_type
                )));
            }
            let n = record.fragment.len();
            if n < explicit + TAG_LEN + 1 {
                return Err(bad(format!(
                    "{n} bytes of nonce, ciphertext and tag, expected at least {}",
                    explicit + TAG_LEN + 1
                )));
            }
            let (ct, tag) = record.fragment[explicit..].split_at(n - explicit - TAG_LEN);
            let (nonce, aad) = match version {
                TlsVersion::Tls13 => (nonce13(iv, seq), record.header().to_vec()),
                TlsVersion::Tls12 => {
                    let mut nonce = *iv;
                    nonce[SALT_LEN..].copy_from_slice(&record.fragment[..EXPLICIT_NONCE_LEN]);
                    if !explicit_nonces.insert(nonce) {
                        return Err(bad("a repeated explicit nonce".into()));
                    }
                    // Application records follow the Finished (sequence number 0).
                    let mut aad = (seq + 1).to_be_bytes().to_vec();
                    aad.push(record.content_type);
                    aad.extend_from_slice(&record.version.to_be_bytes());
                    aad.extend_from_slice(&(ct.len() as u16).to_be_bytes());
                    (nonce, aad)
                }
            };
            Ok(RecordInfo {
                direction,
                seq,
                header: record.header(),
                nonce,
                aad,
                ciphertext: ct.to_vec(),
                tag: tag.try_into().expect("16-byte tag"),
            })
        })
        .collect()
}

/// The TLS 1.3 nonce of record `seq`: the IV XOR the 64-bit sequence number, left-padded.
fn nonce13(iv: &[u8; IV_LEN], seq: u64) -> [u8; IV_LEN] {
    let mut n = *iv;
    for (b, s) in n[IV_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

/// The counter block nonce ‖ counter (big-endian).
fn counter_block(nonce: &[u8; IV_LEN], counter: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..IV_LEN].copy_from_slice(nonce);
    b[IV_LEN..].copy_from_slice(&counter.to_be_bytes());
    b
}

/// AND gates of one AES pass over `keys` keys and `blocks` blocks (key schedule included).
pub fn aes_and_gates(keys: usize, blocks: usize) -> u64 {
    (SBOX_ANDS * AES_ROUNDS * (16 * blocks + 4 * keys)) as u64
}

/// Lane slice `start .. start + len` of every plane of a batch.
fn lanes(x: &BitPlanes, start: usize, len: usize) -> EngineResult<BitPlanes> {
    Ok(BitPlanes {
        planes: x
            .planes
            .iter()
            .map(|p| p.slice(start, len))
            .collect::<EngineResult<_>>()?,
        len,
    })
}

/// Runs the AES pass, opens H and the tag masks, checks every tag, and returns the shared
/// inner plaintext of every record (client records first, then server records, each in
/// order). Adds the AND gates used to `ands`.
pub async fn decrypt<T: Transport>(
    s: &mut Session<T>,
    keys: &KeyPairs,
    records: Vec<RecordInfo>,
    ands: &mut u64,
) -> Result<Vec<SharedRecord>, VerifyError> {
    let id = s.id();
    let key_index = |d: Direction| match d {
        Direction::ClientToServer => 0usize,
        Direction::ServerToClient => 1,
    };
    // Lanes: H of each key, J0 of each record, then each record's keystream blocks.
    let mut inputs: Vec<[u8; 16]> = vec![[0; 16], [0; 16]];
    let mut key_of = vec![0usize, 1];
    for r in &records {
        inputs.push(counter_block(&r.nonce, 1));
        key_of.push(key_index(r.direction));
    }
    let opened_lanes = inputs.len();
    let mut first_block = Vec::with_capacity(records.len());
    for r in &records {
        first_block.push(inputs.len() - opened_lanes);
        for i in 0..r.ciphertext.len().div_ceil(16) {
            inputs.push(counter_block(&r.nonce, 2 + i as u32));
            key_of.push(key_index(r.direction));
        }
    }
    let key = KeyShares::join(&[
        &key_from_xor_pairs(keys.client.0, keys.client.1),
        &key_from_xor_pairs(keys.server.0, keys.server.1),
    ])?;
    let blocks = blocks_from_public(id, &inputs);
    let (_, out) = s.aes128_expand_and_encrypt(&key, &key_of, &blocks).await?;
    *ands += aes_and_gates(2, inputs.len());

    let masks = s.open_blocks(&lanes(&out, 0, opened_lanes)?).await?;
    let h = [u128::from_be_bytes(masks[0]), u128::from_be_bytes(masks[1])];
    for (r, mask) in records.iter().zip(&masks[2..]) {
        let expect =
            ghash(h[key_index(r.direction)], &r.aad, &r.ciphertext) ^ u128::from_be_bytes(*mask);
        if expect != u128::from_be_bytes(r.tag) {
            return Err(VerifyError::TagMismatch {
                direction: r.direction,
                seq: r.seq,
            });
        }
    }

    let stream = byte_stream(&lanes(&out, opened_lanes, inputs.len() - opened_lanes)?)?;
    let stream = SharedBytes {
        planes: stream
            .planes
            .try_into()
            .map_err(|_| EngineError::Invalid("byte stream without 8 planes".into()))?,
    };
    records
        .into_iter()
        .zip(first_block)
        .map(|(info, first)| {
            let plaintext = stream
                .slice(16 * first, info.ciphertext.len())?
                .xor_public(id, &info.ciphertext)?;
            Ok(SharedRecord { info, plaintext })
        })
        .collect()
}
