//! TLS 1.2 wire pieces for the two cipher suites the oracle accepts,
//! TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
//! (RFC 5246, RFC 5288, RFC 5289): the PRF with SHA-256, the key block that turns a master
//! secret and the two hello randoms into each direction's AES-128 key and implicit nonce
//! (salt), and per-record AES-128-GCM open (and seal, for tests and tools).
//!
//! Record framing is TLS 1.3's ([`super::tls13::Record`], [`super::tls13::parse_records`]):
//! the 5-byte header is the same in both versions. What differs is the protected fragment:
//! `explicit_nonce (8) ‖ ciphertext ‖ tag (16)`, the nonce `salt (4) ‖ explicit_nonce`, the
//! AAD `seq_num (8) ‖ type (1) ‖ version (2) ‖ plaintext length (2)`, and the real content
//! type stays in the header (there is no inner plaintext).
//!
//! Must not hold: handshake policy (which messages a session may carry is
//! `handshake12`'s), anything about what application data means, or I/O. Plain functions over
//! bytes; every malformed input is an error, never a panic.

use ring::{aead, hmac};
use thiserror::Error;

use super::tls13::{
    Record, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE, KEY_LEN, MAX_PLAINTEXT_LEN,
    TAG_LEN,
};

/// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (RFC 5289).
pub const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02b;
/// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (RFC 5289).
pub const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02f;

/// Length of the master secret.
pub const MASTER_SECRET_LEN: usize = 48;
/// Length of ClientHello.random and ServerHello.random.
pub const RANDOM_LEN: usize = 32;
/// Length of the implicit part of the GCM nonce (`client_write_IV` / `server_write_IV`).
pub const SALT_LEN: usize = 4;
/// Length of the explicit nonce that starts every protected fragment.
pub const EXPLICIT_NONCE_LEN: usize = 8;
/// Bytes a protected fragment carries beyond its plaintext: explicit nonce and tag.
pub const RECORD_OVERHEAD: usize = EXPLICIT_NONCE_LEN + TAG_LEN;

/// A protected record that cannot be opened or a plaintext that cannot be sealed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Tls12Error {
    /// The fragment is shorter than explicit nonce and tag.
    #[error("protected record {seq}: {found} bytes, expected at least {RECORD_OVERHEAD} (explicit nonce and tag)")]
    RecordTooShort { seq: u64, found: usize },
    /// The plaintext a fragment announces (or a caller hands in) exceeds 2^14 bytes.
    #[error("record {seq}: plaintext of {found} bytes exceeds 2^14")]
    TooLong { seq: u64, found: usize },
    /// A content type that TLS 1.2 never protects here (change_cipher_spec or unknown).
    #[error("record {seq}: content type {found} is not a protected type (21, 22 or 23)")]
    NotProtected { seq: u64, found: u8 },
    /// The AEAD tag did not verify: wrong key, wrong sequence number or altered bytes.
    #[error("record {seq} does not decrypt: wrong key or sequence number, or altered bytes")]
    Decrypt { seq: u64 },
}

/// The TLS 1.2 PRF with SHA-256 (RFC 5246 §5): fills `out` with
/// `P_SHA256(secret, label ‖ seed)`, where `P_SHA256` chains `A(i) = HMAC(secret, A(i-1))`
/// from `A(0) = label ‖ seed` and outputs `HMAC(secret, A(i) ‖ label ‖ seed)` for i = 1, 2, ….
pub fn prf(secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut a = {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(seed);
        ctx.sign()
    };
    for chunk in out.chunks_mut(32) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The AES-128-GCM key and implicit nonce (salt) of one direction.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tls12Keys {
    /// AES-128 key (`client_write_key` or `server_write_key`).
    pub key: [u8; KEY_LEN],
    /// The implicit nonce part (`client_write_IV` or `server_write_IV`).
    pub salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for Tls12Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls12Keys")
            .field("salt", &hex::encode(self.salt))
            .finish_non_exhaustive()
    }
}

/// The key block of an AEAD suite (RFC 5246 §6.3): `PRF(master_secret, "key expansion",
/// server_random ‖ client_random)`, 40 bytes split as client key (16), server key (16),
/// client salt (4), server salt (4); the MAC keys of an AEAD suite are empty. Returns
/// `(client write, server write)`.
pub fn key_block(
    master_secret: &[u8; MASTER_SECRET_LEN],
    client_random: &[u8; RANDOM_LEN],
    server_random: &[u8; RANDOM_LEN],
) -> (Tls12Keys, Tls12Keys) {
    let mut seed = [0u8; 2 * RANDOM_LEN];
    seed[..RANDOM_LEN].copy_from_slice(server_random);
    seed[RANDOM_LEN..].copy_from_slice(client_random);
    let mut block = [0u8; 2 * (KEY_LEN + SALT_LEN)];
    prf(master_secret, b"key expansion", &seed, &mut block);
    let (keys, salts) = block.split_at(2 * KEY_LEN);
    let keys_of = |i: usize| {
        let mut out = Tls12Keys {
            key: [0; KEY_LEN],
            salt: [0; SALT_LEN],
        };
        out.key
            .copy_from_slice(&keys[i * KEY_LEN..(i + 1) * KEY_LEN]);
        out.salt
            .copy_from_slice(&salts[i * SALT_LEN..(i + 1) * SALT_LEN]);
        out
    };
    (keys_of(0), keys_of(1))
}

/// The additional data of record `seq`: `seq_num ‖ type ‖ version ‖ plaintext length`.
fn aad(seq: u64, content_type: u8, version: u16, plain_len: usize) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..8].copy_from_slice(&seq.to_be_bytes());
    out[8] = content_type;
    out[9..11].copy_from_slice(&version.to_be_bytes());
    // Callers bound plain_len by 2^14, so it fits 16 bits.
    out[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
    out
}

fn check_protected_type(seq: u64, content_type: u8) -> Result<(), Tls12Error> {
    match content_type {
        CONTENT_ALERT | CONTENT_HANDSHAKE | CONTENT_APPLICATION_DATA => Ok(()),
        found => Err(Tls12Error::NotProtected { seq, found }),
    }
}

impl Tls12Keys {
    fn aead_key(&self) -> aead::LessSafeKey {
        // A 16-byte key is always valid for AES-128-GCM.
        aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_128_GCM, &self.key).expect("16-byte AES-128 key"),
        )
    }

    /// The 12-byte GCM nonce for an explicit nonce: `salt ‖ explicit`.
    pub fn nonce(&self, explicit: &[u8; EXPLICIT_NONCE_LEN]) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..SALT_LEN].copy_from_slice(&self.salt);
        nonce[SALT_LEN..].copy_from_slice(explicit);
        nonce
    }

    /// Decrypts protected record number `seq` of its direction and returns its plaintext
    /// (whose content type is the record header's).
    pub fn open(&self, seq: u64, record: &Record) -> Result<Vec<u8>, Tls12Error> {
        check_protected_type(seq, record.content_type)?;
        let found = record.fragment.len();
        if found < RECORD_OVERHEAD {
            return Err(Tls12Error::RecordTooShort { seq, found });
        }
        let plain_len = found - RECORD_OVERHEAD;
        if plain_len > MAX_PLAINTEXT_LEN {
            return Err(Tls12Error::TooLong {
                seq,
                found: plain_len,
            });
        }
        let (explicit, sealed) = record.fragment.split_at(EXPLICIT_NONCE_LEN);
        let mut explicit_nonce = [0u8; EXPLICIT_NONCE_LEN];
        explicit_nonce.copy_from_slice(explicit);
        let nonce = aead::Nonce::assume_unique_for_key(self.nonce(&explicit_nonce));
        let aad = aad(seq, record.content_type, record.version, plain_len);
        let mut buf = sealed.to_vec();
        let len = self
            .aead_key()
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| Tls12Error::Decrypt { seq })?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Encrypts `content` as record number `seq` of type `content_type` (version 0x0303), with
    /// the sequence number as explicit nonce, as rustls does. Used by tests and tools; the
    /// oracle itself only opens.
    pub fn seal(&self, seq: u64, content_type: u8, content: &[u8]) -> Result<Record, Tls12Error> {
        check_protected_type(seq, content_type)?;
        if content.len() > MAX_PLAINTEXT_LEN {
            return Err(Tls12Error::TooLong {
                seq,
                found: content.len(),
            });
        }
        let explicit = seq.to_be_bytes();
        let nonce = aead::Nonce::assume_unique_for_key(self.nonce(&explicit));
        let aad = aad(seq, content_type, 0x0303, content.len());
        let mut buf = content.to_vec();
        // Sealing only fails for inputs far larger than a record.
        self.aead_key()
            .seal_in_place_append_tag(nonce, aead::Aad::from(aad), &mut buf)
            .expect("record-sized AES-GCM seal");
        let mut fragment = Vec::with_capacity(EXPLICIT_NONCE_LEN + buf.len());
        fragment.extend_from_slice(&explicit);
        fragment.extend_from_slice(&buf);
        Ok(Record {
            content_type,
            version: 0x0303,
            fragment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// The TLS 1.2 PRF-SHA256 vector posted to the IETF TLS list (also in rustls's, Go's
    /// and Zig's test suites): 16-byte secret and seed, label "test label", 100 bytes out.
    #[test]
    fn prf_sha256_known_answer() {
        let secret = unhex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = unhex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let expected = unhex(
            "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4
             e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17
             ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1
             22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66",
        );
        assert_eq!(expected.len(), 100);
        let mut out = [0u8; 100];
        prf(&secret, b"test label", &seed, &mut out);
        assert_eq!(out.to_vec(), expected);
        // A shorter output is a prefix; another label or seed changes everything.
        let mut short = [0u8; 45];
        prf(&secret, b"test label", &seed, &mut short);
        assert_eq!(&short[..], &expected[..45]);
        prf(&secret, b"test labem", &seed, &mut out);
        assert_ne!(out[..16], expected[..16]);
    }

    #[test]
    fn key_block_layout() {
        let master = [7u8; 48];
        let client_random = [1u8; 32];
        let server_random = [2u8; 32];
        let (client, server) = key_block(&master, &client_random, &server_random);
        let mut seed = server_random.to_vec();
        seed.extend_from_slice(&client_random);
        let mut block = [0u8; 40];
        prf(&master, b"key expansion", &seed, &mut block);
        assert_eq!(client.key[..], block[..16]);
        assert_eq!(server.key[..], block[16..32]);
        assert_eq!(client.salt[..], block[32..36]);
        assert_eq!(server.salt[..], block[36..40]);
        // The randoms are not interchangeable.
        let (swapped, _) = key_block(&master, &server_random, &client_random);
        assert_ne!(swapped, client);
        // Debug never shows the key.
        let shown = format!("{client:?}");
        assert!(!shown.contains(&hex::encode(client.key)), "{shown}");
        assert!(shown.contains(&hex::encode(client.salt)), "{shown}");
    }

    #[test]
    fn seal_open_round_trip_and_tampering() {
        let (keys, other) = key_block(&[9u8; 48], &[3u8; 32], &[4u8; 32]);
        let record = keys.seal(5, CONTENT_APPLICATION_DATA, b"hello").unwrap();
        assert_eq!(record.content_type, CONTENT_APPLICATION_DATA);
        assert_eq!(record.version, 0x0303);
        assert_eq!(record.fragment.len(), 5 + RECORD_OVERHEAD);
        assert_eq!(record.fragment[..8], 5u64.to_be_bytes());
        assert_eq!(keys.open(5, &record).unwrap(), b"hello");
        let empty = keys.seal(0, CONTENT_HANDSHAKE, b"").unwrap();
        assert_eq!(keys.open(0, &empty).unwrap(), b"");

        // Wrong sequence number, wrong key: refused.
        assert_eq!(keys.open(4, &record), Err(Tls12Error::Decrypt { seq: 4 }));
        assert_eq!(other.open(5, &record), Err(Tls12Error::Decrypt { seq: 5 }));
        // Every byte of the fragment is authenticated: explicit nonce, ciphertext, tag.
        for at in [0, 7, 8, 12, record.fragment.len() - 1] {
            let mut flipped = record.clone();
            flipped.fragment[at] ^= 1;
            assert_eq!(
                keys.open(5, &flipped),
                Err(Tls12Error::Decrypt { seq: 5 }),
                "byte {at}"
            );
        }
        // So are the header's type and version.
        let mut retyped = record.clone();
        retyped.content_type = CONTENT_ALERT;
        assert_eq!(keys.open(5, &retyped), Err(Tls12Error::Decrypt { seq: 5 }));
        let mut version = record.clone();
        version.version = 0x0301;
        assert_eq!(keys.open(5, &version), Err(Tls12Error::Decrypt { seq: 5 }));
        // A fragment cut short (length is in the AAD) or too short to hold nonce and tag.
        let mut cut = record.clone();
        cut.fragment.pop();
        assert_eq!(keys.open(5, &cut), Err(Tls12Error::Decrypt { seq: 5 }));
        let stub = Record {
            fragment: vec![0; RECORD_OVERHEAD - 1],
            ..record.clone()
        };
        assert_eq!(
            keys.open(5, &stub),
            Err(Tls12Error::RecordTooShort {
                seq: 5,
                found: RECORD_OVERHEAD - 1
            })
        );
        let ccs = Record {
            content_type: 20,
            ..record.clone()
        };
        assert_eq!(
            keys.open(5, &ccs),
            Err(Tls12Error::NotProtected { seq: 5, found: 20 })
        );
        let big = Record {
            fragment: vec![0; MAX_PLAINTEXT_LEN + RECORD_OVERHEAD + 1],
            ..record
        };
        assert!(matches!(
            keys.open(5, &big),
            Err(Tls12Error::TooLong { .. })
        ));
        assert!(keys
            .seal(0, CONTENT_APPLICATION_DATA, &vec![0; MAX_PLAINTEXT_LEN + 1])
            .is_err());
        assert!(keys.seal(0, 20, b"\x01").is_err());
        let max = keys
            .seal(1, CONTENT_APPLICATION_DATA, &vec![0; MAX_PLAINTEXT_LEN])
            .unwrap();
        assert_eq!(keys.open(1, &max).unwrap().len(), MAX_PLAINTEXT_LEN);
    }
}
