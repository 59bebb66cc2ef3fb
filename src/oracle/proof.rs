//! The prover's private proof file: the signed attestation, the attested application-data
//! records of both directions, the application traffic keys and IVs of both directions, and
//! the dataset and template hash it was made for, and the prover's declaration of where the
//! value lies in the response and how long its request's parameter values are.
//!
//! # File format
//!
//! `MPCPROOF` (8 bytes ASCII) ‖ format version (u16 big-endian, = 1) ‖ the [`Proof`] in
//! bincode 2 (`config::standard()`, serde). Decoding refuses another magic or version, a body
//! above [`MAX_PROOF_LEN`], and trailing bytes. The file holds keys that decrypt the user's
//! request (with its API key): it is written with mode 0600 and never leaves the provider
//! except as secret shares of the keys.
//!
//! [`decrypt_application_data`] is the plaintext reference of what the parties compute inside
//! the MPC; the provider uses it to find the declaration's ranges, tests to check both.

use std::ops::Range;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::attestation::{Attestation, AttestedRecord, Direction, SignedAttestation};
use super::handshake::TlsVersion;
use super::tls12::{Tls12Keys, SALT_LEN};
use super::tls13::{
    parse_records, HandshakeReader, Record, Tls13Error, TrafficKeys, CONTENT_ALERT,
    CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE,
};

/// The first bytes of every proof file.
pub const PROOF_MAGIC: &[u8; 8] = b"MPCPROOF";
/// The format version written and read.
pub const PROOF_VERSION: u16 = 2;
/// Largest proof body accepted: 64 MiB.
pub const MAX_PROOF_LEN: usize = 64 << 20;

/// HandshakeType.new_session_ticket: allowed after the handshake, and ignored.
const HS_NEW_SESSION_TICKET: u8 = 4;

/// Why a proof file or its application data was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// Not a proof file of this version, or a malformed body.
    #[error("malformed proof file: {0}")]
    Malformed(String),
    /// The records do not match the attestation.
    #[error("proof records do not match the attestation: {0}")]
    Mismatch(String),
    /// An application record failed to decrypt or parse.
    #[error("{direction:?} application data: {source}")]
    Record {
        direction: Direction,
        #[source]
        source: Tls13Error,
    },
    /// Something other than application data, NewSessionTicket or a final close_notify.
    #[error("{direction:?} record {seq}: {what} is refused after the handshake")]
    Refused {
        direction: Direction,
        seq: u64,
        what: String,
    },
    /// A declared range is empty, reversed, or beyond the response.
    #[error("declared {what} range {start}..{end} is not within the {len}-byte response")]
    BadRange {
        what: &'static str,
        start: u64,
        end: u64,
        len: usize,
    },
}

/// A half-open byte range `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Checks `start < end <= len` and returns it as a `usize` range.
    pub fn within(&self, what: &'static str, len: usize) -> Result<Range<usize>, ProofError> {
        let bad = || ProofError::BadRange {
            what,
            start: self.start,
            end: self.end,
            len,
        };
        let start = usize::try_from(self.start).map_err(|_| bad())?;
        let end = usize::try_from(self.end).map_err(|_| bad())?;
        if start >= end || end > len {
            return Err(bad());
        }
        Ok(start..end)
    }
}

impl From<Range<usize>> for ByteRange {
    fn from(r: Range<usize>) -> Self {
        ByteRange {
            start: r.start as u64,
            end: r.end as u64,
        }
    }
}

/// What the prover declares about its session: where the value lies in the response (a byte
/// range into the concatenated application data of the server's records — HTTP status line,
/// headers, body — as [`decrypt_application_data`] returns it), and the lengths of the
/// public and hidden query parameter values of its request, in template order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The value's text: the digits of `"12.5"` without the quotes, or of the number `12.5`.
    pub value: ByteRange,
    /// Lengths of the template's public and hidden parameter values.
    pub params: Vec<u32>,
}

impl Declaration {
    /// Checks the value range against a response of `len` bytes.
    pub fn check(&self, len: usize) -> Result<(), ProofError> {
        self.value.within("value", len)?;
        Ok(())
    }
}

/// A proof file's content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The notary's signed attestation.
    pub attestation: SignedAttestation,
    /// The dataset the proof was made for.
    pub dataset: String,
    /// `Template::hash` of that dataset's template: the parties refuse another.
    pub template_hash: [u8; 32],
    /// The client→server application-data records, in sequence order, each whole (header ‖
    /// ciphertext ‖ tag).
    pub client_records: Vec<Vec<u8>>,
    /// The server→client application-data records, likewise.
    pub server_records: Vec<Vec<u8>>,
    /// Client application traffic key and IV (TLS 1.2: the write key, and the 4-byte salt
    /// followed by 8 zero bytes — see [`tls12_keys`]).
    pub client_keys: TrafficKeys,
    /// Server application traffic key and IV, likewise.
    pub server_keys: TrafficKeys,
    /// Where the value and the account id are.
    pub declaration: Declaration,
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("attestation", &self.attestation)
            .field("dataset", &self.dataset)
            .field("client_records", &self.client_records.len())
            .field("server_records", &self.server_records.len())
            .field("declaration", &self.declaration)
            .finish_non_exhaustive()
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PROOF_LEN>()
}

impl Proof {
    /// The file bytes: magic ‖ version ‖ bincode body.
    pub fn encode(&self) -> Result<Vec<u8>, ProofError> {
        let body = bincode::serde::encode_to_vec(self, config())
            .map_err(|e| ProofError::Malformed(format!("encoding: {e}")))?;
        let mut out = Vec::with_capacity(10 + body.len());
        out.extend_from_slice(PROOF_MAGIC);
        out.extend_from_slice(&PROOF_VERSION.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses file bytes strictly.
    pub fn decode(bytes: &[u8]) -> Result<Proof, ProofError> {
        if bytes.len() < 10 || &bytes[..8] != PROOF_MAGIC {
            return Err(ProofError::Malformed(
                "expected the magic MPCPROOF: not a proof file".into(),
            ));
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != PROOF_VERSION {
            return Err(ProofError::Malformed(format!(
                "format version {version}, expected {PROOF_VERSION}"
            )));
        }
        let body = &bytes[10..];
        if body.len() > MAX_PROOF_LEN {
            return Err(ProofError::Malformed(format!(
                "{} bytes, at most {MAX_PROOF_LEN}",
                body.len()
            )));
        }
        let (proof, used): (Proof, usize) = bincode::serde::decode_from_slice(body, config())
            .map_err(|e| ProofError::Malformed(e.to_string()))?;
        if used != body.len() {
            return Err(ProofError::Malformed(format!(
                "{} trailing bytes",
                body.len() - used
            )));
        }
        Ok(proof)
    }

    /// Writes the file with mode 0600 (set before any byte is written), replacing `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let bytes = self.encode()?;
        super::attestation::write_private(path.as_ref(), &bytes)
    }

    /// Reads and parses a proof file.
    pub fn read(path: impl AsRef<Path>) -> anyhow::Result<Proof> {
        let path = path.as_ref();
        let max = (MAX_PROOF_LEN + PROOF_MAGIC.len() + 2) as u64;
        let bytes = crate::files::read_limited(path, max, "proof")?;
        Proof::decode(&bytes).with_context(|| format!("parsing proof {}", path.display()))
    }

    /// Checks that the records are exactly the attested ones: same count per direction and
    /// each record's SHA-256 at its sequence number. (The signature is checked separately.)
    pub fn check_records(&self, attestation: &Attestation) -> Result<(), ProofError> {
        for (direction, records) in [
            (Direction::ClientToServer, &self.client_records),
            (Direction::ServerToClient, &self.server_records),
        ] {
            let attested: Vec<&AttestedRecord> = attestation.records_of(direction).collect();
            if attested.len() != records.len() {
                return Err(ProofError::Mismatch(format!(
                    "{direction:?}: {} attested records, {} in the proof",
                    attested.len(),
                    records.len()
                )));
            }
            for (seq, (a, record)) in attested.iter().zip(records.iter()).enumerate() {
                let expected = AttestedRecord::of(direction, seq as u64, record);
                if **a != expected {
                    return Err(ProofError::Mismatch(format!(
                        "{direction:?} record {seq} differs from the attested one"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A TLS 1.2 direction's keys as a proof stores them: the key, and the salt in the IV's first
/// 4 bytes (the other 8 are zero: TLS 1.2 records carry their explicit nonce).
pub fn traffic_keys_of_tls12(k: &Tls12Keys) -> TrafficKeys {
    let mut iv = [0u8; 12];
    iv[..SALT_LEN].copy_from_slice(&k.salt);
    TrafficKeys { key: k.key, iv }
}

/// The TLS 1.2 keys a proof's [`TrafficKeys`] stand for.
pub fn tls12_keys(k: &TrafficKeys) -> Tls12Keys {
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&k.iv[..SALT_LEN]);
    Tls12Keys { key: k.key, salt }
}

/// [`decrypt_application_data`] for a session of `version`.
pub fn decrypt_session(
    version: TlsVersion,
    direction: Direction,
    keys: &TrafficKeys,
    records: &[Vec<u8>],
) -> Result<Vec<u8>, ProofError> {
    match version {
        TlsVersion::Tls13 => decrypt_application_data(direction, keys, records),
        TlsVersion::Tls12 => decrypt_application_data12(direction, &tls12_keys(keys), records),
    }
}

/// The loop both versions share: exactly one record per entry, decrypted by `open` (which
/// gives its content type and content) with sequence numbers from `first_seq`; application
/// data is collected, handshake content goes to `handshake`, a close_notify alert ends the
/// stream, and any other alert, content type or record after close_notify is refused.
fn application_data(
    direction: Direction,
    records: &[Vec<u8>],
    first_seq: u64,
    open: impl Fn(u64, &Record) -> Result<(u8, Vec<u8>), ProofError>,
    mut handshake: impl FnMut(u64, &[u8]) -> Result<(), ProofError>,
) -> Result<Vec<u8>, ProofError> {
    let mut out = Vec::new();
    let mut closed = false;
    for (i, bytes) in records.iter().enumerate() {
        let seq = first_seq + i as u64;
        let refused = |what: String| ProofError::Refused {
            direction,
            seq,
            what,
        };
        let parsed =
            parse_records(bytes).map_err(|source| ProofError::Record { direction, source })?;
        let [record] = parsed.as_slice() else {
            return Err(refused(format!("{} records in one entry", parsed.len())));
        };
        if closed {
            return Err(refused("a record after close_notify".into()));
        }
        let (content_type, content) = open(seq, record)?;
        match content_type {
            CONTENT_APPLICATION_DATA => out.extend_from_slice(&content),
            CONTENT_HANDSHAKE => handshake(seq, &content)?,
            CONTENT_ALERT if content == [1, 0] => closed = true,
            CONTENT_ALERT => return Err(refused("an alert other than close_notify".into())),
            other => return Err(refused(format!("content type {other}"))),
        }
    }
    Ok(out)
}

/// TLS 1.2: decrypts one direction's records after the Finished (sequence numbers from 1)
/// and returns the application data. The content type is the record header's: application
/// data, or a final close_notify alert; a handshake record (renegotiation), another alert or
/// anything after close_notify is refused.
pub fn decrypt_application_data12(
    direction: Direction,
    keys: &Tls12Keys,
    records: &[Vec<u8>],
) -> Result<Vec<u8>, ProofError> {
    let open = |seq, record: &Record| {
        let plain = keys.open(seq, record).map_err(|e| ProofError::Refused {
            direction,
            seq,
            what: format!("the record does not open: {e}"),
        })?;
        Ok((record.content_type, plain))
    };
    let renegotiation = |seq, _: &[u8]| {
        Err(ProofError::Refused {
            direction,
            seq,
            what: "a handshake record after the handshake (renegotiation)".into(),
        })
    };
    application_data(direction, records, 1, open, renegotiation)
}

/// Decrypts one direction's application-data records (whole records, sequence numbers from 0)
/// and returns the concatenated application data. NewSessionTicket messages are skipped; a
/// KeyUpdate or any other handshake message, an alert other than a final close_notify, or
/// anything after close_notify is refused.
pub fn decrypt_application_data(
    direction: Direction,
    keys: &TrafficKeys,
    records: &[Vec<u8>],
) -> Result<Vec<u8>, ProofError> {
    let open = |seq, record: &Record| {
        let inner = keys
            .open(seq, record)
            .map_err(|source| ProofError::Record { direction, source })?;
        Ok((inner.content_type, inner.content))
    };
    let mut tickets = HandshakeReader::new();
    let new_session_tickets = |seq, content: &[u8]| {
        tickets.push(content);
        while let Some(msg) = tickets
            .next_message()
            .map_err(|source| ProofError::Record { direction, source })?
        {
            if msg.msg_type != HS_NEW_SESSION_TICKET {
                return Err(ProofError::Refused {
                    direction,
                    seq,
                    what: format!("handshake message type {} (24 = KeyUpdate)", msg.msg_type),
                });
            }
        }
        Ok(())
    };
    let out = application_data(direction, records, 0, open, new_session_tickets)?;
    if tickets.has_partial() {
        return Err(ProofError::Refused {
            direction,
            seq: records.len() as u64,
            what: "an unfinished handshake message".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::oracle::attestation::NotaryKey;
    use crate::oracle::exchange::LeafKey;
    use crate::oracle::handshake::Side;
    use crate::oracle::testutil::session;

    /// The whole flow on a real recorded session: verify, attest, build the proof, write,
    /// read back, check records and decrypt the declared value.
    fn build() -> (Proof, NotaryKey, Vec<u8>, String) {
        let s = session(LeafKey::EcdsaP256);
        let summary = s.verified();
        let key = NotaryKey::generate().unwrap();
        let attestation = Attestation::from_handshake(&summary, 443, key.key_id(), s.now)
            .sign(key.key_pair())
            .unwrap();
        let records = |side| {
            summary
                .application_records(side)
                .iter()
                .map(|r| r.to_bytes())
                .collect::<Vec<_>>()
        };
        let client_keys = TrafficKeys::derive(&s.secrets.client_application).unwrap();
        let server_keys = TrafficKeys::derive(&s.secrets.server_application).unwrap();
        let server_records = records(Side::Server);
        let response =
            decrypt_application_data(Direction::ServerToClient, &server_keys, &server_records)
                .unwrap();
        let text = String::from_utf8(response.clone()).unwrap();
        let find = |needle: &str| {
            let start = text.find(needle).unwrap() + needle.len();
            let end = start + text[start..].find('"').unwrap();
            ByteRange::from(start..end)
        };
        let declaration = Declaration {
            value: find("{\"asset\":\"ETH\",\"free\":\""),
            params: vec![],
        };
        let proof = Proof {
            attestation,
            dataset: "exchange_eth".into(),
            template_hash: [9; 32],
            client_records: records(Side::Client),
            server_records,
            client_keys,
            server_keys,
            declaration,
        };
        (proof, key, response, s.eth_balance.clone())
    }

    #[test]
    fn proof_file_round_trip_mode_0600_and_checks() {
        let (proof, key, response, eth) = build();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proof.bin");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        proof.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Proof::read(&path).unwrap();
        assert_eq!(back, proof);
        assert!(!format!("{back:?}").contains(&hex::encode(back.client_keys.key)));

        // What a party checks, in plaintext.
        let attestation = back.attestation.verify(&key.public_key()).unwrap();
        back.check_records(&attestation).unwrap();
        let plain = decrypt_application_data(
            Direction::ServerToClient,
            &back.server_keys,
            &back.server_records,
        )
        .unwrap();
        assert_eq!(plain, response);
        back.declaration.check(plain.len()).unwrap();
        let value = back.declaration.value.within("value", plain.len()).unwrap();
        assert_eq!(std::str::from_utf8(&plain[value]).unwrap(), eth);
        let request = decrypt_application_data(
            Direction::ClientToServer,
            &back.client_keys,
            &back.client_records,
        )
        .unwrap();
        assert!(request.starts_with(b"GET /api/v1/account HTTP/1.1\r\n"));

        // A swapped record, a missing record, a wrong key.
        let mut bad = back.clone();
        bad.server_records.swap(0, 1);
        assert!(matches!(
            bad.check_records(&attestation),
            Err(ProofError::Mismatch(_))
        ));
        assert!(decrypt_application_data(
            Direction::ServerToClient,
            &bad.server_keys,
            &bad.server_records
        )
        .is_err());
        let mut bad = back.clone();
        bad.client_records.pop();
        assert!(bad.check_records(&attestation).is_err());
        assert!(decrypt_application_data(
            Direction::ServerToClient,
            &back.client_keys,
            &back.server_records
        )
        .is_err());
    }

    #[test]
    fn strict_file_parsing() {
        let (proof, ..) = build();
        let bytes = proof.encode().unwrap();
        assert_eq!(Proof::decode(&bytes).unwrap(), proof);
        let mut long = bytes.clone();
        long.push(0);
        assert!(Proof::decode(&long)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        assert!(Proof::decode(&bytes[..bytes.len() - 1]).is_err());
        for version in [1, 3] {
            let mut v = bytes.clone();
            v[9] = version;
            assert!(Proof::decode(&v).is_err());
        }
        let mut v = bytes.clone();
        v[0] = b'X';
        assert!(Proof::decode(&v).is_err());
        assert!(Proof::decode(b"MPC").is_err());
    }

    #[test]
    fn key_update_and_trailing_data_refused() {
        let keys = TrafficKeys::derive(&[3; 32]).unwrap();
        let seal = |seq, ty, content: &[u8]| keys.seal(seq, ty, content).unwrap().to_bytes();
        let ticket = [HS_NEW_SESSION_TICKET, 0, 0, 2, 9, 9];
        let ok = vec![
            seal(0, CONTENT_HANDSHAKE, &ticket),
            seal(1, CONTENT_APPLICATION_DATA, b"HTTP/1.1 200 OK\r\n"),
            seal(2, CONTENT_ALERT, &[1, 0]),
        ];
        assert_eq!(
            decrypt_application_data(Direction::ServerToClient, &keys, &ok).unwrap(),
            b"HTTP/1.1 200 OK\r\n"
        );
        let key_update = vec![
            seal(0, CONTENT_APPLICATION_DATA, b"x"),
            seal(1, CONTENT_HANDSHAKE, &[24, 0, 0, 1, 0]),
        ];
        let err =
            decrypt_application_data(Direction::ServerToClient, &keys, &key_update).unwrap_err();
        assert!(err.to_string().contains("KeyUpdate"), "{err}");
        let after_close = vec![
            seal(0, CONTENT_ALERT, &[1, 0]),
            seal(1, CONTENT_APPLICATION_DATA, b"smuggled"),
        ];
        assert!(decrypt_application_data(Direction::ServerToClient, &keys, &after_close).is_err());
        let fatal = vec![seal(0, CONTENT_ALERT, &[2, 40])];
        assert!(decrypt_application_data(Direction::ServerToClient, &keys, &fatal).is_err());
        let mut two = seal(0, CONTENT_APPLICATION_DATA, b"a");
        two.extend_from_slice(&seal(1, CONTENT_APPLICATION_DATA, b"b"));
        assert!(decrypt_application_data(Direction::ServerToClient, &keys, &[two]).is_err());
    }

    #[test]
    fn declaration_ranges() {
        let r = ByteRange { start: 2, end: 5 };
        assert_eq!(r.within("value", 5).unwrap(), 2..5);
        assert!(r.within("value", 4).is_err());
        assert!(ByteRange { start: 3, end: 3 }.within("value", 9).is_err());
        assert!(ByteRange { start: 4, end: 3 }.within("value", 9).is_err());
        let d = Declaration {
            value: r,
            params: vec![3],
        };
        d.check(5).unwrap();
        assert!(d.check(4).is_err());
    }
}
