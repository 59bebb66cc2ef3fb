//! The three computation parties' check of a provider's proven TLS 1.3 session, inside the
//! MPC (DESIGN.md §4, step 5): it turns the server's HTTPS response into an arithmetic share
//! of one number, and no party sees the request's hidden headers or the value.
//!
//! [`verify_session`] is what each party runs, on the public records and IVs of both
//! directions and its replicated shares of the two AES-128 keys:
//!
//! 1. Parse the records (one protected record per entry, outer type 23, ≥ 17 bytes).
//! 2. Check that the key shares fit together (neighbours compare a hash of the component they
//!    share; the verdicts are exchanged so all three agree).
//! 3. One AES pass under both keys for the GHASH keys H, every record's E_K(J0) and the CTR
//!    keystream of every record ([`gcm`]); open H and the E_K(J0) and check every tag in
//!    public (why that is safe is argued in [`gcm`]).
//! 4. Open the last byte of every record, its inner content type: padding is refused, server
//!    handshake records and alerts are opened whole and must be NewSessionTickets and a final
//!    close_notify; a KeyUpdate is refused by name ([`inspect`]).
//! 5. The request (client application data): its first `request_prefix.len()` bytes and its
//!    last 4 are opened and compared with the template's prefix and "\r\n\r\n"; the rest stays
//!    hidden, and an AND tree over every 4-byte window proves "\r\n\r\n" occurs nowhere else
//!    (one request, nothing smuggled in hidden headers).
//! 6. The response (server application data): every byte outside the value window is opened.
//! 7. The value window: checked to be a decimal with the template's decimals (one opened bit)
//!    and parsed into Σ digit · 10^e over the integer digits and the first `scale` decimals
//!    ([`digits`]).
//!
//! Every verdict is computed from opened values, so all three parties reach the same one.
//! What the parties learn beyond the opened bytes: the lengths of the records, hence of the
//! hidden headers and of the value's text.
//!
//! Cost (measured by the tests, local transport): 62 rounds whatever the size (1 seed, 2 key
//! check, 40 AES, 3 openings, 6 + ⌈log2⌉ for the hidden checks, 1 verdict, 2 B2A). The AES
//! pass dominates everything else: 5,440 AND gates and 680 bytes sent per party per 16-byte
//! block. A 1 KB response: 0.44 M AND gates, 58 KB sent per party; 4 KB: 1.48 M, 192 KB.
//!
//! Layout: [`shared`] (shared byte strings, AND trees), [`gcm`] (AES pass, tags,
//! plaintexts), [`inspect`] (content types, control records, the hidden checks), [`digits`]
//! (decimal literals, the parse), [`local`] (three parties in-process, synthetic sessions and
//! [`local::cost_of`] for benchmarks).

pub mod digits;
pub mod gcm;
pub mod inspect;
pub mod local;
pub mod shared;

#[cfg(test)]
mod tests;

use std::ops::Range;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::engine::error::EngineError;
use crate::engine::ring::Z128;
use crate::engine::session::{take, Session};
use crate::engine::share::Share;
use crate::engine::transport::{Expect, Outgoing, Peer, Transport};
use crate::oracle::attestation::Direction;

use inspect::BLANK_LINE;
use shared::{open_bytes, SharedBytes};

/// Longest value text accepted (10^30 < 2^100 fits Z_2^128 with room to add).
pub const MAX_VALUE_LEN: usize = 30;

/// Public inputs every party holds identically (from the provider's proof, minus the keys).
#[derive(Clone, Debug)]
pub struct PublicSession<'a> {
    /// Whole records (5-byte header ‖ ciphertext ‖ tag), application-data phase, in order.
    pub client_records: &'a [Vec<u8>],
    pub server_records: &'a [Vec<u8>],
    pub client_iv: [u8; 12],
    pub server_iv: [u8; 12],
    /// `Template::request_prefix()`: opened and compared.
    pub request_prefix: &'a [u8],
    /// The value window in the server's concatenated application data.
    pub value: Range<usize>,
    /// Digits after the point in the value text (0 = no point).
    pub decimals: u32,
    /// The dataset scale (≤ decimals): digits beyond it are truncated.
    pub scale: u32,
}

/// This party's XOR-replicated shares of the two AES-128 keys: (k_i, k_{i+1}) of
/// k = k_0 ⊕ k_1 ⊕ k_2.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPairs {
    pub client: ([u8; 16], [u8; 16]),
    pub server: ([u8; 16], [u8; 16]),
}

impl std::fmt::Debug for KeyPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPairs(..)")
    }
}

/// What a successful check yields.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Opened (equal to `PublicSession::request_prefix`, already checked).
    pub request_prefix: Vec<u8>,
    /// The server's application data, opened, with the value window's bytes set to b'0'.
    pub response: Vec<u8>,
    /// The parsed value × 10^scale (digits beyond the scale truncated).
    pub value: Share<Z128>,
    /// Boolean AND gates evaluated (AES, the checks), for the benchmark.
    pub and_gates: u64,
}

fn side(d: &Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "client→server",
        Direction::ServerToClient => "server→client",
    }
}

/// Why a session was refused. Each variant names the failed check.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("MPC engine: {0}")]
    Engine(#[from] EngineError),
    #[error("{} record {seq}: malformed: {reason}", side(.direction))]
    MalformedRecord {
        direction: Direction,
        seq: u64,
        reason: String,
    },
    #[error("the provider's key shares do not fit together (a party's copy of a component differs from its neighbour's)")]
    KeySharesInconsistent,
    #[error("{} record {seq}: tag mismatch (wrong key, or an altered record)", side(.direction))]
    TagMismatch { direction: Direction, seq: u64 },
    #[error("{} record {seq}: padded inner plaintext is refused", side(.direction))]
    Padding { direction: Direction, seq: u64 },
    #[error("server KeyUpdate in the session (server record {seq})")]
    KeyUpdate { seq: u64 },
    #[error("{} record {seq}: {what} is refused", side(.direction))]
    Refused {
        direction: Direction,
        seq: u64,
        what: String,
    },
    #[error(
        "the request of {len} bytes cannot hold the {prefix}-byte prefix and the final blank line"
    )]
    RequestTooShort { len: usize, prefix: usize },
    #[error("request prefix mismatch: expected {expected:?}, found {found:?}")]
    RequestPrefix { expected: String, found: String },
    #[error("the request does not end with a blank line (\\r\\n\\r\\n): found {found:?}")]
    RequestEnd { found: String },
    #[error("second request: \\r\\n\\r\\n occurs in the hidden part of the request")]
    SecondRequest,
    #[error("value window {start}..{end}: {reason}")]
    ValueWindow {
        start: usize,
        end: usize,
        reason: String,
    },
    #[error("the value window is not a decimal with {decimals} decimals (a non-digit, or the point misplaced)")]
    NotADecimal { decimals: u32 },
}

/// The public checks of the value window's parameters, before any MPC.
fn check_window_params(p: &PublicSession<'_>) -> Result<(), VerifyError> {
    let bad = |reason: String| VerifyError::ValueWindow {
        start: p.value.start,
        end: p.value.end,
        reason,
    };
    let len = p.value.end.saturating_sub(p.value.start);
    if p.value.start >= p.value.end || len > MAX_VALUE_LEN {
        return Err(bad(format!("length must be 1..={MAX_VALUE_LEN}")));
    }
    if p.scale > p.decimals {
        return Err(bad(format!(
            "scale {} above the template's {} decimals",
            p.scale, p.decimals
        )));
    }
    if p.decimals > 0 && len < p.decimals as usize + 2 {
        return Err(bad(format!(
            "{len} bytes cannot hold an integer digit, a point and {} decimals",
            p.decimals
        )));
    }
    Ok(())
}

/// The hash a party sends its next neighbour of the key components they share.
fn component_digest(a: &[u8; 16], b: &[u8; 16]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"mpcstats oracle key component");
    h.update(a);
    h.update(b);
    h.finalize().to_vec()
}

/// Checks that the provider's pairs form one sharing: party i sends party i + 1 a hash of
/// k_{i+1} (which both hold, so nothing leaks) and each compares it with its own; then the
/// three verdicts are exchanged, so all three parties agree. Two rounds.
async fn check_key_pairs<T: Transport>(
    s: &mut Session<T>,
    keys: &KeyPairs,
) -> Result<(), VerifyError> {
    let mine = component_digest(&keys.client.1, &keys.server.1);
    let out = Outgoing {
        next: Some(mine),
        prev: None,
    };
    let inc = s
        .exchange(
            out,
            Expect {
                next: false,
                prev: true,
            },
        )
        .await?;
    let theirs = take(inc.prev, Peer::Prev)?;
    let ok = theirs == component_digest(&keys.client.0, &keys.server.0);
    let verdict = vec![ok as u8];
    let out = Outgoing {
        next: Some(verdict.clone()),
        prev: Some(verdict),
    };
    let inc = s
        .exchange(
            out,
            Expect {
                next: true,
                prev: true,
            },
        )
        .await?;
    let all = [
        ok,
        take(inc.next, Peer::Next)? == [1],
        take(inc.prev, Peer::Prev)? == [1],
    ];
    if all.iter().all(|&b| b) {
        Ok(())
    } else {
        Err(VerifyError::KeySharesInconsistent)
    }
}

/// Runs the whole check as one party. All three parties must call it with the same
/// [`PublicSession`] and their own [`KeyPairs`]; they return the same verdict.
pub async fn verify_session<T: Transport>(
    s: &mut Session<T>,
    p: &PublicSession<'_>,
    keys: &KeyPairs,
) -> Result<Verified, VerifyError> {
    check_window_params(p)?;
    let mut records = gcm::parse(Direction::ClientToServer, p.client_records)?;
    records.extend(gcm::parse(Direction::ServerToClient, p.server_records)?);
    check_key_pairs(s, keys).await?;
    let mut ands = 0u64;
    let records = gcm::decrypt(s, p, keys, records, &mut ands).await?;
    let types = inspect::content_types(s, &records).await?;
    let streams = inspect::split(&records, &types)?;

    let (m, plen) = (streams.request.len(), p.request_prefix.len());
    if m < plen + BLANK_LINE.len() {
        return Err(VerifyError::RequestTooShort {
            len: m,
            prefix: plen,
        });
    }
    let n = streams.response.len();
    let value = p.value.clone();
    if value.end > n {
        return Err(VerifyError::ValueWindow {
            start: value.start,
            end: value.end,
            reason: format!("beyond the {n}-byte response"),
        });
    }

    // One round opens the control records, the request's prefix and end, and the response
    // outside the window.
    let control: Vec<SharedBytes> = streams
        .control
        .iter()
        .map(|&k| {
            let pt = &records[k].plaintext;
            pt.slice(0, pt.len() - 1)
        })
        .collect::<Result<_, _>>()?;
    let prefix = streams.request.slice(0, plen)?;
    let tail = streams
        .request
        .slice(m - BLANK_LINE.len(), BLANK_LINE.len())?;
    let outside = SharedBytes::concat(&[
        &streams.response.slice(0, value.start)?,
        &streams.response.slice(value.end, n - value.end)?,
    ]);
    let mut parts: Vec<&SharedBytes> = control.iter().collect();
    parts.extend([&prefix, &tail, &outside]);
    let mut opened = open_bytes(s, &parts).await?;
    let outside = opened.pop().unwrap_or_default();
    let tail = opened.pop().unwrap_or_default();
    let prefix = opened.pop().unwrap_or_default();
    inspect::check_control(&records, &types, &streams.control, &opened)?;
    if prefix != p.request_prefix {
        return Err(VerifyError::RequestPrefix {
            expected: String::from_utf8_lossy(p.request_prefix).into(),
            found: String::from_utf8_lossy(&prefix).into(),
        });
    }
    if tail != BLANK_LINE {
        return Err(VerifyError::RequestEnd {
            found: String::from_utf8_lossy(&tail).into(),
        });
    }

    let window = streams.response.slice(value.start, value.len())?;
    let (one_request, decimal) =
        inspect::hidden_checks(s, &streams.request, &window, p.decimals, &mut ands).await?;
    if !one_request {
        return Err(VerifyError::SecondRequest);
    }
    if !decimal {
        return Err(VerifyError::NotADecimal {
            decimals: p.decimals,
        });
    }
    let parsed = digits::value(s, &window, p.decimals, p.scale).await?;

    let mut response = outside[..value.start].to_vec();
    response.resize(value.end, b'0');
    response.extend_from_slice(&outside[value.start..]);
    Ok(Verified {
        request_prefix: prefix,
        response,
        value: parsed,
        and_gates: ands,
    })
}
