//! What the records hold: content types (opened), handshake and alert records (opened and
//! checked as `proof::decrypt_application_data` does, padding refused), and the request and
//! the response as shared strings. The hidden checks live in `request` and `value`.

use crate::engine::binary::pack;
use crate::engine::session::Session;
use crate::engine::transport::Transport;
use crate::oracle::attestation::Direction;
use crate::oracle::handshake::TlsVersion;
use crate::oracle::tls13::{
    HandshakeReader, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE,
};

use super::gcm::SharedRecord;
use super::shared::{open_bytes, SharedBytes};
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

/// A record's content: TLS 1.3 drops the inner content type byte; TLS 1.2 has none.
pub fn content(r: &SharedRecord, version: TlsVersion) -> Result<SharedBytes, VerifyError> {
    let pt = &r.plaintext;
    Ok(match version {
        TlsVersion::Tls13 => pt.slice(0, pt.len() - 1)?,
        TlsVersion::Tls12 => pt.clone(),
    })
}

/// Sorts the records by content type: application data joins its direction's stream,
/// handshake (server only) and alert records are to be opened; padding and anything else are
/// refused.
pub fn split(
    records: &[SharedRecord],
    types: &[u8],
    version: TlsVersion,
) -> Result<Streams, VerifyError> {
    let mut request = Vec::new();
    let mut response = Vec::new();
    let mut control = Vec::new();
    for (k, (r, &ty)) in records.iter().zip(types).enumerate() {
        let (direction, seq) = (r.info.direction, r.info.seq);
        let content = content(r, version)?;
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
/// close_notify as the only alert and nothing after it. Returns whether the server's records
/// ended with a close_notify (a response complete by its framing needs none).
pub fn check_control(
    records: &[SharedRecord],
    types: &[u8],
    control: &[usize],
    opened: &[Vec<u8>],
) -> Result<bool, VerifyError> {
    let mut server_closed = false;
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
        server_closed = closed;
    }
    Ok(server_closed)
}

fn invalid(what: &str) -> crate::engine::EngineError {
    crate::engine::EngineError::Invalid(what.into())
}

/// A public mask with bit j set iff `f(j)`, for j < len.
pub fn mask(len: usize, f: impl Fn(usize) -> bool) -> Vec<u64> {
    pack(&(0..len).map(f).collect::<Vec<_>>())
}
