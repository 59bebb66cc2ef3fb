//! Boolean circuits for TLS 1.3 AES-128-GCM inside the MPC: the AES S-box, AES-128 (key
//! schedule and encryption, many blocks and several keys in one vectorised pass) and
//! multiplication in GF(2^128) for GHASH.
//!
//! Blocks are bit-sliced [`BitPlanes`](super::binary::BitPlanes) of 128 planes: for a batch
//! of B blocks, plane 8k + i holds bit i (0 = least significant, 7 = most significant) of
//! byte k of every block, B bits long. Read as integers, a block is `u128::from_le_bytes` of
//! its 16 bytes; the byte layout is that of AES (FIPS-197: byte k is state byte k, column
//! k / 4, row k % 4) and of GCM (the GCM integer is `u128::from_be_bytes`).
//!
//! Layout:
//! * [`blocks`] — public blocks ↔ planes, opening planes, XOR with public blocks.
//! * [`sbox`] — the Boyar–Peralta S-box circuit and a layered circuit evaluator.
//! * [`aes`] — shared keys, key schedule and AES-128 encryption.
//! * [`ghash`](mod@ghash) — GF(2^128) multiplication and GHASH, plaintext and shared.
//!
//! This module holds no code of its own, only declarations and re-exports.

pub mod aes;
pub mod blocks;
pub mod ghash;
pub mod sbox;

pub use aes::{key_from_xor_pairs, KeyShares, RoundKeys, AES_ROUNDS};
pub use blocks::{blocks_from_public, planes_to_blocks, xor_public_blocks, BLOCK_BITS};
pub use ghash::{gf128_mul, gf128_mul_public, ghash};
pub use sbox::{sbox_plain, Circuit, Gate, SBOX_ANDS, SBOX_AND_DEPTH};
