//! The notary's check of a recorded TLS 1.2 handshake (RFC 5246) with
//! TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
//! [`super::handshake::verify`] calls it when the ServerHello negotiates TLS 1.2; the revealed
//! secret must then be empty, since the notary needs no key.
//!
//! Everything the notary checks is plaintext in TLS 1.2:
//!
//! * ClientHello (its SNI is the server name: checked by the caller, as for TLS 1.3);
//! * ServerHello: version 0x0303, one of the two suites, no compression, a session id that is
//!   not the client's (that would be resumption), and only the extensions renegotiation_info
//!   (empty: an initial handshake), extended_master_secret, ec_point_formats, ALPN, an empty
//!   session_ticket and an empty server_name (the SNI acknowledgement of RFC 6066);
//! * Certificate: the chain against the notary's roots for the server name at `now`;
//! * ServerKeyExchange: ECDHE on x25519, secp256r1 or secp384r1, signed over
//!   `client_random ‖ server_random ‖ ECDHE parameters` with the end-entity key, in a scheme
//!   that fits the suite (ECDSA for ECDHE_ECDSA, RSA PKCS#1 or PSS for ECDHE_RSA);
//! * no CertificateRequest (client authentication is refused), then ServerHelloDone;
//! * the client's ClientKeyExchange, change_cipher_spec and exactly one protected record (its
//!   encrypted Finished); the server's optional NewSessionTicket, change_cipher_spec and
//!   exactly one protected record (its encrypted Finished);
//! * after them, only application data and alerts: a handshake record there (renegotiation)
//!   is refused.
//!
//! What the notary cannot check: the two Finished messages. They are encrypted under keys
//! derived from the master secret, which only the prover and the server hold, and revealing it
//! would reveal the application keys. That is acceptable in the proxy model: the
//! ServerKeyExchange signature binds the server's ECDHE key to both randoms, so it was made by
//! the certified server for this very ClientHello (a prover cannot replay another session's
//! signature, nor sign one of its own); the notary relayed the server's bytes itself, so the
//! prover could not substitute a server flight; and the key the session then runs under is the
//! one the certified server agreed with the client. The parties later authenticate every
//! application record's GCM tag inside the MPC with the keys the prover shares (derived from
//! the master secret, [`super::tls12::key_block`]), so keys not of this session authenticate
//! nothing. Application records are numbered from 1 in each direction (the Finished is
//! record 0): see [`HandshakeSummary::first_app_seq`].
//!
//! No I/O; deterministic given its inputs.

use ring::digest;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm};

use super::handshake::{
    alert_of, check_application_records, check_chain, extensions, ClientHelloInfo, Cursor,
    HandshakeError, HandshakeSummary, Hellos, Side, TlsVersion,
};
use super::tls12::{
    RECORD_OVERHEAD, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
};
use super::tls13::{
    HandshakeMessage, HandshakeReader, Record, CONTENT_ALERT, CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE, HASH_LEN,
};

const HS_NEW_SESSION_TICKET: u8 = 4;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_SERVER_HELLO_DONE: u8 = 14;
const HS_CLIENT_KEY_EXCHANGE: u8 = 16;

const EXT_SERVER_NAME: u16 = 0;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_ALPN: u16 = 16;
const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

const CURVE_SECP256R1: u16 = 23;
const CURVE_SECP384R1: u16 = 24;
const CURVE_X25519: u16 = 29;
/// ECCurveType.named_curve.
const NAMED_CURVE: u8 = 3;

/// The last 8 bytes of ServerHello.random when a TLS 1.3 server negotiates TLS 1.2
/// (RFC 8446 §4.1.3).
const DOWNGRADE_SENTINEL: [u8; 8] = *b"DOWNGRD\x01";

/// Fragment length of an encrypted Finished: explicit nonce, the Finished message (4-byte
/// header and 12-byte verify_data), tag.
const ENCRYPTED_FINISHED_LEN: usize = RECORD_OVERHEAD + 16;

/// What the ServerHello settled.
struct ServerHello12 {
    suite: u16,
    session_ticket: bool,
}

fn parse_server_hello(
    body: &[u8],
    client: &ClientHelloInfo,
) -> Result<ServerHello12, HandshakeError> {
    const WHAT: &str = "ServerHello";
    let mut c = Cursor::new(WHAT, body);
    let version = c.u16()?;
    if version != TlsVersion::Tls12.code() {
        return Err(HandshakeError::Version { found: version });
    }
    let random = c.take(32)?;
    if client.offers_tls13 && random[24..] == DOWNGRADE_SENTINEL {
        return Err(HandshakeError::Downgrade);
    }
    let session_id = c.vec8()?;
    if session_id.len() > 32 {
        return Err(c.err("session_id longer than 32 bytes"));
    }
    if !client.session_id.is_empty() && session_id == client.session_id.as_slice() {
        return Err(HandshakeError::Resumption(
            "the ServerHello echoes the ClientHello's session id",
        ));
    }
    let suite = c.u16()?;
    if suite != TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        && suite != TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    {
        return Err(HandshakeError::Tls12CipherSuite { found: suite });
    }
    let compression = c.u8()?;
    if compression != 0 {
        return Err(c.err(format!("compression method {compression}, expected 0")));
    }
    let exts = if c.is_empty() {
        Vec::new()
    } else {
        let exts = extensions(WHAT, c.vec16()?)?;
        c.finish()?;
        exts
    };
    let mut session_ticket = false;
    for (ext, data) in exts {
        match ext {
            EXT_RENEGOTIATION_INFO => {
                if data != [0] {
                    return Err(HandshakeError::Malformed {
                        what: "ServerHello renegotiation_info",
                        detail: format!(
                            "{} bytes, expected the one byte 0 of an initial handshake",
                            data.len()
                        ),
                    });
                }
            }
            // The server acknowledges the SNI with an empty extension (RFC 6066 §3).
            EXT_SERVER_NAME => empty_extension("ServerHello server_name", data)?,
            EXT_EXTENDED_MASTER_SECRET => {
                empty_extension("ServerHello extended_master_secret", data)?
            }
            EXT_EC_POINT_FORMATS => {
                let mut e = Cursor::new("ServerHello ec_point_formats", data);
                let formats = e.vec8()?;
                e.finish()?;
                if !formats.contains(&0) {
                    return Err(e.err("uncompressed (0) not listed"));
                }
            }
            EXT_ALPN => {
                let mut e = Cursor::new("ServerHello ALPN", data);
                let mut list = Cursor::new("ServerHello ALPN", e.vec16()?);
                e.finish()?;
                if list.vec8()?.is_empty() {
                    return Err(list.err("empty protocol name"));
                }
                list.finish()?;
            }
            EXT_SESSION_TICKET => {
                empty_extension("ServerHello session_ticket", data)?;
                session_ticket = true;
            }
            ext => return Err(HandshakeError::BadExtension { what: WHAT, ext }),
        }
    }
    Ok(ServerHello12 {
        suite,
        session_ticket,
    })
}

fn empty_extension(what: &'static str, data: &[u8]) -> Result<(), HandshakeError> {
    if data.is_empty() {
        Ok(())
    } else {
        Err(HandshakeError::Malformed {
            what,
            detail: format!("{} bytes, expected none", data.len()),
        })
    }
}

/// The TLS 1.2 Certificate message: a list of DER certificates, end-entity first.
fn parse_certificate(body: &[u8]) -> Result<Vec<CertificateDer<'static>>, HandshakeError> {
    const WHAT: &str = "Certificate";
    let mut c = Cursor::new(WHAT, body);
    let mut list = Cursor::new(WHAT, c.vec24()?);
    c.finish()?;
    let mut certs = Vec::new();
    while !list.is_empty() {
        let der = list.vec24()?;
        if der.is_empty() {
            return Err(list.err("empty certificate"));
        }
        certs.push(CertificateDer::from(der.to_vec()));
    }
    if certs.is_empty() {
        return Err(c.err("no certificate"));
    }
    Ok(certs)
}

/// Checks an ECDHE public key's encoding for `curve`: 32 bytes for x25519, an uncompressed
/// point (0x04 ‖ x ‖ y) for the NIST curves.
fn check_point(what: &'static str, curve: u16, point: &[u8]) -> Result<(), HandshakeError> {
    let (len, uncompressed) = match curve {
        CURVE_X25519 => (32, false),
        CURVE_SECP256R1 => (65, true),
        CURVE_SECP384R1 => (97, true),
        found => return Err(HandshakeError::Curve { found }),
    };
    if point.len() != len || (uncompressed && point.first() != Some(&4)) {
        return Err(HandshakeError::Malformed {
            what,
            detail: format!(
                "curve {curve}: public key of {} bytes, expected {len}{}",
                point.len(),
                if uncompressed {
                    " starting 0x04 (uncompressed)"
                } else {
                    ""
                }
            ),
        });
    }
    Ok(())
}

/// The webpki algorithms a ServerKeyExchange scheme may mean under `suite`. TLS 1.2's ECDSA
/// code points name the hash only (RFC 5246 §7.4.1.4.1), the curve is the certificate's.
fn signature_algorithms(
    suite: u16,
    scheme: u16,
) -> Result<Vec<&'static dyn SignatureVerificationAlgorithm>, HandshakeError> {
    use webpki::ring as alg;
    let ecdsa = suite == TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    Ok(match (ecdsa, scheme) {
        (true, 0x0403) => vec![alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        (true, 0x0503) => vec![alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        (false, 0x0401) => vec![alg::RSA_PKCS1_2048_8192_SHA256],
        (false, 0x0501) => vec![alg::RSA_PKCS1_2048_8192_SHA384],
        (false, 0x0601) => vec![alg::RSA_PKCS1_2048_8192_SHA512],
        (false, 0x0804) => vec![alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        (false, 0x0805) => vec![alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        (false, 0x0806) => vec![alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        _ => return Err(HandshakeError::Tls12SignatureScheme { suite, scheme }),
    })
}

/// Checks the ServerKeyExchange and its signature; returns the curve.
fn check_server_key_exchange(
    body: &[u8],
    suite: u16,
    cert: &CertificateDer<'_>,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Result<u16, HandshakeError> {
    const WHAT: &str = "ServerKeyExchange";
    let mut c = Cursor::new(WHAT, body);
    let curve_type = c.u8()?;
    if curve_type != NAMED_CURVE {
        return Err(c.err(format!("curve_type {curve_type}, expected 3 (named_curve)")));
    }
    let curve = c.u16()?;
    let point = c.vec8()?;
    check_point(WHAT, curve, point)?;
    let params = &body[..body.len() - c.remaining()];
    let scheme = c.u16()?;
    let signature = c.vec16()?;
    c.finish()?;
    let algorithms = signature_algorithms(suite, scheme)?;
    let mut message = Vec::with_capacity(64 + params.len());
    message.extend_from_slice(client_random);
    message.extend_from_slice(server_random);
    message.extend_from_slice(params);
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|source| HandshakeError::ServerKeyExchange { source })?;
    // `algorithms` is never empty, so this first value is always replaced.
    let mut refusal = webpki::Error::InvalidSignatureForPublicKey;
    for algorithm in algorithms {
        match ee.verify_signature(algorithm, &message, signature) {
            Ok(()) => return Ok(curve),
            // The key is of the other curve: try the next reading of the scheme.
            Err(e @ webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => {
                refusal = e;
            }
            Err(source) => return Err(HandshakeError::ServerKeyExchange { source }),
        }
    }
    Err(HandshakeError::ServerKeyExchange { source: refusal })
}

/// What comes next in a direction's plaintext flight.
enum Step {
    Message(HandshakeMessage),
    ChangeCipherSpec,
}

/// One direction's plaintext handshake flight, message by message, up to its
/// change_cipher_spec.
struct Flight<'a> {
    side: Side,
    records: &'a [Record],
    /// The next record to read.
    index: usize,
    reader: HandshakeReader,
}

impl Flight<'_> {
    /// The next handshake message, or the change_cipher_spec that ends the flight.
    /// `expected` names what the caller waits for, for errors.
    fn next(&mut self, expected: &'static str) -> Result<Step, HandshakeError> {
        let side = self.side;
        loop {
            let msg = self
                .reader
                .next_message()
                .map_err(|source| HandshakeError::Records { side, source })?;
            if let Some(msg) = msg {
                return Ok(Step::Message(msg));
            }
            let index = self.index;
            let Some(record) = self.records.get(index) else {
                return Err(HandshakeError::Incomplete {
                    side,
                    what: expected,
                });
            };
            self.index += 1;
            match record.content_type {
                CONTENT_HANDSHAKE => self.reader.push(&record.fragment),
                CONTENT_CHANGE_CIPHER_SPEC => {
                    if self.reader.has_partial() {
                        return Err(HandshakeError::KeyChangeMidRecord {
                            side,
                            what: "the plaintext handshake flight",
                        });
                    }
                    if record.fragment != [1] {
                        return Err(HandshakeError::Malformed {
                            what: "change_cipher_spec",
                            detail: format!(
                                "{} bytes, expected the one byte 1",
                                record.fragment.len()
                            ),
                        });
                    }
                    return Ok(Step::ChangeCipherSpec);
                }
                CONTENT_ALERT if side == Side::Server => return Err(alert_of(&record.fragment)),
                found => {
                    return Err(HandshakeError::UnexpectedRecord {
                        side,
                        index,
                        expected,
                        found,
                    })
                }
            }
        }
    }

    /// The next handshake message, which must be of type `msg_type`; a CertificateRequest in
    /// its place is refused as client authentication.
    fn expect(
        &mut self,
        msg_type: u8,
        name: &'static str,
    ) -> Result<HandshakeMessage, HandshakeError> {
        match self.next(name)? {
            Step::Message(msg) if msg.msg_type == msg_type => Ok(msg),
            Step::Message(msg) if msg.msg_type == HS_CERTIFICATE_REQUEST => {
                Err(HandshakeError::ClientAuthRequested)
            }
            Step::Message(msg) => Err(HandshakeError::UnexpectedMessage {
                expected: name,
                found: msg.msg_type,
            }),
            Step::ChangeCipherSpec => Err(HandshakeError::UnexpectedRecord {
                side: self.side,
                index: self.index - 1,
                expected: name,
                found: CONTENT_CHANGE_CIPHER_SPEC,
            }),
        }
    }
}

/// Checks that the record at `index` is a direction's encrypted Finished: outer type
/// handshake, the length of one Finished message. Returns the index after it.
fn encrypted_finished(
    side: Side,
    records: &[Record],
    index: usize,
) -> Result<usize, HandshakeError> {
    let Some(record) = records.get(index) else {
        return Err(HandshakeError::Incomplete {
            side,
            what: "the encrypted Finished",
        });
    };
    if record.content_type != CONTENT_HANDSHAKE {
        return Err(HandshakeError::UnexpectedRecord {
            side,
            index,
            expected: "the encrypted Finished (outer type 22)",
            found: record.content_type,
        });
    }
    if record.fragment.len() != ENCRYPTED_FINISHED_LEN {
        return Err(HandshakeError::EncryptedFinished {
            side,
            index,
            found: record.fragment.len(),
            expected: ENCRYPTED_FINISHED_LEN,
        });
    }
    Ok(index + 1)
}

/// The TLS 1.2 check after the hellos; see the module documentation.
pub(super) fn verify(hellos: Hellos<'_>) -> Result<HandshakeSummary, HandshakeError> {
    let Hellos {
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
    } = hellos;
    if !check.server_handshake_secret.is_empty() {
        return Err(HandshakeError::SecretForTls12 {
            found: check.server_handshake_secret.len(),
        });
    }
    let hello = parse_server_hello(&server_hello.body, &client_info)?;
    let mut transcript = digest::Context::new(&digest::SHA256);
    transcript.update(&client_hello.to_bytes());
    transcript.update(&server_hello.to_bytes());

    // The server's plaintext flight.
    let mut server = Flight {
        side: Side::Server,
        records: &server_records,
        index: after_server_hello,
        reader: server_reader,
    };
    let certificate = match server.next("Certificate")? {
        Step::ChangeCipherSpec => {
            return Err(HandshakeError::Resumption(
                "change_cipher_spec right after the ServerHello: an abbreviated handshake",
            ))
        }
        Step::Message(msg) if msg.msg_type == HS_CERTIFICATE => msg,
        Step::Message(msg) => {
            return Err(HandshakeError::UnexpectedMessage {
                expected: "Certificate",
                found: msg.msg_type,
            })
        }
    };
    let certificates = parse_certificate(&certificate.body)?;
    check_chain(
        &certificates,
        &server_name,
        check.server_name,
        check.now,
        check.roots,
    )?;
    transcript.update(&certificate.to_bytes());
    let key_exchange = server.expect(HS_SERVER_KEY_EXCHANGE, "ServerKeyExchange")?;
    let curve = check_server_key_exchange(
        &key_exchange.body,
        hello.suite,
        &certificates[0],
        &client_info.random,
        &server_random,
    )?;
    transcript.update(&key_exchange.to_bytes());
    let done = server.expect(HS_SERVER_HELLO_DONE, "ServerHelloDone")?;
    empty_extension("ServerHelloDone", &done.body)?;
    transcript.update(&done.to_bytes());
    match server.next("the server change_cipher_spec")? {
        Step::ChangeCipherSpec => {}
        Step::Message(msg) if msg.msg_type == HS_NEW_SESSION_TICKET && hello.session_ticket => {
            let mut c = Cursor::new("NewSessionTicket", &msg.body);
            c.take(4)?;
            c.vec16()?;
            c.finish()?;
            match server.next("the server change_cipher_spec")? {
                Step::ChangeCipherSpec => {}
                Step::Message(msg) => {
                    return Err(HandshakeError::UnexpectedMessage {
                        expected: "change_cipher_spec after NewSessionTicket",
                        found: msg.msg_type,
                    })
                }
            }
        }
        Step::Message(msg) => {
            return Err(HandshakeError::UnexpectedMessage {
                expected: "change_cipher_spec after ServerHelloDone (or NewSessionTicket, if the ServerHello carried session_ticket)",
                found: msg.msg_type,
            })
        }
    }
    let server_app_start = encrypted_finished(Side::Server, &server_records, server.index)?;

    // The client's plaintext flight.
    let mut client = Flight {
        side: Side::Client,
        records: &client_records,
        index: after_client_hello,
        reader: HandshakeReader::new(),
    };
    let client_key_exchange = client.expect(HS_CLIENT_KEY_EXCHANGE, "ClientKeyExchange")?;
    let mut c = Cursor::new("ClientKeyExchange", &client_key_exchange.body);
    check_point("ClientKeyExchange", curve, c.vec8()?)?;
    c.finish()?;
    transcript.update(&client_key_exchange.to_bytes());
    match client.next("the client change_cipher_spec")? {
        Step::ChangeCipherSpec => {}
        Step::Message(msg) => {
            return Err(HandshakeError::UnexpectedMessage {
                expected: "change_cipher_spec after ClientKeyExchange (client authentication is not supported)",
                found: msg.msg_type,
            })
        }
    }
    let client_app_start = encrypted_finished(Side::Client, &client_records, client.index)?;

    let mut transcript_hash = [0u8; HASH_LEN];
    transcript_hash.copy_from_slice(transcript.finish().as_ref());
    let summary = HandshakeSummary {
        version: TlsVersion::Tls12,
        server_name: check.server_name.to_string(),
        transcript_hash,
        client_random: client_info.random,
        server_random,
        certificates,
        client_records,
        server_records,
        client_app_start,
        server_app_start,
    };
    check_application_records(&summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
