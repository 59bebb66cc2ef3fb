//! mpcstats: private statistics over proven web data.
//!
//! # Layout
//!
//! * [`engine`] — 3-party replicated secret sharing over Z_2^64 / Z_2^128 / Z_2^256: shares, correlated
//!   randomness, vectorised arithmetic, all over an abstract [`engine::Transport`]. No I/O.
//! * [`net`] — QUIC (quinn) endpoints with certificate pinning, length-limited bincode frames,
//!   the party mesh, and the QUIC implementation of the engine transport.
//! * [`oracle`] — the TLS oracle: TLS 1.3 record and handshake checks, the notary's signed
//!   attestation, proof files, and the local test exchange.
//! * [`stats`] — statistic definitions, their MPC programs and the consumer's final step.
//! * [`privacy`] — differential privacy: exact discrete Laplace sampling, noise drawn inside
//!   the MPC, each statistic's mechanism.
//! * [`store`] — the SQLite stores of the parties and the coordinator.
//! * [`api`] — the client API: cached statistics over REST and a web page with charts.
//! * [`roles`] — one module per subcommand: `keygen`, `init`, `coordinator`, `party`, `share`,
//!   `query`, `status`, `demo`, and the client they share.
//! * [`config`] — the public `cluster.toml`; [`fingerprint`] — the digest of its meaning that
//!   every role shows and checks; [`wire`] — the messages between roles;
//!   [`decimal`] — exact decimal text ⇄ scaled integers; [`files`] — bounded reads of local
//!   files.

pub mod api;
pub mod config;
pub mod decimal;
pub mod engine;
pub mod files;
pub mod fingerprint;
pub mod net;
pub mod oracle;
pub mod privacy;
pub mod roles;
pub mod stats;
pub mod store;
pub mod wire;
