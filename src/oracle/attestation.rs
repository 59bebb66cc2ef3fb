//! The notary's signed statement about one TLS session, its exact byte encoding, and the
//! notary's Ed25519 signing key.
//!
//! An attestation says: "at `time`, I relayed a TLS session (version `tls_version`) to
//! `server_name` on `port` whose handshake (transcript hash) I verified, and these were the
//! protected records after it". It holds no plaintext and no key: the notary never had
//! either.
//!
//! # Encoding (version 2)
//!
//! All integers big-endian; no padding; `n` = server name length, `m` = record count.
//!
//! | offset        | size   | field                                                        |
//! |---------------|--------|--------------------------------------------------------------|
//! | 0             | 20     | magic, ASCII `MPCSTATS-ATTESTATION`                          |
//! | 20            | 1      | version = 2                                                  |
//! | 21            | 32     | notary key id = SHA-256 of the notary's 32-byte Ed25519 public key |
//! | 53            | 2      | `n`, u16, 1 ..= 255                                          |
//! | 55            | n      | server name: ASCII `!`..`~` without upper-case letters        |
//! | 55 + n        | 2      | server port, u16, not 0                                      |
//! | 57 + n        | 2      | TLS version: 0x0304 (TLS 1.3) or 0x0303 (TLS 1.2)            |
//! | 59 + n        | 8      | time, u64, unix seconds                                      |
//! | 67 + n        | 32     | handshake transcript hash (TLS 1.3: ClientHello ‖ … ‖ server Finished; TLS 1.2: the plaintext handshake messages, see `handshake`) |
//! | 99 + n        | 4      | `m`, u32, at most [`MAX_RECORDS`]                            |
//! | 103 + n + 41·i| 1      | record i: direction, 0 = client→server, 1 = server→client   |
//! | 104 + n + 41·i| 8      | record i: index, u64, within that direction's application-data records, from 0 |
//! | 112 + n + 41·i| 32     | record i: SHA-256 of the whole record (5-byte header ‖ fragment) |
//!
//! The total length is exactly `103 + n + 41·m`. Records are in canonical order: every
//! client→server record first, sequence numbers 0, 1, 2, … without gaps, then every
//! server→client record likewise. Any other byte string — another magic or version, a length
//! that does not match, trailing bytes, records out of order — is refused, so one statement
//! has exactly one encoding.
//!
//! The signature is Ed25519 (RFC 8032) over the whole encoding above; the magic separates it
//! from anything else the key might sign.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{anyhow, Context};
use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::handshake::{HandshakeSummary, Side};

/// The magic that starts every encoded attestation.
pub const MAGIC: &[u8; 20] = b"MPCSTATS-ATTESTATION";
/// The only version this code writes and reads.
pub const VERSION: u8 = 2;
/// `tls_version` of a TLS 1.3 session.
pub const TLS13: u16 = 0x0304;
/// `tls_version` of a TLS 1.2 session.
pub const TLS12: u16 = 0x0303;
/// Most records one attestation may list.
pub const MAX_RECORDS: u32 = 1 << 20;
/// Bytes of one encoded record entry.
pub const RECORD_ENTRY_LEN: usize = 1 + 8 + 32;
const FIXED_LEN: usize = 20 + 1 + 32 + 2 + 2 + 2 + 8 + 32 + 4;

/// Why an attestation was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AttestationError {
    /// The Ed25519 signature does not verify under the given public key.
    #[error("attestation signature does not verify under the notary's public key")]
    BadSignature,
    /// A public key or signature of the wrong length.
    #[error("{what}: expected {expected} bytes, found {found}")]
    BadLength {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// The encoding is malformed.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// Another version.
    #[error("attestation version: expected {VERSION}, found {0}")]
    Version(u8),
    /// The key id is not that of the verifying key.
    #[error("attestation names notary key {found}, but was checked with key {expected}")]
    KeyId { expected: String, found: String },
    /// A field that cannot be encoded.
    #[error("cannot encode attestation: {0}")]
    Invalid(String),
}

/// A direction of the session, as encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// 0: sent by the client.
    ClientToServer = 0,
    /// 1: sent by the server.
    ServerToClient = 1,
}

impl From<Side> for Direction {
    fn from(side: Side) -> Self {
        match side {
            Side::Client => Direction::ClientToServer,
            Side::Server => Direction::ServerToClient,
        }
    }
}

/// One attested application-data record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestedRecord {
    /// Who sent it.
    pub direction: Direction,
    /// Its sequence number among that direction's application-data records.
    pub seq: u64,
    /// SHA-256 of the whole record, header included.
    pub hash: [u8; 32],
}

impl AttestedRecord {
    /// The entry for `record_bytes` (header ‖ fragment).
    pub fn of(direction: Direction, seq: u64, record_bytes: &[u8]) -> AttestedRecord {
        AttestedRecord {
            direction,
            seq,
            hash: Sha256::digest(record_bytes).into(),
        }
    }
}

/// The notary's statement; see the module documentation for its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// SHA-256 of the notary's Ed25519 public key.
    pub notary_key_id: [u8; 32],
    /// The server name the certificate was verified for (lower case).
    pub server_name: String,
    /// The TCP port the notary dialed.
    pub port: u16,
    /// [`TLS13`] or [`TLS12`].
    pub tls_version: u16,
    /// When the notary verified the session, unix seconds.
    pub time: u64,
    /// SHA-256 of the handshake transcript through the server Finished.
    pub transcript_hash: [u8; 32],
    /// The application-data records, canonical order.
    pub records: Vec<AttestedRecord>,
}

/// The key id of an Ed25519 public key: SHA-256 of its 32 bytes.
pub fn key_id(public_key: &[u8]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

/// An encoded attestation and the notary's signature over it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAttestation {
    /// The encoding (module documentation).
    pub body: Vec<u8>,
    /// Ed25519 signature over `body`, 64 bytes.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignedAttestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedAttestation")
            .field("body_len", &self.body.len())
            .field("signature", &hex::encode(&self.signature))
            .finish()
    }
}

impl SignedAttestation {
    /// Checks the signature under `public_key`, then parses strictly.
    pub fn verify(&self, public_key: &[u8]) -> Result<Attestation, AttestationError> {
        verify(&self.body, &self.signature, public_key)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "server name length {}, expected 1..=255",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
    {
        return Err(format!(
            "server name {name:?}: expected printable ASCII without upper case"
        ));
    }
    Ok(())
}

fn check_port_version(port: u16, tls_version: u16) -> Result<(), String> {
    if port == 0 {
        return Err("port 0".into());
    }
    if tls_version != TLS13 && tls_version != TLS12 {
        return Err(format!(
            "TLS version {tls_version:#06x}, expected 0x0304 or 0x0303"
        ));
    }
    Ok(())
}

fn check_order(records: &[AttestedRecord]) -> Result<(), String> {
    let mut expected = (Direction::ClientToServer, 0u64);
    for r in records {
        if r.direction == Direction::ServerToClient && expected.0 == Direction::ClientToServer {
            expected = (Direction::ServerToClient, 0);
        }
        if (r.direction, r.seq) != expected {
            return Err(format!(
                "record {:?} #{} out of canonical order: expected {:?} #{}",
                r.direction, r.seq, expected.0, expected.1
            ));
        }
        expected.1 += 1;
    }
    Ok(())
}

impl Attestation {
    /// The statement about a verified handshake: every application-data record of both
    /// directions, as recorded.
    pub fn from_handshake(
        summary: &HandshakeSummary,
        port: u16,
        notary_key_id: [u8; 32],
        time: u64,
    ) -> Attestation {
        let mut records = Vec::new();
        for side in [Side::Client, Side::Server] {
            for (seq, record) in summary.application_records(side).iter().enumerate() {
                records.push(AttestedRecord::of(
                    side.into(),
                    seq as u64,
                    &record.to_bytes(),
                ));
            }
        }
        Attestation {
            notary_key_id,
            server_name: summary.server_name.to_ascii_lowercase(),
            port,
            tls_version: summary.version.code(),
            time,
            transcript_hash: summary.transcript_hash,
            records,
        }
    }

    /// The records of one direction, in sequence order.
    pub fn records_of(&self, direction: Direction) -> impl Iterator<Item = &AttestedRecord> {
        self.records
            .iter()
            .filter(move |r| r.direction == direction)
    }

    /// The exact encoding; refuses a name or record list the format cannot carry.
    pub fn encode(&self) -> Result<Vec<u8>, AttestationError> {
        check_name(&self.server_name).map_err(AttestationError::Invalid)?;
        check_port_version(self.port, self.tls_version).map_err(AttestationError::Invalid)?;
        check_order(&self.records).map_err(AttestationError::Invalid)?;
        let count = u32::try_from(self.records.len())
            .ok()
            .filter(|&c| c <= MAX_RECORDS)
            .ok_or_else(|| AttestationError::Invalid(format!("{} records", self.records.len())))?;
        let mut out = Vec::with_capacity(
            FIXED_LEN + self.server_name.len() + RECORD_ENTRY_LEN * self.records.len(),
        );
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.notary_key_id);
        out.extend_from_slice(&(self.server_name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.server_name.as_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.tls_version.to_be_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        out.extend_from_slice(&self.transcript_hash);
        out.extend_from_slice(&count.to_be_bytes());
        for r in &self.records {
            out.push(r.direction as u8);
            out.extend_from_slice(&r.seq.to_be_bytes());
            out.extend_from_slice(&r.hash);
        }
        Ok(out)
    }

    /// Parses an encoding strictly (module documentation). Does not check any signature.
    pub fn decode(bytes: &[u8]) -> Result<Attestation, AttestationError> {
        let malformed = |s: &str| AttestationError::Malformed(s.to_string());
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], AttestationError> {
            if rest.len() < n {
                return Err(AttestationError::Malformed(format!(
                    "truncated: expected {n} more bytes, found {}",
                    rest.len()
                )));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        if take(MAGIC.len())? != MAGIC {
            return Err(malformed("expected magic MPCSTATS-ATTESTATION"));
        }
        let version = take(1)?[0];
        if version != VERSION {
            return Err(AttestationError::Version(version));
        }
        let notary_key_id: [u8; 32] = take(32)?.try_into().expect("32 bytes");
        let name_len = usize::from(u16::from_be_bytes(take(2)?.try_into().expect("2 bytes")));
        let name = take(name_len)?;
        let server_name = std::str::from_utf8(name)
            .map_err(|_| malformed("server name is not ASCII"))?
            .to_string();
        check_name(&server_name).map_err(AttestationError::Malformed)?;
        let port = u16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
        let tls_version = u16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
        check_port_version(port, tls_version).map_err(AttestationError::Malformed)?;
        let time = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
        let transcript_hash: [u8; 32] = take(32)?.try_into().expect("32 bytes");
        let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
        if count > MAX_RECORDS {
            return Err(AttestationError::Malformed(format!(
                "{count} records, at most {MAX_RECORDS}"
            )));
        }
        let expected = count as usize * RECORD_ENTRY_LEN;
        let found = bytes.len() - (FIXED_LEN + name_len);
        if found != expected {
            return Err(AttestationError::Malformed(format!(
                "{count} records need {expected} bytes, found {found}"
            )));
        }
        let mut records = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let direction = match take(1)?[0] {
                0 => Direction::ClientToServer,
                1 => Direction::ServerToClient,
                d => return Err(AttestationError::Malformed(format!("direction {d}"))),
            };
            let seq = u64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
            let hash: [u8; 32] = take(32)?.try_into().expect("32 bytes");
            records.push(AttestedRecord {
                direction,
                seq,
                hash,
            });
        }
        check_order(&records).map_err(AttestationError::Malformed)?;
        Ok(Attestation {
            notary_key_id,
            server_name,
            port,
            tls_version,
            time,
            transcript_hash,
            records,
        })
    }

    /// Encodes and signs. The key id in the statement must be `key`'s.
    pub fn sign(&self, key: &Ed25519KeyPair) -> Result<SignedAttestation, AttestationError> {
        let id = key_id(key.public_key().as_ref());
        if id != self.notary_key_id {
            return Err(AttestationError::KeyId {
                expected: hex::encode(id),
                found: hex::encode(self.notary_key_id),
            });
        }
        let body = self.encode()?;
        let signature = key.sign(&body).as_ref().to_vec();
        Ok(SignedAttestation { body, signature })
    }
}

/// Checks `signature` over `body` under the Ed25519 `public_key` (32 bytes), then parses
/// `body` strictly and checks that it names that key.
pub fn verify(
    body: &[u8],
    signature: &[u8],
    public_key: &[u8],
) -> Result<Attestation, AttestationError> {
    if public_key.len() != 32 {
        return Err(AttestationError::BadLength {
            what: "Ed25519 public key",
            expected: 32,
            found: public_key.len(),
        });
    }
    if signature.len() != 64 {
        return Err(AttestationError::BadLength {
            what: "Ed25519 signature",
            expected: 64,
            found: signature.len(),
        });
    }
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(body, signature)
        .map_err(|_| AttestationError::BadSignature)?;
    let attestation = Attestation::decode(body)?;
    let expected = key_id(public_key);
    if attestation.notary_key_id != expected {
        return Err(AttestationError::KeyId {
            expected: hex::encode(expected),
            found: hex::encode(attestation.notary_key_id),
        });
    }
    Ok(attestation)
}

/// The notary's Ed25519 signing key, kept as PKCS#8.
pub struct NotaryKey {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for NotaryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotaryKey")
            .field("key_id", &hex::encode(self.key_id()))
            .finish_non_exhaustive()
    }
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl NotaryKey {
    /// A fresh key from the system RNG.
    pub fn generate() -> anyhow::Result<NotaryKey> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow!("generating an Ed25519 key failed"))?;
        NotaryKey::from_pkcs8(doc.as_ref())
    }

    /// From PKCS#8 DER (v1 as OpenSSL writes it, or v2 as ring does).
    pub fn from_pkcs8(der: &[u8]) -> anyhow::Result<NotaryKey> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| anyhow!("expected an Ed25519 PKCS#8 private key: {e}"))?;
        Ok(NotaryKey {
            pkcs8: der.to_vec(),
            pair,
        })
    }

    /// From a PEM `PRIVATE KEY` block or raw PKCS#8 DER.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<NotaryKey> {
        if bytes.starts_with(b"-----BEGIN") {
            let pem = pem::parse(bytes).map_err(|e| anyhow!("expected a PEM key: {e}"))?;
            if pem.tag() != PEM_LABEL {
                anyhow::bail!("expected a PEM {PEM_LABEL}, found {}", pem.tag());
            }
            NotaryKey::from_pkcs8(pem.contents())
        } else {
            NotaryKey::from_pkcs8(bytes)
        }
    }

    /// Reads a key file written by [`NotaryKey::write`] (or raw PKCS#8 DER).
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<NotaryKey> {
        let path = path.as_ref();
        let bytes = crate::files::read_limited(path, crate::files::MAX_PEM_FILE, "notary key")?;
        NotaryKey::from_bytes(&bytes).with_context(|| format!("loading {}", path.display()))
    }

    /// The key as PEM `PRIVATE KEY` (PKCS#8).
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new(PEM_LABEL, self.pkcs8.clone()))
    }

    /// Writes the PEM to `path` with mode 0600, set before any key byte is written.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        write_private(path.as_ref(), self.to_pem().as_bytes())
    }

    /// The key pair, for [`Attestation::sign`].
    pub fn key_pair(&self) -> &Ed25519KeyPair {
        &self.pair
    }

    /// The 32-byte public key (what `cluster.toml` publishes).
    pub fn public_key(&self) -> [u8; 32] {
        self.pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes")
    }

    /// SHA-256 of the public key.
    pub fn key_id(&self) -> [u8; 32] {
        key_id(&self.public_key())
    }
}

/// Creates or replaces `path` with mode 0600 (narrowed before writing) and writes `bytes`.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &NotaryKey) -> Attestation {
        let mut records = Vec::new();
        for seq in 0..2 {
            records.push(AttestedRecord::of(Direction::ClientToServer, seq, b"c"));
        }
        for seq in 0..3 {
            records.push(AttestedRecord::of(
                Direction::ServerToClient,
                seq,
                &[seq as u8],
            ));
        }
        Attestation {
            notary_key_id: key.key_id(),
            server_name: "api.exchange.test".into(),
            port: 8443,
            tls_version: TLS12,
            time: 1_750_000_000,
            transcript_hash: [7; 32],
            records,
        }
    }

    #[test]
    fn encoding_matches_the_table() {
        let key = NotaryKey::generate().unwrap();
        let a = sample(&key);
        let bytes = a.encode().unwrap();
        let n = a.server_name.len();
        assert_eq!(bytes.len(), 103 + n + 41 * 5);
        assert_eq!(&bytes[..20], b"MPCSTATS-ATTESTATION");
        assert_eq!(bytes[20], 2);
        assert_eq!(&bytes[21..53], &key.key_id());
        assert_eq!(&bytes[53..55], &(n as u16).to_be_bytes());
        assert_eq!(&bytes[55..55 + n], b"api.exchange.test");
        assert_eq!(&bytes[55 + n..57 + n], &8443u16.to_be_bytes());
        assert_eq!(&bytes[57 + n..59 + n], &[3, 3]);
        assert_eq!(&bytes[59 + n..67 + n], &1_750_000_000u64.to_be_bytes());
        assert_eq!(&bytes[67 + n..99 + n], &[7; 32]);
        assert_eq!(&bytes[99 + n..103 + n], &5u32.to_be_bytes());
        let third = 103 + n + 41 * 2;
        assert_eq!(bytes[third], 1);
        assert_eq!(&bytes[third + 1..third + 9], &0u64.to_be_bytes());
        assert_eq!(
            &bytes[third + 9..third + 41],
            Sha256::digest([0u8]).as_slice()
        );
        assert_eq!(Attestation::decode(&bytes).unwrap(), a);
    }

    #[test]
    fn sign_verify_round_trip_and_refusals() {
        let key = NotaryKey::generate().unwrap();
        let a = sample(&key);
        let signed = a.sign(key.key_pair()).unwrap();
        assert_eq!(signed.verify(&key.public_key()).unwrap(), a);

        // Every single altered byte of the body, or of the signature, is refused.
        for i in 0..signed.body.len() {
            let mut body = signed.body.clone();
            body[i] ^= 0x01;
            assert_eq!(
                verify(&body, &signed.signature, &key.public_key()),
                Err(AttestationError::BadSignature),
                "byte {i}"
            );
        }
        let mut sig = signed.signature.clone();
        sig[10] ^= 0x80;
        assert!(verify(&signed.body, &sig, &key.public_key()).is_err());

        // Another key.
        let other = NotaryKey::generate().unwrap();
        assert_eq!(
            signed.verify(&other.public_key()),
            Err(AttestationError::BadSignature)
        );
        // Signed by another key that names the first key's id: refused at signing, and a
        // body with a foreign key id is refused at verification.
        assert!(matches!(
            a.sign(other.key_pair()),
            Err(AttestationError::KeyId { .. })
        ));
        let body = a.encode().unwrap();
        let forged = other.key_pair().sign(&body).as_ref().to_vec();
        assert!(matches!(
            verify(&body, &forged, &other.public_key()),
            Err(AttestationError::KeyId { .. })
        ));

        // Trailing bytes, even correctly signed.
        let mut long = signed.body.clone();
        long.push(0);
        let sig = key.key_pair().sign(&long).as_ref().to_vec();
        assert!(matches!(
            verify(&long, &sig, &key.public_key()),
            Err(AttestationError::Malformed(_))
        ));
        // Truncated, correctly signed.
        let short = &signed.body[..signed.body.len() - 1];
        let sig = key.key_pair().sign(short).as_ref().to_vec();
        assert!(matches!(
            verify(short, &sig, &key.public_key()),
            Err(AttestationError::Malformed(_))
        ));
        // Bad lengths of key and signature.
        assert!(matches!(
            verify(&signed.body, &signed.signature[..63], &key.public_key()),
            Err(AttestationError::BadLength { .. })
        ));
        assert!(matches!(
            verify(&signed.body, &signed.signature, &key.public_key()[..31]),
            Err(AttestationError::BadLength { .. })
        ));
    }

    #[test]
    fn strict_decoding() {
        let key = NotaryKey::generate().unwrap();
        let a = sample(&key);
        let bytes = a.encode().unwrap();
        let n = a.server_name.len();
        let mut v = bytes.clone();
        v[20] = 1;
        assert_eq!(Attestation::decode(&v), Err(AttestationError::Version(1)));
        // Port 0, an unknown TLS version.
        for (at, bytes2) in [(55 + n, [0u8, 0]), (57 + n, [3, 2])] {
            let mut v = bytes.clone();
            v[at..at + 2].copy_from_slice(&bytes2);
            assert!(Attestation::decode(&v).is_err(), "{bytes2:?}");
        }
        let mut v = bytes.clone();
        v[0] = b'X';
        assert!(Attestation::decode(&v).is_err());
        // Record count one too many / one too few.
        for count in [4u32, 6] {
            let mut v = bytes.clone();
            v[99 + n..103 + n].copy_from_slice(&count.to_be_bytes());
            assert!(Attestation::decode(&v).is_err(), "count {count}");
        }
        // Huge count: refused before allocating.
        let mut v = bytes.clone();
        v[99 + n..103 + n].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Attestation::decode(&v).is_err());
        // Direction 2, a sequence gap, out of order.
        let first = 103 + n;
        let mut v = bytes.clone();
        v[first] = 2;
        assert!(Attestation::decode(&v).is_err());
        let mut v = bytes.clone();
        v[first + 41 + 8] = 5;
        assert!(Attestation::decode(&v).is_err());
        let mut v = bytes.clone();
        v[first] = 1;
        assert!(Attestation::decode(&v).is_err());
        // Name: upper case, empty.
        let mut v = bytes.clone();
        v[55] = b'A';
        assert!(Attestation::decode(&v).is_err());
        for name in ["", "Api.exchange.test", "a b"] {
            let mut bad = a.clone();
            bad.server_name = name.into();
            assert!(bad.encode().is_err(), "{name:?}");
        }
        let mut bad = a.clone();
        bad.records.swap(0, 1);
        assert!(bad.encode().is_err());
        // No records at all is a valid encoding.
        let mut empty = a.clone();
        empty.records.clear();
        assert_eq!(
            Attestation::decode(&empty.encode().unwrap()).unwrap(),
            empty
        );
    }

    #[test]
    fn notary_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notary.key");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let key = NotaryKey::generate().unwrap();
        key.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = NotaryKey::load(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        // Raw DER too.
        let der = dir.path().join("notary.der");
        std::fs::write(&der, &key.pkcs8).unwrap();
        assert_eq!(NotaryKey::load(&der).unwrap().key_id(), key.key_id());
        assert!(NotaryKey::from_bytes(b"garbage").is_err());
        let wrong = pem::encode(&pem::Pem::new("CERTIFICATE", key.pkcs8.clone()));
        assert!(NotaryKey::from_bytes(wrong.as_bytes()).is_err());
        assert!(format!("{key:?}").contains("key_id"));
    }
}
