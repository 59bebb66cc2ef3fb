//! What the records hold: content types (opened), handshake and alert records (opened and
//! checked as `proof::decrypt_application_data` does, padding refused), the request and the
//! response as shared strings, and the two hidden checks: no second request in the hidden
//! headers, and a decimal in the value window.

use crate::engine::binary::{pack, BitShares};
use crate::engine::session::Session;
use crate::engine::transport::Transport;
use crate::oracle::attestation::Direction;
use crate::oracle::tls13::{
    HandshakeReader, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE,
};

use super::digits;
use super::gcm::SharedRecord;
use super::shared::{and_across, and_groups, open_bytes, SharedBytes};
use super::VerifyError;

/// HandshakeType.new_session_ticket: allowed after the handshake, and ignored.
const HS_NEW_SESSION_TICKET: u8 = 4;
/// HandshakeType.key_update: refused.
const HS_KEY_UPDATE: u8 = 24;
/// The end of an HTTP/1.1 request head.
pub const BLANK_LINE: &[u8; 4] = b"\r\n\r\n";

/// Opens the last byte of every record (its inner content type) in one round.
pub async fn content_types<T: Transport>(
    s: &mut Session<T>,
    records: &[SharedRecord],
) -> Result<Vec<u8>, VerifyError> {
    let last: Vec<SharedBytes> = records
        .iter()
        .map(|r| r.plaintext.slice(r.plaintext.len() - 1, 1))
        .collect::<Result<_, _>>()?;
    let opened = open_bytes(s, &last.iter().collect::<Vec<_>>()).await?;
    Ok(opened.into_iter().map(|b| b[0]).collect())
}

/// The shared application data of each direction, and which records must be opened whole.
pub struct Streams {
    pub request: SharedBytes,
    pub response: SharedBytes,
    /// Indices of the handshake and alert records, opened (content without the type byte).
    pub control: Vec<usize>,
}

/// Sorts the records by content type: application data joins its direction's stream,
/// handshake (server only) and alert records are to be opened; padding and anything else are
/// refused.
pub fn split(records: &[SharedRecord], types: &[u8]) -> Result<Streams, VerifyError> {
    let mut request = Vec::new();
    let mut response = Vec::new();
    let mut control = Vec::new();
    for (k, (r, &ty)) in records.iter().zip(types).enumerate() {
        let (direction, seq) = (r.info.direction, r.info.seq);
        let content = r.plaintext.slice(0, r.plaintext.len() - 1)?;
        match (ty, direction) {
            (0, _) => return Err(VerifyError::Padding { direction, seq }),
            (CONTENT_APPLICATION_DATA, Direction::ClientToServer) => request.push(content),
            (CONTENT_APPLICATION_DATA, Direction::ServerToClient) => response.push(content),
            (CONTENT_HANDSHAKE, Direction::ClientToServer) => {
                return Err(VerifyError::Refused {
                    direction,
                    seq,
                    what: "a client handshake message".into(),
                })
            }
            (CONTENT_HANDSHAKE | CONTENT_ALERT, _) => control.push(k),
            (other, _) => {
                return Err(VerifyError::Refused {
                    direction,
                    seq,
                    what: format!("inner content type {other}"),
                })
            }
        }
    }
    Ok(Streams {
        request: SharedBytes::concat(&request.iter().collect::<Vec<_>>()),
        response: SharedBytes::concat(&response.iter().collect::<Vec<_>>()),
        control,
    })
}

/// Checks the record sequence of each direction given the opened handshake and alert
/// contents (`opened[k]` for record k in `control`): NewSessionTicket only, no KeyUpdate,
/// close_notify as the only alert and nothing after it.
pub fn check_control(
    records: &[SharedRecord],
    types: &[u8],
    control: &[usize],
    opened: &[Vec<u8>],
) -> Result<(), VerifyError> {
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        let mut closed = false;
        let mut reader = HandshakeReader::new();
        let mut last_seq = 0;
        for (k, r) in records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.info.direction == direction)
        {
            let seq = r.info.seq;
            last_seq = seq + 1;
            let refused = |what: String| VerifyError::Refused {
                direction,
                seq,
                what,
            };
            if closed {
                return Err(refused("a record after close_notify".into()));
            }
            let content = || {
                control
                    .iter()
                    .position(|&c| c == k)
                    .map(|i| opened[i].as_slice())
                    .ok_or_else(|| VerifyError::Engine(invalid("control record not opened")))
            };
            match types[k] {
                CONTENT_HANDSHAKE => {
                    reader.push(content()?);
                    while let Some(msg) = reader
                        .next_message()
                        .map_err(|e| refused(format!("a malformed handshake message: {e}")))?
                    {
                        match msg.msg_type {
                            HS_NEW_SESSION_TICKET => {}
                            HS_KEY_UPDATE => return Err(VerifyError::KeyUpdate { seq }),
                            t => return Err(refused(format!("handshake message type {t}"))),
                        }
                    }
                }
                CONTENT_ALERT => match content()? {
                    [1, 0] => closed = true,
                    other => return Err(refused(format!("alert {other:?}"))),
                },
                _ => {}
            }
        }
        if reader.has_partial() {
            return Err(VerifyError::Refused {
                direction,
                seq: last_seq,
                what: "an unfinished handshake message".into(),
            });
        }
    }
    Ok(())
}

fn invalid(what: &str) -> crate::engine::EngineError {
    crate::engine::EngineError::Invalid(what.into())
}

/// The two hidden checks, evaluated side by side and opened together as two bits:
/// (no "\r\n\r\n" starts anywhere in `request` before its last 4 bytes, `window` is a
/// decimal with `decimals` decimals). Adds the AND gates used to `ands`.
pub async fn hidden_checks<T: Transport>(
    s: &mut Session<T>,
    request: &SharedBytes,
    window: &SharedBytes,
    decimals: u32,
    ands: &mut u64,
) -> Result<(bool, bool), VerifyError> {
    let id = s.id();
    let m = request.len();
    let literals = |c: u8| -> Result<Vec<BitShares>, VerifyError> {
        Ok((0..8)
            .map(|i| request.bit_equals(id, i, &vec![c; m]))
            .collect::<Result<_, _>>()?)
    };
    let digit = digits::Literals::new(id, window, decimals)?;
    // Level 1: byte = '\r', byte = '\n', and u = ¬l2 ∧ ¬l1 of the digits.
    let mut level1 = and_groups(
        s,
        vec![literals(b'\r')?, literals(b'\n')?, digit.u_group()],
        ands,
    )
    .await?
    .into_iter();
    let (cr, lf, u) = (
        level1.next().unwrap_or_default(),
        level1.next().unwrap_or_default(),
        level1.next().unwrap_or_default(),
    );
    // Level 2: window j = "\r\n\r\n", the digit/point pattern, v = l3 ∧ ¬u.
    let w = m.saturating_sub(BLANK_LINE.len());
    let window_lits = vec![
        cr.slice(0, w)?,
        lf.slice(1, w)?,
        cr.slice(2, w)?,
        lf.slice(3, w)?,
    ];
    let mut level2 = and_groups(
        s,
        vec![window_lits, digit.pattern_group()?, digit.v_group(&u)],
        ands,
    )
    .await?
    .into_iter();
    let (matches, pattern, v) = (
        level2.next().unwrap_or_default(),
        level2.next().unwrap_or_default(),
        level2.next().unwrap_or_default(),
    );
    // Level 3: no window matches; every pattern literal and every low nibble ≤ 9 hold.
    let nibble_ok = digit.nibble_ok(&v)?;
    let verdict = and_across(
        s,
        vec![matches.not(id), BitShares::concat(&[&pattern, &nibble_ok])],
        ands,
    )
    .await?;
    let bits = s.open_bits(&verdict).await?;
    let bit = |k: usize| (bits[0] >> k) & 1 == 1;
    Ok((bit(0), bit(1)))
}

/// A public mask with bit j set iff `f(j)`, for j < len.
pub fn mask(len: usize, f: impl Fn(usize) -> bool) -> Vec<u64> {
    pack(&(0..len).map(f).collect::<Vec<_>>())
}
