//! The three computation parties' check of a provider's proven TLS session, inside the MPC
//! (DESIGN.md §4, step 5): it turns the server's HTTPS response into an arithmetic share of
//! one number, and no party sees the request's hidden parts or the value.
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
//!    close_notify; a KeyUpdate is refused by name ([`inspect`]). In the same round every
//!    response byte outside the value window is opened.
//! 5. One circuit ([`circuit`]) evaluates every hidden check side by side and opens four
//!    verdict bits: the request head's fixed bytes equal the template's, the request is one
//!    request (no early blank line, no bare CR or LF), every hidden parameter value is safe
//!    ([`request`]), and the value window is a plain decimal ([`value`]). Nothing of the
//!    request is opened before the first verdict: a proof checked against another template
//!    reveals only that it does not fit.
//! 6. The public parameter values are opened.
//! 7. The window is parsed into Σ digit · 10^e with a secret point position ([`value`]).
//!
//! Every verdict is computed from opened values, so all three parties reach the same one.
//! What the parties learn beyond the opened bytes: the lengths of the records, hence of the
//! hidden headers, of each hidden parameter value and of the value's text. No error holds an
//! opened byte: each names the check that failed and where.
//!
//! Cost (measured by the tests and `cargo bench --bench oracle`, local transport): about 70
//! rounds whatever the size; the AES pass dominates everything else: 5,440 AND gates and
//! 680 bytes sent per party per 16-byte block.
//!
//! Layout: [`shared`] (shared byte strings, AND trees), [`circuit`] (lazily evaluated
//! circuits batched by AND depth), [`classes`] (byte-set membership), [`gcm`] (AES pass,
//! tags, plaintexts), [`inspect`] (content types, control records), [`request`] (the request
//! checks), [`value`] (the decimal check and parse), [`local`] (three parties in-process,
//! synthetic sessions and [`local::cost_of`] for benchmarks).

pub mod circuit;
pub mod classes;
pub mod gcm;
pub mod inspect;
pub mod local;
pub mod request;
pub mod shared;
pub mod value;

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
use crate::oracle::handshake::TlsVersion;

use crate::engine::binary::unpack;
use crate::oracle::template::request::is_safe_value;
use crate::oracle::template::value::{MAX_DIGITS_WITH_SCALE, MAX_VALUE_LEN};
use crate::oracle::template::{RequestLayout, Segment};

use circuit::Circuit;
use inspect::BLANK_LINE;
use shared::{open_bytes, SharedBytes};

/// Public inputs every party holds identically (from the provider's proof, minus the keys).
#[derive(Clone, Debug)]
pub struct PublicSession<'a> {
    /// The attested TLS version: it decides nonces, additional data and content types.
    pub version: TlsVersion,
    /// Whole records (5-byte header ‖ ciphertext ‖ tag), application-data phase, in order.
    pub client_records: &'a [Vec<u8>],
    pub server_records: &'a [Vec<u8>],
    pub client_iv: [u8; 12],
    pub server_iv: [u8; 12],
    /// The request head the template accepts, for the declared parameter lengths.
    pub request: &'a RequestLayout,
    /// The value window in the server's concatenated application data.
    pub value: Range<usize>,
    /// The most digits after the point the value text may have.
    pub decimals: u32,
    /// The dataset scale: digits beyond it are truncated.
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
    /// The public parameter values, opened (in template order), each checked safe.
    pub public_params: Vec<Vec<u8>>,
    /// Whether the server ended with a TLS close_notify (the response is complete by its
    /// own framing either way).
    pub close_notify: bool,
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
        "the request of {len} bytes cannot hold the template's {head}-byte request head and the final blank line"
    )]
    RequestTooShort { len: usize, head: usize },
    #[error("the request head does not match the template (method, path, a query parameter's name or fixed value, Host, or the final blank line)")]
    RequestHead,
    #[error("the request is not one request: a blank line before its end, or a bare CR or LF, in the hidden headers")]
    SecondRequest,
    #[error("a hidden query parameter value holds a byte outside the safe set (space, CR, LF, &, #, a control or non-ASCII byte, or % not followed by two hex digits)")]
    UnsafeHidden,
    #[error("public query parameter {index}: the value holds a byte outside the safe set")]
    UnsafePublic { index: usize },
    #[error("value window {start}..{end}: {reason}")]
    ValueWindow {
        start: usize,
        end: usize,
        reason: String,
    },
    #[error("the value window is not a plain decimal with at most {decimals} decimals (a non-digit, a sign or exponent, or the point misplaced)")]
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
    if len + p.scale as usize > MAX_DIGITS_WITH_SCALE {
        return Err(bad(format!(
            "{len} characters at scale {} exceed {MAX_DIGITS_WITH_SCALE} digits",
            p.scale
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
    let mut records = gcm::parse(
        p.version,
        Direction::ClientToServer,
        &p.client_iv,
        p.client_records,
    )?;
    records.extend(gcm::parse(
        p.version,
        Direction::ServerToClient,
        &p.server_iv,
        p.server_records,
    )?);
    check_key_pairs(s, keys).await?;
    let mut ands = 0u64;
    let records = gcm::decrypt(s, keys, records, &mut ands).await?;
    let types = match p.version {
        TlsVersion::Tls13 => inspect::content_types(s, &records).await?,
        // TLS 1.2 records carry their content type in the clear.
        TlsVersion::Tls12 => records.iter().map(|r| r.info.header[0]).collect(),
    };
    let streams = inspect::split(&records, &types, p.version)?;

    let (m, head) = (streams.request.len(), p.request.len());
    if m < head + BLANK_LINE.len() {
        return Err(VerifyError::RequestTooShort { len: m, head });
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

    // One round opens the control records and the response outside the window.
    let control: Vec<SharedBytes> = streams
        .control
        .iter()
        .map(|&k| inspect::content(&records[k], p.version))
        .collect::<Result<_, _>>()?;
    let outside = SharedBytes::concat(&[
        &streams.response.slice(0, value.start)?,
        &streams.response.slice(value.end, n - value.end)?,
    ]);
    let mut parts: Vec<&SharedBytes> = control.iter().collect();
    parts.push(&outside);
    let mut opened = open_bytes(s, &parts).await?;
    let outside = opened.pop().unwrap_or_default();
    let close_notify = inspect::check_control(&records, &types, &streams.control, &opened)?;

    // Every hidden check in one circuit; four verdict bits opened together.
    let window = streams.response.slice(value.start, value.len())?;
    let mut c = Circuit::new(s.id());
    let req = request::request_checks(&mut c, &streams.request, p.request)?;
    let val = value::value_checks(&mut c, &window, p.decimals)?;
    let verdict = c.concat(&[req.fixed_ok, req.one_request_ok, req.hidden_ok, val.ok]);
    let out = c.eval(s, &[verdict, val.points], &mut ands).await?;
    let bits = unpack(&s.open_bits(&out[0]).await?, 4);
    if !bits[0] {
        return Err(VerifyError::RequestHead);
    }
    if !bits[1] {
        return Err(VerifyError::SecondRequest);
    }
    if !bits[2] {
        return Err(VerifyError::UnsafeHidden);
    }
    if !bits[3] {
        return Err(VerifyError::NotADecimal {
            decimals: p.decimals,
        });
    }

    // Only now the public parameter values.
    let public: Vec<SharedBytes> = p
        .request
        .ranges(Segment::Public)
        .into_iter()
        .map(|r| streams.request.slice(r.start, r.len()))
        .collect::<Result<_, _>>()?;
    let public_params = if public.is_empty() {
        Vec::new()
    } else {
        open_bytes(s, &public.iter().collect::<Vec<_>>()).await?
    };
    if let Some(index) = public_params.iter().position(|v| !is_safe_value(v)) {
        return Err(VerifyError::UnsafePublic { index });
    }
    let parsed = value::parse(s, &window, &out[1], p.decimals, p.scale).await?;

    let mut response = outside[..value.start].to_vec();
    response.resize(value.end, b'0');
    response.extend_from_slice(&outside[value.start..]);
    Ok(Verified {
        public_params,
        close_notify,
        response,
        value: parsed,
        and_gates: ands,
    })
}
