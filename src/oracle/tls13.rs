//! TLS 1.3 wire pieces for the one cipher suite the oracle accepts, TLS13_AES_128_GCM_SHA256
//! (RFC 8446): record framing of a recorded byte stream, the key schedule steps that turn a
//! traffic secret into a key and IV, per-record AEAD open (and seal, for tests and tools), the
//! inner plaintext of a protected record, and handshake message framing across records.
//!
//! Plain functions over bytes: no I/O, no state beyond what a caller passes in, errors instead
//! of panics for every malformed input. What a record *means* is decided by the callers
//! (`handshake` for the handshake flights, the parties for application data).

use ring::aead;
use ring::hkdf;
use thiserror::Error;

/// `ContentType.change_cipher_spec` (middlebox compatibility only in TLS 1.3).
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
/// `ContentType.alert`.
pub const CONTENT_ALERT: u8 = 21;
/// `ContentType.handshake`.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// `ContentType.application_data` (also the outer type of every protected record).
pub const CONTENT_APPLICATION_DATA: u8 = 23;

/// Length of a record header: type (1), legacy_record_version (2), length (2).
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest plaintext fragment: 2^14.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 14;
/// Largest protected fragment: 2^14 + 256.
pub const MAX_CIPHERTEXT_LEN: usize = (1 << 14) + 256;
/// AES-128-GCM key length.
pub const KEY_LEN: usize = 16;
/// AES-128-GCM nonce / TLS 1.3 write IV length.
pub const IV_LEN: usize = 12;
/// AES-128-GCM tag length.
pub const TAG_LEN: usize = 16;
/// SHA-256 output length (traffic secrets and transcript hashes).
pub const HASH_LEN: usize = 32;
/// Largest handshake message accepted by [`HandshakeReader`]: 256 KiB (certificate chains
/// are far smaller; the limit only bounds memory).
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 1 << 18;

/// A malformed record stream, record or handshake message, or a failed AEAD open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Tls13Error {
    /// The stream ends inside a record header or fragment.
    #[error("truncated record at byte {offset}: expected {expected} more bytes, found {found}")]
    TruncatedRecord {
        offset: usize,
        expected: usize,
        found: usize,
    },
    /// A record's content type is none of 20..=23.
    #[error("record at byte {offset}: expected content type 20..=23, found {found}")]
    BadContentType { offset: usize, found: u8 },
    /// A record's legacy_record_version is neither 0x0303 nor (initial ClientHello) 0x0301.
    #[error(
        "record at byte {offset}: expected legacy version 0x0303 or 0x0301, found {found:#06x}"
    )]
    BadRecordVersion { offset: usize, found: u16 },
    /// A record's length is zero or above 2^14 + 256.
    #[error("record at byte {offset}: expected a length in 1..={max}, found {found}")]
    BadRecordLength {
        offset: usize,
        found: usize,
        max: usize,
    },
    /// A protected record was expected (outer type application_data).
    #[error("expected a protected record (outer type 23), found content type {found}")]
    NotProtected { found: u8 },
    /// The AEAD tag did not verify: wrong key, wrong sequence number or altered bytes.
    #[error("record {seq} does not decrypt: wrong key or sequence number, or altered bytes")]
    Decrypt { seq: u64 },
    /// The inner plaintext is all zeros, so it has no content type.
    #[error("record {seq}: inner plaintext has no content type (all padding)")]
    NoInnerContentType { seq: u64 },
    /// The inner plaintext is longer than 2^14 + 1.
    #[error("record {seq}: inner plaintext of {found} bytes exceeds 2^14 + 1")]
    InnerTooLong { seq: u64, found: usize },
    /// A traffic secret is not 32 bytes.
    #[error("traffic secret: expected {HASH_LEN} bytes, found {found}")]
    BadSecretLength { found: usize },
    /// A handshake message announces a length above [`MAX_HANDSHAKE_MESSAGE_LEN`].
    #[error(
        "handshake message of type {msg_type}: length {found} exceeds {MAX_HANDSHAKE_MESSAGE_LEN}"
    )]
    HandshakeTooLong { msg_type: u8, found: usize },
    /// Plaintext too long to seal into one record.
    #[error("plaintext of {found} bytes does not fit one record")]
    PlaintextTooLong { found: usize },
}

/// One TLS record as it crossed the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Outer content type.
    pub content_type: u8,
    /// legacy_record_version.
    pub version: u16,
    /// The fragment (ciphertext and tag, for a protected record).
    pub fragment: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("content_type", &self.content_type)
            .field("version", &format_args!("{:#06x}", self.version))
            .field("len", &self.fragment.len())
            .finish()
    }
}

impl Record {
    /// The 5-byte header: type, version, length (all big-endian).
    pub fn header(&self) -> [u8; RECORD_HEADER_LEN] {
        let len = self.fragment.len() as u16;
        let [v0, v1] = self.version.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        [self.content_type, v0, v1, l0, l1]
    }

    /// The whole record, header and fragment, as it was on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + self.fragment.len());
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.fragment);
        out
    }
}

/// Splits a recorded byte stream into records, checking each header: content type 20..=23,
/// legacy version 0x0303 (or 0x0301, which a ClientHello record may carry), and a length in
/// 1..=2^14+256. A stream that ends inside a record is an error.
pub fn parse_records(stream: &[u8]) -> Result<Vec<Record>, Tls13Error> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < stream.len() {
        let rest = &stream[offset..];
        if rest.len() < RECORD_HEADER_LEN {
            return Err(Tls13Error::TruncatedRecord {
                offset,
                expected: RECORD_HEADER_LEN,
                found: rest.len(),
            });
        }
        let content_type = rest[0];
        if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(&content_type) {
            return Err(Tls13Error::BadContentType {
                offset,
                found: content_type,
            });
        }
        let version = u16::from_be_bytes([rest[1], rest[2]]);
        if version != 0x0303 && version != 0x0301 {
            return Err(Tls13Error::BadRecordVersion {
                offset,
                found: version,
            });
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > MAX_CIPHERTEXT_LEN {
            return Err(Tls13Error::BadRecordLength {
                offset,
                found: len,
                max: MAX_CIPHERTEXT_LEN,
            });
        }
        let body = &rest[RECORD_HEADER_LEN..];
        if body.len() < len {
            return Err(Tls13Error::TruncatedRecord {
                offset,
                expected: len,
                found: body.len(),
            });
        }
        records.push(Record {
            content_type,
            version,
            fragment: body[..len].to_vec(),
        });
        offset += RECORD_HEADER_LEN + len;
    }
    Ok(records)
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, context, length) with SHA-256 (RFC 8446 §7.1): the info
/// is `u16 length ‖ u8 len ‖ "tls13 " ‖ label ‖ u8 len ‖ context`. `label` is given without
/// the "tls13 " prefix.
///
/// # Panics
///
/// If `length` exceeds 255 * 32, or `label` (plus prefix) or `context` exceed 255 bytes:
/// callers pass protocol constants, never input.
pub fn hkdf_expand_label(
    secret: &[u8; HASH_LEN],
    label: &[u8],
    context: &[u8],
    length: usize,
) -> Vec<u8> {
    const PREFIX: &[u8] = b"tls13 ";
    assert!(
        PREFIX.len() + label.len() <= 255 && context.len() <= 255,
        "HKDF-Expand-Label label or context longer than 255 bytes"
    );
    let out_len = (length as u16).to_be_bytes();
    let label_len = [(PREFIX.len() + label.len()) as u8];
    let context_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&out_len, &label_len, PREFIX, label, &context_len, context];
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let mut out = vec![0u8; length];
    // Only fails for length > 255 * 32, which no TLS 1.3 label asks for.
    prk.expand(&info, OkmLen(length))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-Expand-Label output length within 255 * HashLen");
    out
}

/// Checks that a traffic secret is 32 bytes (SHA-256).
pub fn secret_from_slice(secret: &[u8]) -> Result<[u8; HASH_LEN], Tls13Error> {
    secret.try_into().map_err(|_| Tls13Error::BadSecretLength {
        found: secret.len(),
    })
}

/// The AES-128-GCM key and write IV of one direction, derived from its traffic secret.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrafficKeys {
    /// AES-128 key: HKDF-Expand-Label(secret, "key", "", 16).
    pub key: [u8; KEY_LEN],
    /// Write IV: HKDF-Expand-Label(secret, "iv", "", 12).
    pub iv: [u8; IV_LEN],
}

impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficKeys")
            .field("iv", &hex::encode(self.iv))
            .finish_non_exhaustive()
    }
}

impl TrafficKeys {
    /// Derives key and IV from a 32-byte traffic secret.
    pub fn derive(secret: &[u8]) -> Result<TrafficKeys, Tls13Error> {
        let secret = secret_from_slice(secret)?;
        let mut key = [0u8; KEY_LEN];
        let mut iv = [0u8; IV_LEN];
        key.copy_from_slice(&hkdf_expand_label(&secret, b"key", b"", KEY_LEN));
        iv.copy_from_slice(&hkdf_expand_label(&secret, b"iv", b"", IV_LEN));
        Ok(TrafficKeys { key, iv })
    }

    /// The nonce of record number `seq`: the IV XOR the 64-bit sequence number, left-padded.
    pub fn nonce(&self, seq: u64) -> [u8; IV_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[IV_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    fn aead_key(&self) -> aead::LessSafeKey {
        // A 16-byte key is always valid for AES-128-GCM.
        aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_128_GCM, &self.key).expect("16-byte AES-128 key"),
        )
    }

    /// Decrypts protected record number `seq` (AAD = its 5-byte header) and splits the inner
    /// plaintext into its real content type and content, padding removed.
    pub fn open(&self, seq: u64, record: &Record) -> Result<InnerPlaintext, Tls13Error> {
        if record.content_type != CONTENT_APPLICATION_DATA {
            return Err(Tls13Error::NotProtected {
                found: record.content_type,
            });
        }
        let mut buf = record.fragment.clone();
        let nonce = aead::Nonce::assume_unique_for_key(self.nonce(seq));
        let plain_len = self
            .aead_key()
            .open_in_place(nonce, aead::Aad::from(record.header()), &mut buf)
            .map_err(|_| Tls13Error::Decrypt { seq })?
            .len();
        buf.truncate(plain_len);
        InnerPlaintext::parse(seq, buf)
    }

    /// Encrypts `content` of type `content_type` as record number `seq` (no padding). Used by
    /// tests and tools; the oracle itself only opens.
    pub fn seal(&self, seq: u64, content_type: u8, content: &[u8]) -> Result<Record, Tls13Error> {
        if content.len() > MAX_PLAINTEXT_LEN {
            return Err(Tls13Error::PlaintextTooLong {
                found: content.len(),
            });
        }
        let mut buf = Vec::with_capacity(content.len() + 1 + TAG_LEN);
        buf.extend_from_slice(content);
        buf.push(content_type);
        let mut record = Record {
            content_type: CONTENT_APPLICATION_DATA,
            version: 0x0303,
            fragment: vec![0; buf.len() + TAG_LEN],
        };
        let aad = aead::Aad::from(record.header());
        let nonce = aead::Nonce::assume_unique_for_key(self.nonce(seq));
        // Sealing only fails for inputs far larger than a record.
        self.aead_key()
            .seal_in_place_append_tag(nonce, aad, &mut buf)
            .expect("record-sized AES-GCM seal");
        record.fragment = buf;
        Ok(record)
    }
}

/// The decrypted TLSInnerPlaintext of a protected record.
#[derive(Clone, PartialEq, Eq)]
pub struct InnerPlaintext {
    /// The real content type (the last non-zero byte).
    pub content_type: u8,
    /// The content, zero padding and type byte removed.
    pub content: Vec<u8>,
}

impl std::fmt::Debug for InnerPlaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InnerPlaintext")
            .field("content_type", &self.content_type)
            .field("len", &self.content.len())
            .finish()
    }
}

impl InnerPlaintext {
    /// Strips the zero padding and the content type byte from a decrypted fragment.
    pub fn parse(seq: u64, mut plain: Vec<u8>) -> Result<InnerPlaintext, Tls13Error> {
        if plain.len() > MAX_PLAINTEXT_LEN + 1 {
            return Err(Tls13Error::InnerTooLong {
                seq,
                found: plain.len(),
            });
        }
        let Some(type_at) = plain.iter().rposition(|&b| b != 0) else {
            return Err(Tls13Error::NoInnerContentType { seq });
        };
        let content_type = plain[type_at];
        plain.truncate(type_at);
        Ok(InnerPlaintext {
            content_type,
            content: plain,
        })
    }
}

/// One handshake message: `msg_type ‖ u24 length ‖ body`.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeMessage {
    /// HandshakeType.
    pub msg_type: u8,
    /// The message body (without the 4-byte header).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HandshakeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeMessage")
            .field("msg_type", &self.msg_type)
            .field("len", &self.body.len())
            .finish()
    }
}

impl HandshakeMessage {
    /// The message as it enters the transcript hash: header and body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = (self.body.len() as u32).to_be_bytes();
        let mut out = Vec::with_capacity(4 + self.body.len());
        out.push(self.msg_type);
        out.extend_from_slice(&len[1..]);
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reassembles handshake messages from record contents: a message may span records and a
/// record may hold several messages.
#[derive(Debug, Default)]
pub struct HandshakeReader {
    buf: Vec<u8>,
}

impl HandshakeReader {
    /// A reader with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the content of the next handshake record.
    pub fn push(&mut self, content: &[u8]) {
        self.buf.extend_from_slice(content);
    }

    /// Whether any bytes are buffered: part of a message, or a whole one not yet taken with
    /// [`HandshakeReader::next_message`]. A key change must not fall there.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<HandshakeMessage>, Tls13Error> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let msg_type = self.buf[0];
        let len = usize::from(self.buf[1]) << 16
            | usize::from(self.buf[2]) << 8
            | usize::from(self.buf[3]);
        if len > MAX_HANDSHAKE_MESSAGE_LEN {
            return Err(Tls13Error::HandshakeTooLong {
                msg_type,
                found: len,
            });
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(HandshakeMessage { msg_type, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 8448 §3 ("Simple 1-RTT Handshake"): the server handshake traffic secret and the
    /// key and IV derived from it.
    #[test]
    fn rfc8448_server_handshake_key_and_iv() {
        let secret = unhex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59
             d3 91 ad 38",
        );
        let keys = TrafficKeys::derive(&secret).unwrap();
        assert_eq!(
            keys.key.to_vec(),
            unhex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(
            keys.iv.to_vec(),
            unhex("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
        );
        // finished_key of the same secret (RFC 8448 "derive finished key").
        let secret: [u8; 32] = secret.try_into().unwrap();
        assert_eq!(
            hkdf_expand_label(&secret, b"finished", b"", 32),
            unhex(
                "00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85 c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8
                 cd c1 9f c8"
            )
        );
    }

    #[test]
    fn nonce_is_iv_xor_seq() {
        let keys = TrafficKeys {
            key: [0; 16],
            iv: [0xff; 12],
        };
        let n = keys.nonce(0x0102);
        assert_eq!(&n[..10], &[0xff; 10]);
        assert_eq!(&n[10..], &[0xfe, 0xfd]);
        assert_eq!(keys.nonce(0), [0xff; 12]);
    }

    #[test]
    fn seal_open_round_trip_and_failures() {
        let keys = TrafficKeys::derive(&[7u8; 32]).unwrap();
        let record = keys.seal(5, CONTENT_APPLICATION_DATA, b"hello").unwrap();
        let inner = keys.open(5, &record).unwrap();
        assert_eq!(inner.content_type, CONTENT_APPLICATION_DATA);
        assert_eq!(inner.content, b"hello");
        // Wrong sequence number, wrong key, flipped bit, altered header: all refused.
        assert_eq!(keys.open(4, &record), Err(Tls13Error::Decrypt { seq: 4 }));
        let other = TrafficKeys::derive(&[8u8; 32]).unwrap();
        assert!(other.open(5, &record).is_err());
        let mut flipped = record.clone();
        flipped.fragment[2] ^= 1;
        assert!(keys.open(5, &flipped).is_err());
        let mut version = record.clone();
        version.version = 0x0301;
        assert!(keys.open(5, &version).is_err());
        let mut plain = record;
        plain.content_type = CONTENT_HANDSHAKE;
        assert_eq!(
            keys.open(5, &plain),
            Err(Tls13Error::NotProtected { found: 22 })
        );
        assert!(keys.seal(0, 23, &vec![0; MAX_PLAINTEXT_LEN + 1]).is_err());
    }

    #[test]
    fn inner_plaintext_padding() {
        let inner = InnerPlaintext::parse(0, vec![b'a', b'b', 22, 0, 0, 0]).unwrap();
        assert_eq!(inner.content_type, 22);
        assert_eq!(inner.content, b"ab");
        let inner = InnerPlaintext::parse(0, vec![21]).unwrap();
        assert_eq!((inner.content_type, inner.content.len()), (21, 0));
        assert_eq!(
            InnerPlaintext::parse(3, vec![0, 0]),
            Err(Tls13Error::NoInnerContentType { seq: 3 })
        );
        assert!(InnerPlaintext::parse(0, vec![]).is_err());
        assert!(InnerPlaintext::parse(0, vec![1; MAX_PLAINTEXT_LEN + 2]).is_err());
    }

    #[test]
    fn record_parsing_checks_headers() {
        let a = Record {
            content_type: 22,
            version: 0x0301,
            fragment: vec![1, 2, 3],
        };
        let b = Record {
            content_type: 23,
            version: 0x0303,
            fragment: vec![9; 300],
        };
        let mut stream = a.to_bytes();
        stream.extend_from_slice(&b.to_bytes());
        assert_eq!(parse_records(&stream).unwrap(), vec![a.clone(), b]);
        assert_eq!(parse_records(&[]).unwrap(), vec![]);

        // Truncated inside the second header and inside the second fragment.
        assert!(matches!(
            parse_records(&stream[..10]),
            Err(Tls13Error::TruncatedRecord { offset: 8, .. })
        ));
        assert!(matches!(
            parse_records(&stream[..stream.len() - 1]),
            Err(Tls13Error::TruncatedRecord { offset: 8, .. })
        ));
        let mut bad = stream.clone();
        bad[0] = 24;
        assert!(matches!(
            parse_records(&bad),
            Err(Tls13Error::BadContentType { found: 24, .. })
        ));
        let mut bad = stream.clone();
        bad[2] = 0x04;
        assert!(matches!(
            parse_records(&bad),
            Err(Tls13Error::BadRecordVersion { .. })
        ));
        let mut bad = a.header().to_vec();
        bad[3] = 0;
        bad[4] = 0;
        assert!(matches!(
            parse_records(&bad),
            Err(Tls13Error::BadRecordLength { found: 0, .. })
        ));
        let mut big = vec![23, 3, 3];
        big.extend_from_slice(&((MAX_CIPHERTEXT_LEN + 1) as u16).to_be_bytes());
        big.resize(5 + MAX_CIPHERTEXT_LEN + 1, 0);
        assert!(matches!(
            parse_records(&big),
            Err(Tls13Error::BadRecordLength { .. })
        ));
        let mut max = vec![23, 3, 3];
        max.extend_from_slice(&(MAX_CIPHERTEXT_LEN as u16).to_be_bytes());
        max.resize(5 + MAX_CIPHERTEXT_LEN, 0);
        assert_eq!(parse_records(&max).unwrap().len(), 1);
    }

    #[test]
    fn handshake_messages_span_records() {
        let m1 = HandshakeMessage {
            msg_type: 8,
            body: vec![0, 0],
        };
        let m2 = HandshakeMessage {
            msg_type: 11,
            body: vec![5; 1000],
        };
        let mut bytes = m1.to_bytes();
        bytes.extend_from_slice(&m2.to_bytes());
        let mut reader = HandshakeReader::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(7) {
            reader.push(chunk);
            while let Some(m) = reader.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![m1, m2]);
        assert!(!reader.has_partial());
        reader.push(&[20, 0xff, 0xff, 0xff]);
        assert!(matches!(
            reader.next_message(),
            Err(Tls13Error::HandshakeTooLong { msg_type: 20, .. })
        ));
        let mut reader = HandshakeReader::new();
        reader.push(&[20, 0, 0, 32, 1]);
        assert_eq!(reader.next_message().unwrap(), None);
        assert!(reader.has_partial());
    }
}
