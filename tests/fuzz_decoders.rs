//! Property tests over arbitrary bytes and over mutations of valid encodings (truncate, flip,
//! splice, insert, huge length prefixes) for every decoder of untrusted binary input: frames,
//! wire messages, proof files, attestations and the MPC transport's payloads. The text and
//! TLS decoders are in `fuzz_oracle.rs` and `fuzz_inputs.rs`; `fuzz/` holds the cargo-fuzz
//! targets over the same entry points.
//!
//! # Inventory: every decoder of network or file input in `src/`
//!
//! | input | decoder (public entry point) | from | tested in |
//! | --- | --- | --- | --- |
//! | frame header and body | `net::frame::read_frame` (limit before allocation, growth by chunks) | every QUIC stream | here |
//! | control messages | `net::frame::decode` / `recv_msg`: `wire::{ToCoordinator, FromCoordinator, Control, ControlReply, ToParty, FromParty, StatusReport, QuerySpec}` | clients, coordinator, parties | here |
//! | notary control | `decode` of `roles::notary::{ToNotary, FromNotary}` | prover ↔ notary | here |
//! | MPC session header and ack | `read_frame(…, 16)` / `read_frame(…, 1)` in `net::mesh` (16-byte session id, ack `[1]`) | peer parties | here (frames) |
//! | MPC round payloads | `read_frame(…, MAX_MPC_FRAME)` in `net::session`, then `Ring::decode_vec` (`Z64`, `Z128`, `Z256`), `verify::gf64::Gf64::decode_vec`, `verify::galois::Gr::decode_vec` | peer parties | here |
//! | proof files | `oracle::proof::Proof::decode` / `Proof::read` | provider's disk | here |
//! | attestations | `oracle::attestation::Attestation::decode`, `attestation::verify`, `SignedAttestation::verify` | coordinator, parties (from clients) | here |
//! | notary key file | `oracle::attestation::NotaryKey::from_bytes` / `load` | notary's disk | `fuzz_inputs.rs` |
//! | TLS records | `oracle::tls13::parse_records`, `InnerPlaintext::parse`, `HandshakeReader` | server bytes relayed by the notary | `fuzz_oracle.rs` |
//! | TLS 1.3 / 1.2 handshakes | `oracle::handshake::verify` (hellos, certificate chain, CertificateVerify, Finished; 1.2 via `handshake12`) | notary | `fuzz_oracle.rs` |
//! | records the parties decrypt | `oracle::mpc::gcm::parse` | parties (from the provider) | `fuzz_oracle.rs` |
//! | HTTP response | `oracle::template::http::parse_response`, `Response::map` / `unmap` | parties, prover | `fuzz_oracle.rs` |
//! | JSON body and window | `template::json::{parse_path, check_window, find_window, lookup}`, `Template::{check_response, locate}`, `template::value::check_value_text` | parties, prover | `fuzz_oracle.rs` |
//! | request layout | `Template::request_layout` (declared parameter lengths) | parties | `fuzz_oracle.rs` |
//! | `cluster.toml` | `toml::from_str::<config::Cluster>` + `Cluster::validate` (`Cluster::load`) | every role's disk | `fuzz_inputs.rs` |
//! | PEM identity, roots | `net::Identity::from_pem` / `load`, `oracle::handshake::roots_from_pem` (`--extra-root`) | server roles' disk | `fuzz_inputs.rs` |
//! | API key file | `oracle::signing::ApiKey::load` (TOML, size and mode checked first) | provider's disk | `fuzz_inputs.rs` (as TOML) |
//! | statistic requests | `stats::Stat::parse`, `stats::Query::new` (param, edges, `stats::filter::Filter::parse`), `decimal::parse`, `Dataset::parse_value` | coordinator, parties, REST API | `fuzz_inputs.rs` |
//! | REST query strings | `api::rest` (axum `Query<HashMap>` → `QuerySpec` → `Query::new`) | the API's HTTP clients | `fuzz_inputs.rs` (through `Query::new`) |
//!
//! Not decoders of untrusted input: `roles::prove::request::parse_url` and
//! `roles::notary::parse_resolve` (command-line arguments), `oracle::sources::Head::parse`
//! (the example servers' own request parsing).

mod fuzz_common;

use std::time::Instant;

use fuzz_common::{apply_all, largest_allocation, mutations, Counting};
use mpcstats::engine::verify::galois::{Gr, D};
use mpcstats::engine::verify::gf64::Gf64;
use mpcstats::engine::{Ring, Security, Z128, Z256, Z64};
use mpcstats::net::frame::{
    decode, encode, read_frame, recv_msg, FrameError, HEADER_LEN, MAX_CONTROL_FRAME,
    MAX_DECODE_CLAIM,
};
use mpcstats::net::MAX_MPC_FRAME;
use mpcstats::oracle::attestation::{
    self, Attestation, AttestedRecord, Direction, NotaryKey, SignedAttestation, TLS13,
};
use mpcstats::oracle::proof::{ByteRange, Declaration, Proof, MAX_PROOF_LEN};
use mpcstats::oracle::tls13::TrafficKeys;
use mpcstats::roles::notary::{FromNotary, ToNotary};
use mpcstats::wire::*;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Largest buffer a decode of a control frame may allocate: bincode's claim limit plus the
/// slack of serde's capped pre-allocation of sequences (1 MiB).
const DECODE_ALLOC_BOUND: usize = MAX_DECODE_CLAIM + (1 << 20);

fn key() -> &'static NotaryKey {
    static KEY: std::sync::OnceLock<NotaryKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| NotaryKey::generate().unwrap())
}

fn sample_attestation() -> Attestation {
    Attestation {
        notary_key_id: key().key_id(),
        server_name: "api.exchange.test".into(),
        port: 443,
        tls_version: TLS13,
        time: 1_760_000_000,
        transcript_hash: [7; 32],
        records: vec![
            AttestedRecord::of(Direction::ClientToServer, 0, b"request"),
            AttestedRecord::of(Direction::ServerToClient, 0, b"response 1"),
            AttestedRecord::of(Direction::ServerToClient, 1, b"response 2"),
        ],
    }
}

fn signed() -> SignedAttestation {
    sample_attestation().sign(key().key_pair()).unwrap()
}

fn spec() -> QuerySpec {
    QuerySpec {
        dataset: "eth_balance".into(),
        stat: "histogram".into(),
        population: true,
        param: Some("0.5".into()),
        edges: vec!["1".into(), "10.5".into()],
        filter: Some(">= 0.5".into()),
    }
}

fn submission() -> ProvenSubmission {
    ProvenSubmission {
        contribution: [1; 16],
        ticket: [2; 32],
        attestation: signed(),
        template_hash: [3; 32],
        params: vec![13, 64],
        client_records: vec![vec![23, 3, 3, 0, 2, 9, 9], vec![]],
        server_records: vec![vec![23, 3, 3, 0, 1, 5]],
        client_iv: [4; 12],
        server_iv: [5; 12],
        value: (10, 20),
        client_key: ([6; 16], [7; 16]),
        server_key: ([8; 16], [9; 16]),
    }
}

/// One valid encoding per variant of every wire message, with its decoder.
type Check = fn(&[u8]) -> Result<Vec<u8>, FrameError>;

fn round<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    decode::<T>(bytes).map(|m| encode(&m))
}

fn samples() -> Vec<(&'static str, Vec<u8>, Check)> {
    let t = |name, bytes, check: Check| (name, bytes, check);
    vec![
        t(
            "ToCoordinator::ShareIntent",
            encode(&ToCoordinator::ShareIntent {
                dataset: "eth_balance".into(),
                ticket_hash: [9; 32],
            }),
            round::<ToCoordinator>,
        ),
        t(
            "ToCoordinator::ProvenIntent",
            encode(&ToCoordinator::ProvenIntent {
                dataset: "exchange_eth".into(),
                attestation: signed(),
                ticket_hash: [1; 32],
            }),
            round::<ToCoordinator>,
        ),
        t(
            "ToCoordinator::Query",
            encode(&ToCoordinator::Query {
                spec: spec(),
                result_hash: [4; 32],
            }),
            round::<ToCoordinator>,
        ),
        t(
            "FromCoordinator::QueryStarted",
            encode(&FromCoordinator::QueryStarted {
                session: [3; 16],
                count: 1 << 40,
                epoch: 12,
            }),
            round::<FromCoordinator>,
        ),
        t(
            "FromCoordinator::Status",
            encode(&FromCoordinator::Status(Box::new(StatusReport {
                datasets: vec![("a".into(), 1), ("bb".into(), u64::MAX)],
                parties_reachable: [true, false, true],
                fingerprint: [2; 32],
                party_fingerprints: [Some([3; 32]), None, Some([4; 32])],
                version: "0.1.0".into(),
                party_versions: [Some("0.1.0".into()), None, Some("0.2.0".into())],
                closed_epochs: vec![0, u64::MAX / 10],
                load: Load {
                    contributions_waiting: 7,
                    contributions_in_progress: 2,
                    queries_waiting: u32::MAX,
                    queries_in_progress: 1,
                },
                party_sessions: [Some(3), None, Some(0)],
            }))),
            round::<FromCoordinator>,
        ),
        t(
            "ToCoordinator::Outcome",
            encode(&ToCoordinator::Outcome {
                contribution: [9; 16],
            }),
            round::<ToCoordinator>,
        ),
        t(
            "FromCoordinator::Outcome",
            encode(&FromCoordinator::Outcome(
                mpcstats::wire::ContributionOutcome::Committed {
                    dataset: "exchange_eth".into(),
                    count: u64::MAX,
                },
            )),
            round::<FromCoordinator>,
        ),
        t(
            "FromCoordinator::Busy",
            encode(&FromCoordinator::Busy {
                retry_after_secs: u32::MAX,
            }),
            round::<FromCoordinator>,
        ),
        t(
            "FromCoordinator::Queued",
            encode(&FromCoordinator::Queued { position: 1 }),
            round::<FromCoordinator>,
        ),
        t(
            "ControlReply::Received",
            encode(&ControlReply::Received),
            round::<ControlReply>,
        ),
        t(
            "FromCoordinator::Refused",
            encode(&FromCoordinator::Refused {
                reason: "below min_cohort".into(),
            }),
            round::<FromCoordinator>,
        ),
        t(
            "Control::Expect",
            encode(&Control::Expect {
                contribution: [5; 16],
                dataset: "exchange_eth".into(),
                ticket_hash: [6; 32],
                attestation: Some([7; 32]),
            }),
            round::<Control>,
        ),
        t(
            "Control::RunQuery",
            encode(&Control::RunQuery {
                session: [8; 16],
                spec: spec(),
                epoch: 3,
                ticket_hash: [9; 32],
            }),
            round::<Control>,
        ),
        t(
            "ControlReply::Status",
            encode(&ControlReply::Status {
                committed: vec![("eth_balance".into(), 99)],
                sessions: 4,
            }),
            round::<ControlReply>,
        ),
        t(
            "ControlReply::Hello",
            encode(&ControlReply::Hello {
                fingerprint: [6; 32],
                version: "0.1.0".into(),
            }),
            round::<ControlReply>,
        ),
        t(
            "ToParty::Submit",
            encode(&ToParty::Submit {
                contribution: [1; 16],
                ticket: [2; 32],
                a: u128::MAX,
                b: 1 << 100,
            }),
            round::<ToParty>,
        ),
        t(
            "ToParty::SubmitProven",
            encode(&ToParty::SubmitProven(Box::new(submission()))),
            round::<ToParty>,
        ),
        t(
            "FromParty::Result",
            encode(&FromParty::Result {
                count: 10,
                epoch: 1,
                pairs: vec![(1, 2), (u128::MAX, 0)],
                spent: Some(3),
                security: Security::SemiHonest,
            }),
            round::<FromParty>,
        ),
        t(
            "ToNotary::Connect",
            encode(&ToNotary::Connect {
                server_name: "api.exchange.test".into(),
                port: 8443,
            }),
            round::<ToNotary>,
        ),
        t(
            "ToNotary::Reveal",
            encode(&ToNotary::Reveal {
                server_handshake_secret: vec![0x5a; 32],
            }),
            round::<ToNotary>,
        ),
        t(
            "FromNotary::Attested",
            encode(&FromNotary::Attested(signed())),
            round::<FromNotary>,
        ),
    ]
}

/// Every decoder, for arbitrary bytes.
fn decoders() -> Vec<Check> {
    vec![
        round::<ToCoordinator>,
        round::<FromCoordinator>,
        round::<Control>,
        round::<ControlReply>,
        round::<ToParty>,
        round::<FromParty>,
        round::<StatusReport>,
        round::<QuerySpec>,
        round::<ToNotary>,
        round::<FromNotary>,
    ]
}

#[test]
fn every_sample_round_trips() {
    for (name, bytes, check) in samples() {
        assert_eq!(check(&bytes).unwrap(), bytes, "{name}");
    }
}

/// The regression test of the decode limit: a string length prefix of 2^60 (and of 2^40,
/// which an allocator may try to satisfy) inside a frame of a few bytes. Without the limit
/// bincode allocated the string's buffer from the prefix and the process aborted.
#[test]
fn huge_string_and_vec_prefixes_fail_fast_without_allocating() {
    for huge in [1u64 << 60, 1 << 40, (MAX_DECODE_CLAIM + 1) as u64, u64::MAX] {
        let mut prefix = vec![0xfd];
        prefix.extend_from_slice(&huge.to_le_bytes());
        // ToCoordinator::ShareIntent { dataset: <huge>, .. }
        let share_intent = [&[0u8][..], &prefix, b"eth"].concat();
        // ToParty::SubmitProven: contribution, ticket, then the attestation's body length.
        let proven = [&[2u8][..], &[0; 48], &prefix, &[1; 10]].concat();
        // FromParty::Result { pairs: <huge> }
        let pairs = [&[1u8, 10, 1][..], &prefix, &[0; 6]].concat();
        // ToNotary::Reveal { secret: <huge> }
        let reveal = [&[1u8][..], &prefix, &[0; 3]].concat();
        let cases: [(&[u8], Check); 4] = [
            (&share_intent, round::<ToCoordinator>),
            (&proven, round::<ToParty>),
            (&pairs, round::<FromParty>),
            (&reveal, round::<ToNotary>),
        ];
        for (bytes, check) in cases {
            let start = Instant::now();
            let (result, largest) = largest_allocation(|| check(bytes));
            assert!(
                matches!(result, Err(FrameError::Decode(_))),
                "prefix {huge}: {result:?}"
            );
            assert!(largest <= DECODE_ALLOC_BOUND, "prefix {huge}: {largest} B");
            assert!(start.elapsed().as_secs() < 5, "prefix {huge}: slow refusal");
        }
    }
}

/// At the claim limit a string prefix is claimed and fails for want of bytes; one above it is
/// refused by the limit itself, before any buffer exists.
#[test]
fn decode_claim_limit_exactly() {
    let intent = |len: u64| {
        let mut b = vec![0u8, 0xfd];
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(b"x");
        b
    };
    // The variant index claims 4 bytes, the length 8: a string of MAX − 12 bytes fits.
    let at = intent((MAX_DECODE_CLAIM - 12) as u64);
    let (r, largest) = largest_allocation(|| decode::<ToCoordinator>(&at));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("UnexpectedEnd"), "{e}");
    assert!((MAX_DECODE_CLAIM - 12..=DECODE_ALLOC_BOUND).contains(&largest));
    let above = intent((MAX_DECODE_CLAIM - 11) as u64);
    let (r, largest) = largest_allocation(|| decode::<ToCoordinator>(&above));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("LimitExceeded"), "{e}");
    assert!(
        largest < 1 << 16,
        "{largest} B allocated for a refused prefix"
    );
}

/// The densest valid message (share pairs of one varint byte each claim 16 bytes per byte)
/// at exactly the frame limit still decodes; one byte more is refused as too large.
#[test]
fn full_frame_of_share_pairs_decodes_at_the_limit() {
    let msg = |n: usize, spent: Option<u32>| FromParty::Result {
        count: 1,
        epoch: 1,
        pairs: vec![(0, 0); n],
        spent,
        security: Security::Malicious,
    };
    // 1 (variant) + 1 + 1 + 5 (length) + 2n + 1 (None) + 1 (security) = 10 + 2n.
    let n = (MAX_CONTROL_FRAME - 10) / 2;
    let bytes = encode(&msg(n, None));
    assert_eq!(bytes.len(), MAX_CONTROL_FRAME);
    let back: FromParty = decode(&bytes).unwrap();
    assert!(matches!(back, FromParty::Result { pairs, .. } if pairs.len() == n));
    let over = encode(&msg(n, Some(1)));
    assert_eq!(over.len(), MAX_CONTROL_FRAME + 1);
    assert!(matches!(
        decode::<FromParty>(&over),
        Err(FrameError::TooLarge { len, max: MAX_CONTROL_FRAME }) if len == MAX_CONTROL_FRAME + 1
    ));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// What `read_frame` must return for `stream` under `max`, computed from the format alone.
fn expected_frame(stream: &[u8], max: usize) -> Result<Vec<u8>, &'static str> {
    if stream.is_empty() {
        return Err("closed");
    }
    if stream.len() < HEADER_LEN {
        return Err("truncated");
    }
    let len = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
    if len > max {
        return Err("too large");
    }
    stream
        .get(HEADER_LEN..HEADER_LEN + len)
        .map(<[u8]>::to_vec)
        .ok_or("truncated")
}

fn kind(r: &Result<Vec<u8>, FrameError>) -> Result<Vec<u8>, &'static str> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(FrameError::Closed) => Err("closed"),
        Err(FrameError::Truncated) => Err("truncated"),
        Err(FrameError::TooLarge { .. }) => Err("too large"),
        Err(e) => panic!("unexpected frame error {e}"),
    }
}

/// A frame header at exactly the limit is read; at limit + 1 it is refused before a byte of
/// the body is read or allocated, for each limit the roles use (the session header, the
/// acknowledgement, control frames and MPC frames).
#[test]
fn frame_limits_exactly() {
    let rt = rt();
    for max in [1usize, 16, MAX_CONTROL_FRAME, MAX_MPC_FRAME] {
        // Limit + 1, with no body at all: refused from the header alone.
        let header = ((max + 1) as u32).to_be_bytes();
        let (r, largest) = largest_allocation(|| rt.block_on(read_frame(&mut &header[..], max)));
        assert!(
            matches!(r, Err(FrameError::TooLarge { len, max: m }) if len == max + 1 && m == max)
        );
        assert!(largest < 1 << 16, "{largest} B for a refused header");
        if max <= MAX_CONTROL_FRAME {
            let mut stream = (max as u32).to_be_bytes().to_vec();
            stream.extend((0..max).map(|i| i as u8));
            let got = rt.block_on(read_frame(&mut &stream[..], max)).unwrap();
            assert_eq!(got, stream[HEADER_LEN..]);
        } else {
            // At the MPC limit (1 GiB) with 10 bytes of body: the buffer grows with the bytes
            // that arrive, not with the announced length.
            let mut stream = (max as u32).to_be_bytes().to_vec();
            stream.extend([1u8; 10]);
            let (r, largest) =
                largest_allocation(|| rt.block_on(read_frame(&mut &stream[..], max)));
            assert!(matches!(r, Err(FrameError::Truncated)));
            assert!(largest <= 2 << 20, "{largest} B for a 10-byte body");
        }
    }
    // 4 GiB − 1 announced.
    let r = rt.block_on(read_frame(&mut &u32::MAX.to_be_bytes()[..], MAX_MPC_FRAME));
    assert!(matches!(r, Err(FrameError::TooLarge { .. })));
}

/// The records of the sample proof file.
fn sample_proof() -> Proof {
    Proof {
        attestation: signed(),
        dataset: "exchange_eth".into(),
        template_hash: [3; 32],
        client_records: vec![vec![23, 3, 3, 0, 3, 1, 2, 3]],
        server_records: vec![vec![23, 3, 3, 0, 2, 4, 5], vec![23, 3, 3, 0, 1, 6]],
        client_keys: TrafficKeys {
            key: [1; 16],
            iv: [2; 12],
        },
        server_keys: TrafficKeys {
            key: [3; 16],
            iv: [4; 12],
        },
        declaration: Declaration {
            value: ByteRange { start: 3, end: 9 },
            params: vec![13],
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(30000))]

    /// Arbitrary bytes: no decoder panics or allocates beyond the bound, and whatever one
    /// accepts re-encodes to a message that decodes to itself.
    #[test]
    fn wire_decoders_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for check in decoders() {
            let (r, largest) = largest_allocation(|| check(&bytes));
            prop_assert!(largest <= DECODE_ALLOC_BOUND);
            if let Ok(again) = r {
                prop_assert_eq!(check(&again).unwrap(), again);
            }
        }
    }

    /// Mutated valid encodings: truncations and appended bytes are always refused (bincode's
    /// encoding is prefix-free and trailing bytes are refused); every other mutation is
    /// refused or decodes to a message that round-trips; nothing allocates beyond the bound.
    #[test]
    fn wire_decoders_on_mutated_messages(which in any::<prop::sample::Index>(), ms in mutations()) {
        let all = samples();
        let (name, valid, check) = &all[which.index(all.len())];
        let bytes = apply_all(valid, &ms);
        let (r, largest) = largest_allocation(|| check(&bytes));
        prop_assert!(largest <= DECODE_ALLOC_BOUND, "{}: {} B", name, largest);
        if bytes.len() < valid.len() && valid.starts_with(&bytes) {
            prop_assert!(r.is_err(), "{} truncated to {} bytes decoded", name, bytes.len());
        }
        if bytes.len() > valid.len() && bytes.starts_with(valid) {
            prop_assert!(r.is_err(), "{} with trailing bytes decoded", name);
        }
        if bytes == *valid {
            prop_assert_eq!(r.unwrap(), valid.clone());
        } else if let Ok(again) = r {
            prop_assert_eq!(check(&again).unwrap(), again);
        }
    }

    /// recv_msg over any stream: the frame layer's verdict first, then the decoder's.
    #[test]
    fn read_frame_matches_the_format(stream in prop::collection::vec(any::<u8>(), 0..64), max in 0usize..40) {
        let rt = rt();
        let got = rt.block_on(read_frame(&mut &stream[..], max));
        prop_assert_eq!(kind(&got), expected_frame(&stream, max));
        let msg = rt.block_on(recv_msg::<_, ToNotary>(&mut &stream[..], max));
        match expected_frame(&stream, max) {
            Ok(payload) => match decode::<ToNotary>(&payload) {
                Ok(m) => prop_assert_eq!(msg.unwrap(), m),
                Err(_) => prop_assert!(matches!(msg, Err(FrameError::Decode(_)))),
            },
            Err(_) => prop_assert!(msg.is_err()),
        }
    }

    /// A valid framed message with its header rewritten: exactly the frame layer's verdict.
    #[test]
    fn framed_message_with_mutated_header(len in any::<u32>(), ms in mutations()) {
        let payload = encode(&ToNotary::Connect { server_name: "api.exchange.test".into(), port: 443 });
        let mut stream = len.to_be_bytes().to_vec();
        stream.extend_from_slice(&payload);
        let stream = apply_all(&stream, &ms);
        let rt = rt();
        let (got, largest) =
            largest_allocation(|| rt.block_on(read_frame(&mut &stream[..], MAX_MPC_FRAME)));
        prop_assert!(largest <= 2 << 20);
        prop_assert_eq!(kind(&got), expected_frame(&stream, MAX_MPC_FRAME));
    }

    /// The MPC payload decoders accept exactly n elements of their width, and decode what
    /// they encode.
    #[test]
    fn mpc_payload_decoders(bytes in prop::collection::vec(any::<u8>(), 0..300), n in prop_oneof![0usize..40, Just(usize::MAX), Just(usize::MAX / 8 + 1)]) {
        fn check<R: Ring>(bytes: &[u8], n: usize) -> Result<(), TestCaseError> {
            let got = R::decode_vec(bytes, n);
            prop_assert_eq!(got.is_some(), n.checked_mul(R::BYTES) == Some(bytes.len()));
            if let Some(v) = got {
                prop_assert_eq!(R::encode_slice(&v), bytes.to_vec());
            }
            Ok(())
        }
        check::<Z64>(&bytes, n)?;
        check::<Z128>(&bytes, n)?;
        check::<Z256>(&bytes, n)?;
        let g = Gf64::decode_vec(&bytes, n);
        prop_assert_eq!(g.is_some(), n.checked_mul(8) == Some(bytes.len()));
        let gr = Gr::<Z64>::decode_vec(&bytes, n);
        let width = D * Z64::BYTES;
        prop_assert_eq!(gr.is_some(), n.checked_mul(width) == Some(bytes.len()));
        if let Some(v) = gr {
            prop_assert_eq!(Gr::<Z64>::encode_slice(&v), bytes.clone());
        }
    }

    /// Attestation bodies: arbitrary bytes behind a valid header, and mutated valid bodies,
    /// are refused or decode to an attestation that encodes back to exactly the input (the
    /// encoding is canonical: no byte is ignored). A mutated signed attestation never
    /// verifies unless it is unchanged.
    #[test]
    fn attestations(tail in prop::collection::vec(any::<u8>(), 0..120), ms in mutations()) {
        let valid = sample_attestation().encode().unwrap();
        for bytes in [
            [&valid[..21], &tail].concat(),
            tail.clone(),
            apply_all(&valid, &ms),
        ] {
            let (r, largest) = largest_allocation(|| Attestation::decode(&bytes));
            prop_assert!(largest <= bytes.len() * 2 + 4096);
            if let Ok(a) = r {
                prop_assert_eq!(a.encode().unwrap(), bytes.clone());
            }
        }
        let s = signed();
        let body = apply_all(&s.body, &ms);
        let sig = apply_all(&s.signature, &ms);
        let public = key().public_key();
        for (b, g) in [(&body, &s.signature), (&s.body, &sig)] {
            let r = attestation::verify(b, g, &public);
            prop_assert_eq!(r.is_ok(), *b == s.body && *g == s.signature);
            let r = SignedAttestation { body: b.clone(), signature: g.clone() }.verify(&public);
            prop_assert_eq!(r.is_ok(), *b == s.body && *g == s.signature);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(15000))]

    /// Proof files: arbitrary bytes after the magic, and mutated valid files, are refused or
    /// decode to a proof that encodes back to the same bytes; a decode never allocates more
    /// than the proof file limit.
    #[test]
    fn proof_files(tail in prop::collection::vec(any::<u8>(), 0..300), ms in mutations()) {
        let valid = sample_proof().encode().unwrap();
        prop_assert_eq!(Proof::decode(&valid).unwrap(), sample_proof());
        let mutated = apply_all(&valid, &ms);
        for bytes in [[&valid[..10], &tail].concat(), tail.clone(), mutated.clone()] {
            let (r, largest) = largest_allocation(|| Proof::decode(&bytes));
            prop_assert!(largest <= MAX_PROOF_LEN + (1 << 20), "{} B", largest);
            match r {
                Ok(p) => prop_assert_eq!(Proof::decode(&p.encode().unwrap()).unwrap(), p),
                Err(e) => {
                    // Errors name the check, never the file's bytes (which hold keys).
                    let text = e.to_string();
                    prop_assert!(!text.contains("exchange_eth"), "{}", text);
                }
            }
        }
        if mutated.len() < valid.len() && valid.starts_with(&mutated) {
            prop_assert!(Proof::decode(&mutated).is_err());
        }
    }
}
