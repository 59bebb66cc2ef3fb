//! Networking: quinn endpoints, certificate pinning, framed messages and the party mesh.
//!
//! Layout:
//! * `pin` — certificate pins (SHA-256 of the DER) and the rustls verifiers that accept a
//!   peer by pin alone;
//! * `identity` — a role's self-signed certificate and key, PEM files (key mode 0600);
//! * `endpoint` — QUIC server/client configs (TLS 1.3, ALPN `mpcstats/1`, one explicit ring
//!   provider), dialing, and the pin of a connected peer;
//! * `frame` — length-prefixed frames and bincode 2 messages with size limits checked
//!   before allocation;
//! * `mesh` — the connections between the three parties and per-session streams;
//! * `session` — [`QuicTransport`], the engine's `Transport` over those streams.
//!
//! This module holds no protocol logic: roles decide what to send, the engine what to compute.

pub mod endpoint;
pub mod frame;
pub mod identity;
pub mod mesh;
pub mod pin;
pub mod session;

pub use endpoint::{client_endpoint, connect, peer_pin, server_endpoint, ALPN};
pub use frame::{
    decode, encode, read_frame, recv_msg, send_msg, write_frame, FrameError, MAX_CONTROL_FRAME,
};
pub use identity::Identity;
pub use mesh::{Mesh, PeerInfo};
pub use pin::{pin_from_hex, pin_of, pin_to_hex, Pin, PinnedClientVerifier, PinnedServerVerifier};
pub use session::{QuicTransport, MAX_MPC_FRAME};
