//! The MPC engine: 3-party honest-majority computation over replicated secret sharing.
//!
//! A value x = x_0 + x_1 + x_2 in Z_2^k; party i holds (x_i, x_{i+1}). Protocol logic is
//! plain state and functions over messages; the network is the abstract [`Transport`], so
//! every protocol runs in-process and deterministically in tests ([`local`]) and over QUIC
//! (`net`) unchanged.
//!
//! Layout:
//! * [`error`] — the one error enum of the engine.
//! * [`transport`] — the abstract per-round transport, party ids and neighbours.
//! * [`ring`] — Z_2^64 and Z_2^128 behind the [`Ring`] trait, wire encoding.
//! * [`wide`] — Z_2^256, for exact second moments.
//! * [`tag_ring`] — Z_2^136 and Z_2^192, the malicious shuffle's tag rings for Z_2^128 columns.
//! * [`share`] — replicated shares, local operations, client-side split and reconstruct.
//! * [`prf`] — correlated randomness (zero shares, random shares) from pairwise seeds.
//! * [`prg`] — the AES-128-CTR generator behind every seeded stream.
//! * [`par`] — one party's local work spread over its cores.
//! * [`session`] — one party's session: seed agreement, round and byte counters.
//! * [`arith`] — input, open, multiplication, dot products, resharing: one round per vector.
//! * [`binary`] — boolean sharing over Z_2, bit-sliced: XOR, AND, open.
//! * [`circuits`] — boolean circuits: AES-128 (S-box, key schedule, encryption), GF(2^128).
//! * [`convert`] — A2B, msb, B2A, bit injection, bit-plane transposition.
//! * [`compare`] — LT, LTZ, EQ and their public-constant variants.
//! * [`edge_tree`] — bit-decomposed values against many public edges, shared subtrees once.
//! * [`lift`] — shares of small values from Z_2^128 to Z_2^256.
//! * [`popcount`] — the number of ones per group of shared bits, as a boolean circuit.
//! * [`shuffle`] — the oblivious shuffle of rows of shares.
//! * [`sort`] — sorting by secret keys on opened comparison bits after a shuffle.
//! * [`select`] — order statistics: quickselect and the max/min tournament.
//! * [`bracket`] — selection's Floyd–Rivest step: pivots from a sample around the ranks.
//! * [`verify`] — security with abort: recorded gates, their proof, checked openings.
//! * [`local`] — in-process transport and a three-party test harness.
//!
//! This module holds no code of its own, only declarations and re-exports.

pub mod arith;
pub mod binary;
pub mod bracket;
pub mod circuits;
pub mod compare;
pub mod convert;
pub mod edge_tree;
pub mod error;
pub mod lift;
pub mod local;
pub mod par;
pub mod popcount;
pub mod prf;
pub mod prg;
pub mod ring;
pub mod select;
pub mod session;
pub mod share;
pub mod shuffle;
pub mod sort;
pub mod tag_ring;
pub mod transport;
pub mod verify;
pub mod wide;

pub use arith::local_cross;
pub use binary::{pack, unpack, BitPlanes, BitShares};
pub use compare::eq_rounds;
pub use convert::{
    a2b_and_gates, msb_and_gates, msb_rounds, planes_to_values, transpose_to_planes,
};
pub use edge_tree::edge_tree_gates;
pub use error::{EngineError, Result};
pub use prf::Correlated;
pub use ring::{z128_to_z64, Ring, Z128, Z64};
pub use session::Session;
pub use share::{reconstruct, reconstruct_checked, split, Inconsistent, ReconstructError, Share};
pub use sort::{PivotRule, SortStats, SELECT_RULE, SORT_RULE};
pub use transport::{
    framed, Counters, Expect, Incoming, Outgoing, PartyId, Peer, Transport, FRAME_HEADER,
};
pub use verify::ring_proof::Gate;
pub use verify::{Proven, Security};
pub use wide::Z256;
