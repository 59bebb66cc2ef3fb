//! The notary's check of a recorded server handshake: TLS 1.3 here, TLS 1.2 in
//! [`super::handshake12`]. [`verify`] reads the plaintext ClientHello and ServerHello, which
//! are the same in both versions, picks the version the ServerHello negotiated and hands the
//! rest to that version's check. The parsing helpers both share (byte cursor, extensions,
//! ClientHello, certificate chain) live here.
//!
//! TLS 1.3 input: the byte streams the notary relayed in each direction, the server handshake
//! traffic secret revealed by the prover afterwards, the server name the prover asked for, the
//! time and the notary's root store. The check refuses anything but a full TLS 1.3 handshake
//! with TLS13_AES_128_GCM_SHA256, decrypts the server's encrypted flight with keys derived
//! from the revealed secret and checks the certificate chain, CertificateVerify and the server
//! Finished.
//!
//! Why the revealed secret cannot be made up: the notary recorded the server's ciphertext
//! itself, so a wrong secret fails the AEAD open of the first record; and the server Finished
//! MAC, keyed by the secret, must match the transcript. The CertificateVerify signature binds
//! the server's key to the transcript, which holds both key shares, so the prover cannot have
//! swapped in a handshake of its own.
//!
//! What this module cannot see: application data, including a server KeyUpdate or
//! NewSessionTicket (both are handshake messages inside records protected with the
//! application traffic keys, which the notary never holds). Those are checked later by the
//! parties, who decrypt the application records inside the MPC and refuse a KeyUpdate.
//!
//! Assumption about the client's records: after its ClientHello (and an optional
//! change_cipher_spec), the client's encrypted handshake flight is exactly one record (its
//! Finished; client authentication is refused). The next protected record is the first
//! application data record. If a client split its Finished, the parties' decryption of
//! "application record 0" with the client application key would fail, so a wrong guess
//! cannot be exploited, only refused.
//!
//! No I/O; deterministic given its inputs.

use std::time::Duration;

use ring::{digest, hmac};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use thiserror::Error;

use super::tls13::{
    self, parse_records, HandshakeMessage, HandshakeReader, Record, Tls13Error, TrafficKeys,
    CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HANDSHAKE,
    HASH_LEN,
};

/// The one cipher suite accepted: TLS13_AES_128_GCM_SHA256.
pub const TLS13_AES_128_GCM_SHA256: u16 = 0x1301;

/// The TLS version of a verified session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246) with ECDHE and AES-128-GCM: see [`super::handshake12`].
    Tls12,
    /// TLS 1.3 (RFC 8446) with TLS13_AES_128_GCM_SHA256.
    Tls13,
}

impl TlsVersion {
    /// The protocol version number on the wire: 0x0303 or 0x0304.
    pub fn code(self) -> u16 {
        match self {
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version of a wire code, if it is one of the two.
    pub fn from_code(code: u16) -> Option<TlsVersion> {
        match code {
            0x0303 => Some(TlsVersion::Tls12),
            0x0304 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        })
    }
}

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_ENCRYPTED_EXTENSIONS: u8 = 8;
const HS_CERTIFICATE: u8 = 11;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_CERTIFICATE_VERIFY: u8 = 15;
const HS_FINISHED: u8 = 20;

const EXT_SERVER_NAME: u16 = 0;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_EARLY_DATA: u16 = 42;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;

const SCHEME_ECDSA_SECP256R1_SHA256: u16 = 0x0403;
const SCHEME_RSA_PSS_RSAE_SHA256: u16 = 0x0804;
const SCHEME_ED25519: u16 = 0x0807;

/// ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A direction of the recorded session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Bytes the client sent.
    Client,
    /// Bytes the server sent.
    Server,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client→server",
            Side::Server => "server→client",
        })
    }
}

/// Why a recorded handshake was refused.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// The recorded bytes of one direction are not a sequence of well-formed records.
    #[error("{side} stream: {source}")]
    Records {
        side: Side,
        #[source]
        source: Tls13Error,
    },
    /// A message does not parse.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A record of the wrong kind at this point of the handshake.
    #[error("{side} record {index}: expected {expected}, found content type {found}")]
    UnexpectedRecord {
        side: Side,
        index: usize,
        expected: &'static str,
        found: u8,
    },
    /// A handshake message out of order.
    #[error("expected handshake message {expected}, found type {found}")]
    UnexpectedMessage { expected: &'static str, found: u8 },
    /// The stream ended before the handshake did.
    #[error("{side} stream ends before {what}: was the whole session recorded?")]
    Incomplete { side: Side, what: &'static str },
    /// A handshake message shares a record with data protected under other keys.
    #[error("{side}: {what} does not end at a record boundary (a key change must)")]
    KeyChangeMidRecord { side: Side, what: &'static str },
    /// The server sent an alert.
    #[error("server sent alert level {level} description {description}")]
    ServerAlert { level: u8, description: u8 },
    /// The server asked for a second ClientHello.
    #[error("server sent a HelloRetryRequest: not supported; retry with a key share the server accepts (X25519 or P-256)")]
    HelloRetryRequest,
    /// The ServerHello's supported_versions selects something other than TLS 1.3.
    #[error("expected TLS 1.3 (supported_versions 0x0304), found {found}")]
    NotTls13 { found: String },
    /// A ServerHello without supported_versions whose version is not TLS 1.2.
    #[error("ServerHello negotiates version {found:#06x}: expected TLS 1.2 (0x0303) or TLS 1.3 (supported_versions 0x0304)")]
    Version { found: u16 },
    /// A TLS 1.2 session for which the prover revealed a secret: TLS 1.2 needs none.
    #[error("TLS 1.2 session: the revealed secret must be empty (the notary uses no key in TLS 1.2), found {found} bytes")]
    SecretForTls12 { found: usize },
    /// A TLS 1.2 ServerHello chose another cipher suite.
    #[error("TLS 1.2 cipher suite {found:#06x}: expected TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b) or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xc02f)")]
    Tls12CipherSuite { found: u16 },
    /// A TLS 1.2 abbreviated (resumed) handshake: it carries no certificate.
    #[error("TLS 1.2 resumption ({0}): an abbreviated handshake carries no certificate; a full handshake is required")]
    Resumption(&'static str),
    /// A TLS 1.2 ServerHello carries RFC 8446's downgrade sentinel although the client offered
    /// TLS 1.3.
    #[error("ServerHello.random carries the TLS 1.3 downgrade sentinel: the server supports TLS 1.3, so a TLS 1.2 session with it means the hellos were tampered with")]
    Downgrade,
    /// A ServerKeyExchange or ClientKeyExchange on another curve than the three accepted.
    #[error("ECDHE named curve {found}: expected x25519 (29), secp256r1 (23) or secp384r1 (24)")]
    Curve { found: u16 },
    /// A ServerKeyExchange signature scheme not accepted with the negotiated suite.
    #[error("ServerKeyExchange signature scheme {scheme:#06x} does not fit cipher suite {suite:#06x}: ECDHE_ECDSA takes ecdsa_secp256r1_sha256 (0x0403) or ecdsa_secp384r1_sha384 (0x0503); ECDHE_RSA takes rsa_pkcs1_sha256/384/512 (0x0401, 0x0501, 0x0601) or rsa_pss_rsae_sha256/384/512 (0x0804..0x0806)")]
    Tls12SignatureScheme { suite: u16, scheme: u16 },
    /// The ServerKeyExchange signature does not verify.
    #[error("ServerKeyExchange signature over the randoms and the ECDHE parameters does not verify with the certificate's key: {source}")]
    ServerKeyExchange {
        #[source]
        source: webpki::Error,
    },
    /// The TLS 1.2 encrypted Finished record does not have the length of one Finished message.
    #[error("{side} record {index}: encrypted Finished of {found} bytes, expected {expected} (explicit nonce, one 16-byte Finished message, tag)")]
    EncryptedFinished {
        side: Side,
        index: usize,
        found: usize,
        expected: usize,
    },
    /// A TLS 1.2 handshake record after the Finished: renegotiation, or a message hidden there.
    #[error(
        "{side} record {index}: a handshake record after the Finished (renegotiation) is refused"
    )]
    Renegotiation { side: Side, index: usize },
    /// The server chose another cipher suite.
    #[error("expected cipher suite TLS13_AES_128_GCM_SHA256 (0x1301), found {found:#06x}")]
    CipherSuite { found: u16 },
    /// A PSK (resumption) handshake: it carries no certificate.
    #[error("{0} carries a pre_shared_key extension: resumption and PSK handshakes carry no certificate; a full handshake is required")]
    PreSharedKey(&'static str),
    /// 0-RTT early data was offered or accepted.
    #[error("{0} carries an early_data extension: 0-RTT is refused")]
    EarlyData(&'static str),
    /// An extension the message may not carry, or a duplicate.
    #[error("{what}: unexpected or duplicate extension {ext}")]
    BadExtension { what: &'static str, ext: u16 },
    /// ServerHello's session id is not the ClientHello's.
    #[error("ServerHello legacy_session_id_echo differs from the ClientHello's session id")]
    SessionIdMismatch,
    /// The ClientHello's SNI is not the expected server name.
    #[error("ClientHello server_name: expected {expected:?}, found {found:?}")]
    ServerNameMismatch {
        expected: String,
        found: Option<String>,
    },
    /// The expected server name is not a DNS name or IP address.
    #[error("server name {0:?} is not a valid DNS name or IP address")]
    BadServerName(String),
    /// The revealed secret does not decrypt the server's flight.
    #[error("server handshake record {index} does not decrypt: the revealed secret is not this session's server handshake traffic secret, or the recording was altered")]
    Decrypt { index: usize },
    /// The server asked for a client certificate.
    #[error("server requested a client certificate: client authentication is not supported")]
    ClientAuthRequested,
    /// The chain does not verify against the roots at the given time.
    #[error("certificate chain not valid at unix time {now} for the notary's roots: {source}")]
    Chain {
        now: u64,
        #[source]
        source: webpki::Error,
    },
    /// The end-entity certificate is not valid for the server name.
    #[error("certificate not valid for server name {name:?}: {source}")]
    Name {
        name: String,
        #[source]
        source: webpki::Error,
    },
    /// CertificateVerify uses a scheme other than the three accepted.
    #[error("CertificateVerify scheme {found:#06x}: expected ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256 or ed25519")]
    SignatureScheme { found: u16 },
    /// The CertificateVerify signature does not verify.
    #[error("CertificateVerify signature does not verify with the certificate's key: {source}")]
    CertificateVerify {
        #[source]
        source: webpki::Error,
    },
    /// The server Finished MAC does not match.
    #[error("server Finished does not match the transcript under the revealed secret")]
    Finished,
    /// A traffic secret of the wrong length.
    #[error("revealed secret: {0}")]
    Secret(#[source] Tls13Error),
}

/// What the notary needs to check, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeCheck<'a> {
    /// Every byte the client sent, as relayed.
    pub client_to_server: &'a [u8],
    /// Every byte the server sent, as relayed.
    pub server_to_client: &'a [u8],
    /// The server handshake traffic secret revealed by the prover: 32 bytes for TLS 1.3,
    /// empty for TLS 1.2 (the notary needs no key there).
    pub server_handshake_secret: &'a [u8],
    /// The server name the prover asked for (DNS name or IP address).
    pub server_name: &'a str,
    /// Current time, unix seconds.
    pub now: u64,
    /// Trust anchors.
    pub roots: &'a RootCertStore,
}

/// A verified handshake.
#[derive(Debug, Clone)]
pub struct HandshakeSummary {
    /// The negotiated version.
    pub version: TlsVersion,
    /// The server name the certificate was checked against.
    pub server_name: String,
    /// TLS 1.3: SHA-256 of ClientHello ‖ … ‖ server Finished.
    ///
    /// TLS 1.2: SHA-256 of ClientHello ‖ ServerHello ‖ Certificate ‖ ServerKeyExchange ‖
    /// ServerHelloDone ‖ ClientKeyExchange, every handshake message the notary can read (the
    /// Finished messages are encrypted; a NewSessionTicket is left out). It is RFC 7627's
    /// session_hash and the hash the client Finished covers.
    pub transcript_hash: [u8; HASH_LEN],
    /// ClientHello.random.
    pub client_random: [u8; 32],
    /// ServerHello.random.
    pub server_random: [u8; 32],
    /// The certificates as the server sent them, end-entity first.
    pub certificates: Vec<CertificateDer<'static>>,
    /// Every client→server record.
    pub client_records: Vec<Record>,
    /// Every server→client record.
    pub server_records: Vec<Record>,
    /// Index in `client_records` of the first application-data record: the first record
    /// after the client's encrypted Finished. All later records are protected with the client
    /// application key, sequence numbers from [`HandshakeSummary::first_app_seq`].
    pub client_app_start: usize,
    /// Index in `server_records` of the first application-data record (after the server's
    /// encrypted Finished).
    pub server_app_start: usize,
}

impl HandshakeSummary {
    /// The end-entity certificate.
    pub fn end_entity(&self) -> &CertificateDer<'static> {
        &self.certificates[0]
    }

    /// Records of the handshake, as `[client, server]` counts (plaintext, change_cipher_spec
    /// and protected handshake records).
    pub fn handshake_records(&self) -> [usize; 2] {
        [self.client_app_start, self.server_app_start]
    }

    /// The sequence number of the first application record of each direction: 0 in TLS 1.3
    /// (the application traffic keys start afresh), 1 in TLS 1.2 (the same keys protected
    /// the Finished as record 0). Application record `i` has sequence number
    /// `first_app_seq() + i`.
    pub fn first_app_seq(&self) -> u64 {
        match self.version {
            TlsVersion::Tls12 => 1,
            TlsVersion::Tls13 => 0,
        }
    }

    /// The application-data records of one direction, in sequence-number order.
    pub fn application_records(&self, side: Side) -> &[Record] {
        match side {
            Side::Client => &self.client_records[self.client_app_start..],
            Side::Server => &self.server_records[self.server_app_start..],
        }
    }
}

/// A byte cursor for TLS structures; every read checks bounds.
pub(super) struct Cursor<'a> {
    what: &'static str,
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(super) fn new(what: &'static str, data: &'a [u8]) -> Self {
        Cursor { what, data }
    }

    pub(super) fn err(&self, detail: impl Into<String>) -> HandshakeError {
        HandshakeError::Malformed {
            what: self.what,
            detail: detail.into(),
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], HandshakeError> {
        if self.data.len() < n {
            return Err(self.err(format!(
                "expected {n} more bytes, found {}",
                self.data.len()
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, HandshakeError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, HandshakeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u24(&mut self) -> Result<usize, HandshakeError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    pub(super) fn vec8(&mut self) -> Result<&'a [u8], HandshakeError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    pub(super) fn vec16(&mut self) -> Result<&'a [u8], HandshakeError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    pub(super) fn vec24(&mut self) -> Result<&'a [u8], HandshakeError> {
        let n = self.u24()?;
        self.take(n)
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.data.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(super) fn finish(&self) -> Result<(), HandshakeError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.data.len())))
        }
    }
}

/// Parses an extension block into (type, data) pairs, refusing duplicates.
pub(super) fn extensions<'a>(
    what: &'static str,
    block: &'a [u8],
) -> Result<Vec<(u16, &'a [u8])>, HandshakeError> {
    let mut c = Cursor::new(what, block);
    let mut out: Vec<(u16, &[u8])> = Vec::new();
    while !c.is_empty() {
        let ext = c.u16()?;
        let data = c.vec16()?;
        if out.iter().any(|(t, _)| *t == ext) {
            return Err(HandshakeError::BadExtension { what, ext });
        }
        out.push((ext, data));
    }
    Ok(out)
}

/// What the version checks need from the ClientHello.
pub(super) struct ClientHelloInfo {
    pub(super) random: [u8; 32],
    pub(super) session_id: Vec<u8>,
    pub(super) sni: Option<String>,
    /// Whether supported_versions lists TLS 1.3.
    pub(super) offers_tls13: bool,
}

pub(super) fn parse_client_hello(body: &[u8]) -> Result<ClientHelloInfo, HandshakeError> {
    const WHAT: &str = "ClientHello";
    let mut c = Cursor::new(WHAT, body);
    let version = c.u16()?;
    if version != 0x0303 {
        return Err(c.err(format!("legacy_version {version:#06x}, expected 0x0303")));
    }
    let mut random = [0u8; 32];
    random.copy_from_slice(c.take(32)?);
    let session_id = c.vec8()?.to_vec();
    if session_id.len() > 32 {
        return Err(c.err("legacy_session_id longer than 32 bytes"));
    }
    let suites = c.vec16()?;
    if suites.len() % 2 != 0 {
        return Err(c.err("odd cipher_suites length"));
    }
    c.vec8()?;
    let exts = extensions(WHAT, c.vec16()?)?;
    c.finish()?;
    let mut sni = None;
    let mut offers_tls13 = false;
    for (ext, data) in exts {
        match ext {
            EXT_PRE_SHARED_KEY => return Err(HandshakeError::PreSharedKey(WHAT)),
            EXT_SUPPORTED_VERSIONS => {
                let mut outer = Cursor::new("ClientHello supported_versions", data);
                let mut versions = Cursor::new("ClientHello supported_versions", outer.vec8()?);
                outer.finish()?;
                while !versions.is_empty() {
                    offers_tls13 |= versions.u16()? == TlsVersion::Tls13.code();
                }
            }
            EXT_EARLY_DATA => return Err(HandshakeError::EarlyData(WHAT)),
            EXT_SERVER_NAME => {
                let mut list = Cursor::new("ClientHello server_name", data);
                let mut names = Cursor::new("ClientHello server_name", list.vec16()?);
                list.finish()?;
                while !names.is_empty() {
                    let name_type = names.u8()?;
                    let name = names.vec16()?;
                    if name_type == 0 {
                        if sni.is_some() {
                            return Err(names.err("two host_name entries"));
                        }
                        let name = std::str::from_utf8(name)
                            .map_err(|_| names.err("host_name is not ASCII"))?;
                        sni = Some(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ClientHelloInfo {
        random,
        session_id,
        sni,
        offers_tls13,
    })
}

fn parse_server_hello(body: &[u8], client: &ClientHelloInfo) -> Result<(), HandshakeError> {
    const WHAT: &str = "ServerHello";
    let mut c = Cursor::new(WHAT, body);
    let version = c.u16()?;
    let random = c.take(32)?;
    if random == HELLO_RETRY_REQUEST_RANDOM {
        return Err(HandshakeError::HelloRetryRequest);
    }
    let session_id = c.vec8()?;
    let suite = c.u16()?;
    let compression = c.u8()?;
    let exts = extensions(WHAT, c.vec16()?)?;
    c.finish()?;
    // Refuse PSK before anything else: it is the one way a handshake skips the certificate.
    if exts.iter().any(|(t, _)| *t == EXT_PRE_SHARED_KEY) {
        return Err(HandshakeError::PreSharedKey(WHAT));
    }
    let selected = exts
        .iter()
        .find(|(t, _)| *t == EXT_SUPPORTED_VERSIONS)
        .map(|(_, d)| *d);
    match selected {
        Some([0x03, 0x04]) => {}
        Some(other) => {
            return Err(HandshakeError::NotTls13 {
                found: format!("supported_versions {}", hex::encode(other)),
            })
        }
        None => {
            return Err(HandshakeError::NotTls13 {
                found: format!("no supported_versions, legacy_version {version:#06x}"),
            })
        }
    }
    if version != 0x0303 {
        return Err(c.err(format!("legacy_version {version:#06x}, expected 0x0303")));
    }
    if suite != TLS13_AES_128_GCM_SHA256 {
        return Err(HandshakeError::CipherSuite { found: suite });
    }
    if compression != 0 {
        return Err(c.err(format!("compression method {compression}, expected 0")));
    }
    if session_id != client.session_id.as_slice() {
        return Err(HandshakeError::SessionIdMismatch);
    }
    for (ext, _) in &exts {
        if *ext != EXT_SUPPORTED_VERSIONS && *ext != EXT_KEY_SHARE {
            return Err(HandshakeError::BadExtension {
                what: WHAT,
                ext: *ext,
            });
        }
    }
    if !exts.iter().any(|(t, _)| *t == EXT_KEY_SHARE) {
        return Err(c.err("no key_share: not a full (EC)DHE handshake"));
    }
    Ok(())
}

fn parse_encrypted_extensions(body: &[u8]) -> Result<(), HandshakeError> {
    const WHAT: &str = "EncryptedExtensions";
    let mut c = Cursor::new(WHAT, body);
    let exts = extensions(WHAT, c.vec16()?)?;
    c.finish()?;
    if exts.iter().any(|(t, _)| *t == EXT_EARLY_DATA) {
        return Err(HandshakeError::EarlyData(WHAT));
    }
    Ok(())
}

fn parse_certificate(body: &[u8]) -> Result<Vec<CertificateDer<'static>>, HandshakeError> {
    const WHAT: &str = "Certificate";
    let mut c = Cursor::new(WHAT, body);
    if !c.vec8()?.is_empty() {
        return Err(c.err("non-empty certificate_request_context"));
    }
    let mut list = Cursor::new(WHAT, c.vec24()?);
    c.finish()?;
    let mut certs = Vec::new();
    while !list.is_empty() {
        let der = list.vec24()?;
        if der.is_empty() {
            return Err(list.err("empty cert_data"));
        }
        list.vec16()?;
        certs.push(CertificateDer::from(der.to_vec()));
    }
    if certs.is_empty() {
        return Err(c.err("no certificate"));
    }
    Ok(certs)
}

fn signature_algorithm(
    scheme: u16,
) -> Result<&'static dyn rustls::pki_types::SignatureVerificationAlgorithm, HandshakeError> {
    match scheme {
        SCHEME_ECDSA_SECP256R1_SHA256 => Ok(webpki::ring::ECDSA_P256_SHA256),
        SCHEME_RSA_PSS_RSAE_SHA256 => Ok(webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY),
        SCHEME_ED25519 => Ok(webpki::ring::ED25519),
        found => Err(HandshakeError::SignatureScheme { found }),
    }
}

/// Checks the chain `certs` (end-entity first, non-empty) against `roots` at `now` for
/// server authentication, and the end-entity certificate against `server_name`.
pub(super) fn check_chain(
    certs: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    name_text: &str,
    now: u64,
    roots: &RootCertStore,
) -> Result<(), HandshakeError> {
    let ee = webpki::EndEntityCert::try_from(&certs[0])
        .map_err(|source| HandshakeError::Chain { now, source })?;
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    ee.verify_for_usage(
        algs,
        &roots.roots,
        &certs[1..],
        UnixTime::since_unix_epoch(Duration::from_secs(now)),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|source| HandshakeError::Chain { now, source })?;
    ee.verify_is_valid_for_subject_name(server_name)
        .map_err(|source| HandshakeError::Name {
            name: name_text.to_string(),
            source,
        })?;
    Ok(())
}

fn check_certificate_verify(
    body: &[u8],
    cert: &CertificateDer<'_>,
    transcript_hash: &[u8],
) -> Result<(), HandshakeError> {
    const WHAT: &str = "CertificateVerify";
    let mut c = Cursor::new(WHAT, body);
    let scheme = c.u16()?;
    let signature = c.vec16()?;
    c.finish()?;
    let alg = signature_algorithm(scheme)?;
    let mut message = vec![0x20u8; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify");
    message.push(0);
    message.extend_from_slice(transcript_hash);
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|source| HandshakeError::CertificateVerify { source })?;
    ee.verify_signature(alg, &message, signature)
        .map_err(|source| HandshakeError::CertificateVerify { source })
}

fn check_finished(
    body: &[u8],
    secret: &[u8; HASH_LEN],
    transcript_hash: &[u8],
) -> Result<(), HandshakeError> {
    let finished_key = tls13::hkdf_expand_label(secret, b"finished", b"", HASH_LEN);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &finished_key);
    hmac::verify(&key, transcript_hash, body).map_err(|_| HandshakeError::Finished)
}

pub(super) fn records_of(side: Side, stream: &[u8]) -> Result<Vec<Record>, HandshakeError> {
    parse_records(stream).map_err(|source| HandshakeError::Records { side, source })
}

pub(super) fn alert_of(content: &[u8]) -> HandshakeError {
    HandshakeError::ServerAlert {
        level: content.first().copied().unwrap_or(0),
        description: content.get(1).copied().unwrap_or(0),
    }
}

/// Reads the ClientHello from the client's plaintext records; returns it and the index of the
/// first record after it.
fn client_hello(records: &[Record]) -> Result<(HandshakeMessage, usize), HandshakeError> {
    let mut reader = HandshakeReader::new();
    for (index, record) in records.iter().enumerate() {
        if record.content_type != CONTENT_HANDSHAKE {
            return Err(HandshakeError::UnexpectedRecord {
                side: Side::Client,
                index,
                expected: "a plaintext handshake record (ClientHello)",
                found: record.content_type,
            });
        }
        reader.push(&record.fragment);
        let msg = reader
            .next_message()
            .map_err(|source| HandshakeError::Records {
                side: Side::Client,
                source,
            })?;
        if let Some(msg) = msg {
            if msg.msg_type != HS_CLIENT_HELLO {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "ClientHello",
                    found: msg.msg_type,
                });
            }
            if reader.has_partial() {
                return Err(HandshakeError::KeyChangeMidRecord {
                    side: Side::Client,
                    what: "ClientHello",
                });
            }
            return Ok((msg, index + 1));
        }
    }
    Err(HandshakeError::Incomplete {
        side: Side::Client,
        what: "the ClientHello",
    })
}

/// Index of the client's first application-data record: after the ClientHello, optional
/// change_cipher_spec records, and one protected record (the client Finished).
fn client_app_start(records: &[Record], from: usize) -> Result<usize, HandshakeError> {
    for (index, record) in records.iter().enumerate().skip(from) {
        match record.content_type {
            CONTENT_CHANGE_CIPHER_SPEC if record.fragment == [1] => {}
            CONTENT_APPLICATION_DATA => return Ok(index + 1),
            found => {
                return Err(HandshakeError::UnexpectedRecord {
                    side: Side::Client,
                    index,
                    expected: "change_cipher_spec or the protected client Finished (a second ClientHello is refused)",
                    found,
                })
            }
        }
    }
    Err(HandshakeError::Incomplete {
        side: Side::Client,
        what: "the client Finished",
    })
}

/// The plaintext hellos of a recorded session, parsed and checked the same way for both
/// versions, and the records of both directions: what a version's check starts from.
pub(super) struct Hellos<'a> {
    pub(super) check: &'a HandshakeCheck<'a>,
    pub(super) server_name: ServerName<'a>,
    pub(super) client_records: Vec<Record>,
    pub(super) client_hello: HandshakeMessage,
    pub(super) client_info: ClientHelloInfo,
    /// Index of the first client record after the ClientHello.
    pub(super) after_client_hello: usize,
    pub(super) server_records: Vec<Record>,
    pub(super) server_hello: HandshakeMessage,
    pub(super) server_random: [u8; 32],
    /// Index of the first server record after the one that completed the ServerHello.
    pub(super) after_server_hello: usize,
    /// Handshake bytes after the ServerHello in its record (more messages, in TLS 1.2).
    pub(super) server_reader: HandshakeReader,
}

/// The version a ServerHello negotiates, and its random: TLS 1.3 if it carries
/// supported_versions (whose value the TLS 1.3 check then requires to be 0x0304), TLS 1.2 if
/// it has none and its version is 0x0303.
fn negotiated_version(body: &[u8]) -> Result<(TlsVersion, [u8; 32]), HandshakeError> {
    const WHAT: &str = "ServerHello";
    let mut c = Cursor::new(WHAT, body);
    let version = c.u16()?;
    let mut random = [0u8; 32];
    random.copy_from_slice(c.take(32)?);
    c.vec8()?;
    c.u16()?;
    c.u8()?;
    // A TLS 1.2 ServerHello may omit its extensions block altogether.
    let exts = if c.is_empty() {
        Vec::new()
    } else {
        extensions(WHAT, c.vec16()?)?
    };
    c.finish()?;
    if exts.iter().any(|(t, _)| *t == EXT_SUPPORTED_VERSIONS) {
        Ok((TlsVersion::Tls13, random))
    } else if version == TlsVersion::Tls12.code() {
        Ok((TlsVersion::Tls12, random))
    } else {
        Err(HandshakeError::Version { found: version })
    }
}

/// Reads the server's first handshake message (the ServerHello) from its plaintext records;
/// returns it, the index of the next record and the reader holding what follows it.
fn server_hello(
    records: &[Record],
) -> Result<(HandshakeMessage, usize, HandshakeReader), HandshakeError> {
    let mut index = 0;
    let mut reader = HandshakeReader::new();
    let sh = loop {
        let Some(record) = records.get(index) else {
            return Err(HandshakeError::Incomplete {
                side: Side::Server,
                what: "the ServerHello",
            });
        };
        match record.content_type {
            CONTENT_HANDSHAKE => {}
            CONTENT_ALERT => return Err(alert_of(&record.fragment)),
            found => {
                return Err(HandshakeError::UnexpectedRecord {
                    side: Side::Server,
                    index,
                    expected: "a plaintext handshake record (ServerHello)",
                    found,
                })
            }
        }
        reader.push(&record.fragment);
        index += 1;
        let msg = reader
            .next_message()
            .map_err(|source| HandshakeError::Records {
                side: Side::Server,
                source,
            })?;
        if let Some(msg) = msg {
            break msg;
        }
    };
    if sh.msg_type != HS_SERVER_HELLO {
        return Err(HandshakeError::UnexpectedMessage {
            expected: "ServerHello",
            found: sh.msg_type,
        });
    }
    Ok((sh, index, reader))
}

/// Verifies a recorded handshake of either version; see the module documentation and, for
/// TLS 1.2, [`super::handshake12`].
pub fn verify(check: &HandshakeCheck<'_>) -> Result<HandshakeSummary, HandshakeError> {
    let server_name = ServerName::try_from(check.server_name)
        .map_err(|_| HandshakeError::BadServerName(check.server_name.to_string()))?;

    // Client side: the ClientHello in plaintext, its SNI the expected name.
    let client_records = records_of(Side::Client, check.client_to_server)?;
    let (client_hello, after_client_hello) = client_hello(&client_records)?;
    let client_info = parse_client_hello(&client_hello.body)?;
    if let ServerName::DnsName(dns) = &server_name {
        let matches = client_info
            .sni
            .as_deref()
            .is_some_and(|sni| sni.eq_ignore_ascii_case(dns.as_ref()));
        if !matches {
            return Err(HandshakeError::ServerNameMismatch {
                expected: check.server_name.to_string(),
                found: client_info.sni,
            });
        }
    }

    // Server side: the ServerHello in plaintext decides the version.
    let server_records = records_of(Side::Server, check.server_to_client)?;
    let (server_hello, after_server_hello, server_reader) = server_hello(&server_records)?;
    let (version, server_random) = negotiated_version(&server_hello.body)?;
    let hellos = Hellos {
        check,
        server_name,
        client_records,
        client_hello,
        client_info,
        after_client_hello,
        server_records,
        server_hello,
        server_random,
        after_server_hello,
        server_reader,
    };
    match version {
        TlsVersion::Tls13 => verify13(hellos),
        TlsVersion::Tls12 => super::handshake12::verify(hellos),
    }
}

/// The TLS 1.3 check after the hellos.
fn verify13(hellos: Hellos<'_>) -> Result<HandshakeSummary, HandshakeError> {
    let Hellos {
        check,
        server_name,
        client_records,
        client_hello: ch,
        client_info: ch_info,
        after_client_hello: after_ch,
        server_records,
        server_hello: sh,
        server_random,
        after_server_hello: mut index,
        server_reader: mut reader,
    } = hellos;
    parse_server_hello(&sh.body, &ch_info)?;
    let secret =
        tls13::secret_from_slice(check.server_handshake_secret).map_err(HandshakeError::Secret)?;
    let client_app_start = client_app_start(&client_records, after_ch)?;
    let mut transcript = digest::Context::new(&digest::SHA256);
    transcript.update(&ch.to_bytes());
    if reader.has_partial() {
        return Err(HandshakeError::KeyChangeMidRecord {
            side: Side::Server,
            what: "ServerHello",
        });
    }
    transcript.update(&sh.to_bytes());

    // Server side: the encrypted flight.
    let keys = TrafficKeys::derive(&secret).map_err(HandshakeError::Secret)?;
    let mut seq = 0u64;
    let mut certificates: Option<Vec<CertificateDer<'static>>> = None;
    let mut expected = HS_ENCRYPTED_EXTENSIONS;
    loop {
        let Some(record) = server_records.get(index) else {
            return Err(HandshakeError::Incomplete {
                side: Side::Server,
                what: "the server Finished",
            });
        };
        match record.content_type {
            CONTENT_CHANGE_CIPHER_SPEC if record.fragment == [1] && seq == 0 => {
                index += 1;
                continue;
            }
            CONTENT_APPLICATION_DATA => {}
            CONTENT_ALERT => return Err(alert_of(&record.fragment)),
            found => {
                return Err(HandshakeError::UnexpectedRecord {
                    side: Side::Server,
                    index,
                    expected: "a protected handshake record",
                    found,
                })
            }
        }
        let inner = keys.open(seq, record).map_err(|e| match e {
            Tls13Error::Decrypt { .. } => HandshakeError::Decrypt { index },
            source => HandshakeError::Records {
                side: Side::Server,
                source,
            },
        })?;
        seq += 1;
        match inner.content_type {
            CONTENT_HANDSHAKE => {}
            CONTENT_ALERT => return Err(alert_of(&inner.content)),
            found => {
                return Err(HandshakeError::UnexpectedRecord {
                    side: Side::Server,
                    index,
                    expected: "a handshake message inside the protected record",
                    found,
                })
            }
        }
        reader.push(&inner.content);
        index += 1;
        while let Some(msg) = reader
            .next_message()
            .map_err(|source| HandshakeError::Records {
                side: Side::Server,
                source,
            })?
        {
            if msg.msg_type == HS_CERTIFICATE_REQUEST {
                return Err(HandshakeError::ClientAuthRequested);
            }
            if msg.msg_type != expected {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: match expected {
                        HS_ENCRYPTED_EXTENSIONS => "EncryptedExtensions",
                        HS_CERTIFICATE => "Certificate",
                        HS_CERTIFICATE_VERIFY => "CertificateVerify",
                        _ => "Finished",
                    },
                    found: msg.msg_type,
                });
            }
            let hash_before = transcript.clone().finish();
            match msg.msg_type {
                HS_ENCRYPTED_EXTENSIONS => {
                    parse_encrypted_extensions(&msg.body)?;
                    expected = HS_CERTIFICATE;
                }
                HS_CERTIFICATE => {
                    let certs = parse_certificate(&msg.body)?;
                    check_chain(
                        &certs,
                        &server_name,
                        check.server_name,
                        check.now,
                        check.roots,
                    )?;
                    certificates = Some(certs);
                    expected = HS_CERTIFICATE_VERIFY;
                }
                HS_CERTIFICATE_VERIFY => {
                    let Some(certs) = certificates.as_ref() else {
                        unreachable!("Certificate precedes CertificateVerify");
                    };
                    check_certificate_verify(&msg.body, &certs[0], hash_before.as_ref())?;
                    expected = HS_FINISHED;
                }
                _ => {
                    check_finished(&msg.body, &secret, hash_before.as_ref())?;
                    transcript.update(&msg.to_bytes());
                    if reader.has_partial() {
                        return Err(HandshakeError::KeyChangeMidRecord {
                            side: Side::Server,
                            what: "server Finished",
                        });
                    }
                    let hash = transcript.finish();
                    let mut transcript_hash = [0u8; HASH_LEN];
                    transcript_hash.copy_from_slice(hash.as_ref());
                    let summary = HandshakeSummary {
                        version: TlsVersion::Tls13,
                        server_name: check.server_name.to_string(),
                        transcript_hash,
                        client_random: ch_info.random,
                        server_random,
                        certificates: certificates.unwrap_or_default(),
                        client_records,
                        server_records,
                        client_app_start,
                        server_app_start: index,
                    };
                    check_application_records(&summary)?;
                    return Ok(summary);
                }
            }
            transcript.update(&msg.to_bytes());
        }
    }
}

/// After the handshake every record must be protected: a plaintext record there is either an
/// attack or a broken peer. In TLS 1.3 every protected record has outer type
/// application_data; in TLS 1.2 the real type stays outside, so application data (23) and
/// encrypted alerts (21) are allowed and a handshake record (renegotiation) is refused.
pub(super) fn check_application_records(summary: &HandshakeSummary) -> Result<(), HandshakeError> {
    for (side, records, start) in [
        (
            Side::Client,
            &summary.client_records,
            summary.client_app_start,
        ),
        (
            Side::Server,
            &summary.server_records,
            summary.server_app_start,
        ),
    ] {
        for (index, record) in records.iter().enumerate().skip(start) {
            match (summary.version, record.content_type) {
                (_, CONTENT_APPLICATION_DATA) | (TlsVersion::Tls12, CONTENT_ALERT) => {}
                (TlsVersion::Tls12, CONTENT_HANDSHAKE) => {
                    return Err(HandshakeError::Renegotiation { side, index })
                }
                (version, found) => {
                    return Err(HandshakeError::UnexpectedRecord {
                        side,
                        index,
                        expected: match version {
                            TlsVersion::Tls13 => "a protected application-data record",
                            TlsVersion::Tls12 => "a protected application-data or alert record",
                        },
                        found,
                    })
                }
            }
        }
    }
    Ok(())
}

/// A root store holding every certificate of a PEM bundle.
pub fn roots_from_pem(pem: &[u8]) -> anyhow::Result<RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| anyhow::anyhow!("expected PEM CERTIFICATE blocks: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("not a usable trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        anyhow::bail!("expected at least one PEM CERTIFICATE, found none");
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::exchange::LeafKey;
    use crate::oracle::testutil::{session, Session};

    fn check<'a>(s: &'a Session, secret: &'a [u8]) -> HandshakeCheck<'a> {
        HandshakeCheck {
            client_to_server: &s.recording.client_to_server,
            server_to_client: &s.recording.server_to_client,
            server_handshake_secret: secret,
            server_name: &s.server_name,
            now: s.now,
            roots: &s.roots,
        }
    }

    fn good(s: &Session) -> HandshakeSummary {
        verify(&check(s, &s.secrets.server_handshake)).unwrap()
    }

    #[test]
    fn genuine_session_verifies_ecdsa() {
        let s = session(LeafKey::EcdsaP256);
        let summary = good(s);
        assert_eq!(summary.certificates.len(), 1);
        assert_eq!(summary.end_entity(), &s.pki.leaf_der);
        assert_eq!(summary.server_name, s.server_name);
        // ClientHello (+ CCS) + Finished; ServerHello + CCS? + at least one protected record.
        let [c, srv] = summary.handshake_records();
        assert!((2..=3).contains(&c), "client handshake records {c}");
        assert!(srv >= 2, "server handshake records {srv}");
        assert!(!summary.application_records(Side::Client).is_empty());
        assert!(!summary.application_records(Side::Server).is_empty());
        assert_ne!(summary.transcript_hash, [0; 32]);
        assert_eq!(summary.version, TlsVersion::Tls13);
        assert_eq!(summary.version.code(), 0x0304);
        assert_eq!(summary.first_app_seq(), 0);
        // Record header 5, handshake header 4, version 2: then the random.
        assert_eq!(
            summary.client_random[..],
            s.recording.client_to_server[11..43]
        );
        assert_eq!(
            summary.server_random[..],
            s.recording.server_to_client[11..43]
        );
    }

    #[test]
    fn genuine_session_verifies_ed25519() {
        let s = session(LeafKey::Ed25519);
        good(s);
    }

    #[test]
    fn application_records_decrypt_to_http() {
        let s = session(LeafKey::EcdsaP256);
        let summary = good(s);
        let client = TrafficKeys::derive(&s.secrets.client_application).unwrap();
        let server = TrafficKeys::derive(&s.secrets.server_application).unwrap();
        let mut request = Vec::new();
        for (seq, record) in summary.application_records(Side::Client).iter().enumerate() {
            let inner = client.open(seq as u64, record).unwrap();
            if inner.content_type == CONTENT_APPLICATION_DATA {
                request.extend_from_slice(&inner.content);
            }
        }
        let request = String::from_utf8(request).unwrap();
        assert!(
            request.starts_with("GET /api/v1/account HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("X-API-KEY: key-3\r\n"));
        let mut response = Vec::new();
        let mut types = Vec::new();
        for (seq, record) in summary.application_records(Side::Server).iter().enumerate() {
            let inner = server.open(seq as u64, record).unwrap();
            types.push(inner.content_type);
            if inner.content_type == CONTENT_APPLICATION_DATA {
                response.extend_from_slice(&inner.content);
            }
        }
        assert_eq!(response, s.response, "decrypted == what the client read");
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("\"account\":\"acct-3\""));
        // rustls sends NewSessionTicket(s) (inner type handshake) and ends with close_notify.
        assert!(types.contains(&CONTENT_HANDSHAKE), "{types:?}");
        assert_eq!(types.last(), Some(&CONTENT_ALERT));
        // The handshake key does not open application records.
        let hs = TrafficKeys::derive(&s.secrets.server_handshake).unwrap();
        assert!(hs
            .open(0, &summary.application_records(Side::Server)[0])
            .is_err());
    }

    #[test]
    fn wrong_server_name_refused() {
        let s = session(LeafKey::EcdsaP256);
        let mut c = check(s, &s.secrets.server_handshake);
        c.server_name = "other.exchange.test";
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, HandshakeError::ServerNameMismatch { .. }),
            "{err}"
        );
        assert!(verify(&HandshakeCheck {
            server_name: "not a name",
            ..c
        })
        .is_err());
    }

    #[test]
    fn certificate_not_valid_for_name_refused() {
        // An IP address has no SNI to compare, so the certificate's names decide: it names
        // only the exchange's DNS name.
        let s = session(LeafKey::EcdsaP256);
        let mut c = check(s, &s.secrets.server_handshake);
        c.server_name = "127.0.0.1";
        let err = verify(&c).unwrap_err();
        assert!(matches!(err, HandshakeError::Name { .. }), "{err}");
    }

    #[test]
    fn roots_without_exchange_ca_refused() {
        let s = session(LeafKey::EcdsaP256);
        let other = crate::oracle::exchange::ExchangePki::generate(
            &s.server_name,
            s.now,
            30,
            LeafKey::EcdsaP256,
        )
        .unwrap();
        let roots = roots_from_pem(other.ca_pem.as_bytes()).unwrap();
        let mut c = check(s, &s.secrets.server_handshake);
        c.roots = &roots;
        let err = verify(&c).unwrap_err();
        assert!(matches!(err, HandshakeError::Chain { .. }), "{err}");
    }

    #[test]
    fn wrong_secret_refused() {
        let s = session(LeafKey::EcdsaP256);
        let random: [u8; 32] = rand::random();
        let err = verify(&check(s, &random)).unwrap_err();
        assert!(matches!(err, HandshakeError::Decrypt { .. }), "{err}");
        // The client handshake secret is not the server's either.
        let err = verify(&check(s, &s.secrets.client_handshake)).unwrap_err();
        assert!(matches!(err, HandshakeError::Decrypt { .. }), "{err}");
        let err = verify(&check(s, &[1, 2, 3])).unwrap_err();
        assert!(matches!(err, HandshakeError::Secret(_)), "{err}");
    }

    #[test]
    fn expired_certificate_refused() {
        let s = session(LeafKey::EcdsaP256);
        let mut c = check(s, &s.secrets.server_handshake);
        c.now = s.now + 31 * 86_400;
        let err = verify(&c).unwrap_err();
        assert!(matches!(err, HandshakeError::Chain { .. }), "{err}");
        c.now = s.now - 3 * 86_400;
        assert!(matches!(verify(&c), Err(HandshakeError::Chain { .. })));
        c.now = s.now + 29 * 86_400;
        verify(&c).unwrap();
    }

    /// Byte offset of the first byte of server record `index`.
    fn record_offset(stream: &[u8], index: usize) -> usize {
        let mut offset = 0;
        for _ in 0..index {
            offset += 5 + usize::from(u16::from_be_bytes([stream[offset + 3], stream[offset + 4]]));
        }
        offset
    }

    #[test]
    fn flipped_bit_in_server_handshake_refused() {
        let s = session(LeafKey::EcdsaP256);
        let summary = good(s);
        let stream = &s.recording.server_to_client;
        // In the encrypted flight: the last handshake record (holding Finished).
        let last = summary.server_app_start - 1;
        let mut altered = stream.clone();
        altered[record_offset(stream, last) + 5 + 3] ^= 0x10;
        let c = HandshakeCheck {
            server_to_client: &altered,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(
            verify(&c),
            Err(HandshakeError::Decrypt { index }) if index == last
        ));
        // In the ServerHello random: the transcript changes, so the signature fails.
        let mut altered = stream.clone();
        altered[5 + 4 + 2 + 7] ^= 0x01;
        let c = HandshakeCheck {
            server_to_client: &altered,
            ..check(s, &s.secrets.server_handshake)
        };
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, HandshakeError::CertificateVerify { .. }),
            "{err}"
        );
        // In the ClientHello random (the client stream is part of the transcript too).
        let mut altered = s.recording.client_to_server.clone();
        altered[5 + 4 + 2 + 7] ^= 0x01;
        let c = HandshakeCheck {
            client_to_server: &altered,
            ..check(s, &s.secrets.server_handshake)
        };
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, HandshakeError::CertificateVerify { .. }),
            "{err}"
        );
        // A truncated recording.
        let c = HandshakeCheck {
            server_to_client: &stream[..record_offset(stream, last)],
            ..check(s, &s.secrets.server_handshake)
        };
        let err = verify(&c).unwrap_err();
        assert!(matches!(err, HandshakeError::Incomplete { .. }), "{err}");
    }

    /// The recorded server stream with its ServerHello edited by `edit(body)`; lengths fixed.
    fn edit_server_hello(s: &Session, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let stream = &s.recording.server_to_client;
        let records = parse_records(stream).unwrap();
        let first = &records[0];
        assert_eq!(
            first.fragment[0], HS_SERVER_HELLO,
            "ServerHello alone first"
        );
        let mut body = first.fragment[4..].to_vec();
        edit(&mut body);
        let mut fragment = vec![HS_SERVER_HELLO];
        fragment.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        fragment.extend_from_slice(&body);
        let edited = Record {
            fragment,
            ..first.clone()
        };
        let mut out = edited.to_bytes();
        out.extend_from_slice(&stream[5 + first.fragment.len()..]);
        out
    }

    #[test]
    fn server_hello_with_pre_shared_key_refused() {
        let s = session(LeafKey::EcdsaP256);
        let edited = edit_server_hello(s, |body| {
            // version 2, random 32, session id vec8, suite 2, compression 1, extensions vec16.
            let ext_at = 2 + 32 + 1 + usize::from(body[34]) + 3;
            let len = u16::from_be_bytes([body[ext_at], body[ext_at + 1]]);
            body[ext_at..ext_at + 2].copy_from_slice(&(len + 6).to_be_bytes());
            body.extend_from_slice(&[0x00, 0x29, 0x00, 0x02, 0x00, 0x00]);
        });
        // Even with a random secret: the refusal comes before any decryption.
        let random: [u8; 32] = rand::random();
        for secret in [&s.secrets.server_handshake[..], &random[..]] {
            let c = HandshakeCheck {
                server_to_client: &edited,
                ..check(s, secret)
            };
            let err = verify(&c).unwrap_err();
            assert!(
                matches!(err, HandshakeError::PreSharedKey("ServerHello")),
                "{err}"
            );
            assert!(err.to_string().contains("full handshake"), "{err}");
        }
    }

    #[test]
    fn hello_retry_request_and_other_suites_refused() {
        let s = session(LeafKey::EcdsaP256);
        let hrr = edit_server_hello(s, |body| {
            body[2..34].copy_from_slice(&HELLO_RETRY_REQUEST_RANDOM);
        });
        let c = HandshakeCheck {
            server_to_client: &hrr,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(verify(&c), Err(HandshakeError::HelloRetryRequest)));
        let suite = edit_server_hello(s, |body| {
            let at = 2 + 32 + 1 + usize::from(body[34]);
            body[at..at + 2].copy_from_slice(&[0x13, 0x02]);
        });
        let c = HandshakeCheck {
            server_to_client: &suite,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(
            verify(&c),
            Err(HandshakeError::CipherSuite { found: 0x1302 })
        ));
    }

    /// The recorded server stream with its encrypted flight decrypted, edited by
    /// `edit(messages)` and re-encrypted under the genuine keys (a forger who knew the
    /// secret but not the server's signing key).
    fn reseal_server_flight(s: &Session, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let summary = good(s);
        let keys = TrafficKeys::derive(&s.secrets.server_handshake).unwrap();
        let mut out = Vec::new();
        let mut flight = Vec::new();
        let mut seq = 0;
        for record in &summary.server_records[..summary.server_app_start] {
            if record.content_type == CONTENT_APPLICATION_DATA {
                flight.extend_from_slice(&keys.open(seq, record).unwrap().content);
                seq += 1;
            } else {
                out.extend_from_slice(&record.to_bytes());
            }
        }
        edit(&mut flight);
        for (seq, chunk) in flight.chunks(4000).enumerate() {
            let record = keys.seal(seq as u64, CONTENT_HANDSHAKE, chunk).unwrap();
            out.extend_from_slice(&record.to_bytes());
        }
        for record in summary.application_records(Side::Server) {
            out.extend_from_slice(&record.to_bytes());
        }
        out
    }

    #[test]
    fn resealed_flight_with_altered_finished_or_signature_refused() {
        let s = session(LeafKey::EcdsaP256);
        // Unchanged: re-sealing alone (other record boundaries) still verifies.
        let same = reseal_server_flight(s, |_| {});
        let c = HandshakeCheck {
            server_to_client: &same,
            ..check(s, &s.secrets.server_handshake)
        };
        assert_eq!(verify(&c).unwrap().transcript_hash, good(s).transcript_hash);
        // The Finished is the last 32 bytes of the flight.
        let bad_finished = reseal_server_flight(s, |flight| {
            let last = flight.len() - 1;
            flight[last] ^= 1;
        });
        let c = HandshakeCheck {
            server_to_client: &bad_finished,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(verify(&c), Err(HandshakeError::Finished)));
        // The CertificateVerify signature ends right before the Finished message (4 + 32).
        let bad_signature = reseal_server_flight(s, |flight| {
            let at = flight.len() - 36 - 5;
            flight[at] ^= 1;
        });
        let c = HandshakeCheck {
            server_to_client: &bad_signature,
            ..check(s, &s.secrets.server_handshake)
        };
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, HandshakeError::CertificateVerify { .. }),
            "{err}"
        );
        // A further message after Finished in the same record (the key changes there).
        let trailing = reseal_server_flight(s, |flight| flight.extend_from_slice(&[4, 0, 0, 0]));
        let c = HandshakeCheck {
            server_to_client: &trailing,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(
            verify(&c),
            Err(HandshakeError::KeyChangeMidRecord { .. })
        ));
    }

    #[test]
    fn plaintext_record_after_handshake_refused() {
        let s = session(LeafKey::EcdsaP256);
        let mut stream = s.recording.server_to_client.clone();
        stream.extend_from_slice(&[CONTENT_ALERT, 3, 3, 0, 2, 2, 40]);
        let c = HandshakeCheck {
            server_to_client: &stream,
            ..check(s, &s.secrets.server_handshake)
        };
        assert!(matches!(
            verify(&c),
            Err(HandshakeError::UnexpectedRecord {
                side: Side::Server,
                ..
            })
        ));
    }

    #[test]
    fn roots_from_pem_refuses_garbage() {
        assert!(roots_from_pem(b"").is_err());
        assert!(roots_from_pem(b"not pem").is_err());
    }
}
