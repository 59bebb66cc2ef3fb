//! Tests of the TLS 1.2 handshake check on real recorded sessions (ECDSA and RSA servers)
//! and on doctored copies of them: the plaintext handshake of TLS 1.2 can be edited message by
//! message and re-framed.

use super::*;
use crate::oracle::handshake::{roots_from_pem, verify, HandshakeCheck};
use crate::oracle::prover::tls12_application_keys;
use crate::oracle::testutil::{session12, Leaf12, Session12};
use crate::oracle::tls12::prf;
use crate::oracle::tls13::{parse_records, CONTENT_APPLICATION_DATA};

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;

const BOTH: [Leaf12; 2] = [Leaf12::Ecdsa, Leaf12::Rsa];

/// A direction's recorded stream as its plaintext handshake messages (up to the
/// change_cipher_spec) and the bytes from the change_cipher_spec on.
fn split(stream: &[u8]) -> (Vec<HandshakeMessage>, Vec<u8>) {
    let mut reader = HandshakeReader::new();
    let mut messages = Vec::new();
    let mut rest = Vec::new();
    for record in parse_records(stream).unwrap() {
        if rest.is_empty() && record.content_type == CONTENT_HANDSHAKE {
            reader.push(&record.fragment);
            while let Some(msg) = reader.next_message().unwrap() {
                messages.push(msg);
            }
        } else {
            rest.extend_from_slice(&record.to_bytes());
        }
    }
    assert!(!reader.has_partial());
    (messages, rest)
}

/// Each message in a plaintext record of its own, then `rest`.
fn join(messages: &[HandshakeMessage], rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for msg in messages {
        let record = Record {
            content_type: CONTENT_HANDSHAKE,
            version: 0x0303,
            fragment: msg.to_bytes(),
        };
        out.extend_from_slice(&record.to_bytes());
    }
    out.extend_from_slice(rest);
    out
}

fn edit(stream: &[u8], edit: impl FnOnce(&mut Vec<HandshakeMessage>)) -> Vec<u8> {
    let (mut messages, rest) = split(stream);
    edit(&mut messages);
    join(&messages, &rest)
}

/// The body of the one message of type `msg_type`.
fn body_of(messages: &mut [HandshakeMessage], msg_type: u8) -> &mut Vec<u8> {
    let mut found = messages.iter_mut().filter(|m| m.msg_type == msg_type);
    let msg = found.next().expect("message present");
    assert!(found.next().is_none());
    &mut msg.body
}

fn with_streams<'a>(
    s: &'a Session12,
    client: Option<&'a [u8]>,
    server: Option<&'a [u8]>,
) -> HandshakeCheck<'a> {
    let mut c = s.check();
    if let Some(client) = client {
        c.client_to_server = client;
    }
    if let Some(server) = server {
        c.server_to_client = server;
    }
    c
}

fn server_edited(
    s: &Session12,
    f: impl FnOnce(&mut Vec<HandshakeMessage>),
) -> Result<HandshakeSummary, HandshakeError> {
    let stream = edit(&s.recording.server_to_client, f);
    verify(&with_streams(s, None, Some(&stream)))
}

fn client_edited(
    s: &Session12,
    f: impl FnOnce(&mut Vec<HandshakeMessage>),
) -> Result<HandshakeSummary, HandshakeError> {
    let stream = edit(&s.recording.client_to_server, f);
    verify(&with_streams(s, Some(&stream), None))
}

/// ServerHello body offsets: version 2, random 32, session id vec8, suite, compression,
/// extensions.
fn suite_at(sh: &[u8]) -> usize {
    2 + 32 + 1 + usize::from(sh[34])
}

/// Appends an extension to a ServerHello body that has an extensions block.
fn add_extension(sh: &mut Vec<u8>, ext: u16, data: &[u8]) {
    let at = suite_at(sh) + 3;
    let len = u16::from_be_bytes([sh[at], sh[at + 1]]) + 4 + data.len() as u16;
    sh[at..at + 2].copy_from_slice(&len.to_be_bytes());
    sh.extend_from_slice(&ext.to_be_bytes());
    sh.extend_from_slice(&(data.len() as u16).to_be_bytes());
    sh.extend_from_slice(data);
}

#[test]
fn genuine_tls12_sessions_verify() {
    for (leaf, suite) in [
        (Leaf12::Ecdsa, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        (Leaf12::Rsa, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ] {
        let s = session12(leaf);
        let summary = s.verified();
        assert_eq!(summary.version, TlsVersion::Tls12);
        assert_eq!(summary.version.code(), 0x0303);
        assert_eq!(summary.first_app_seq(), 1);
        assert_eq!(summary.server_name, s.server_name);
        assert_eq!(summary.certificates, vec![s.pki.leaf_der.clone()]);
        let (client, _) = split(&s.recording.client_to_server);
        let (server, _) = split(&s.recording.server_to_client);
        let types: Vec<u8> = server.iter().map(|m| m.msg_type).collect();
        assert_eq!(types, [2, 11, 12, 14], "{leaf:?}");
        assert_eq!(
            client.iter().map(|m| m.msg_type).collect::<Vec<_>>(),
            [1, 16]
        );
        assert_eq!(summary.client_random[..], client[0].body[2..34]);
        assert_eq!(summary.server_random[..], server[0].body[2..34]);
        let sh = &server[0].body;
        let at = suite_at(sh);
        assert_eq!(u16::from_be_bytes([sh[at], sh[at + 1]]), suite, "{leaf:?}");
        // ClientHello, ClientKeyExchange, change_cipher_spec, encrypted Finished.
        let [c, srv] = summary.handshake_records();
        assert_eq!(c, 4);
        assert_eq!(
            summary.client_records[c - 1].content_type,
            CONTENT_HANDSHAKE
        );
        assert_eq!(
            summary.server_records[srv - 1].content_type,
            CONTENT_HANDSHAKE
        );
        assert_eq!(
            summary.server_records[srv - 2].content_type,
            CONTENT_CHANGE_CIPHER_SPEC
        );
        assert!(!summary.application_records(Side::Client).is_empty());
        assert!(!summary.application_records(Side::Server).is_empty());
        // The transcript: the six plaintext messages, in protocol order.
        let mut hash = digest::Context::new(&digest::SHA256);
        for msg in [
            &client[0], &server[0], &server[1], &server[2], &server[3], &client[1],
        ] {
            hash.update(&msg.to_bytes());
        }
        assert_eq!(summary.transcript_hash[..], *hash.finish().as_ref());
        // Re-framing the plaintext flight (one message per record) changes nothing.
        let reframed = edit(&s.recording.server_to_client, |_| {});
        let again = verify(&with_streams(s, None, Some(&reframed))).unwrap();
        assert_eq!(again.transcript_hash, summary.transcript_hash);
    }
    assert_ne!(
        session12(Leaf12::Ecdsa).verified().transcript_hash,
        session12(Leaf12::Rsa).verified().transcript_hash
    );
}

#[test]
fn derived_keys_decrypt_exactly_what_was_sent_and_read() {
    for leaf in BOTH {
        let s = session12(leaf);
        let summary = s.verified();
        let (client_keys, server_keys) = tls12_application_keys(&summary, &s.master_secret);
        let first = summary.first_app_seq();
        let mut sent = Vec::new();
        for (i, record) in summary.application_records(Side::Client).iter().enumerate() {
            let plain = client_keys.open(first + i as u64, record).unwrap();
            if record.content_type == CONTENT_APPLICATION_DATA {
                sent.extend_from_slice(&plain);
            }
        }
        assert_eq!(sent, s.request, "{leaf:?}");
        let mut read = Vec::new();
        let mut types = Vec::new();
        let mut last = Vec::new();
        for (i, record) in summary.application_records(Side::Server).iter().enumerate() {
            let plain = server_keys.open(first + i as u64, record).unwrap();
            types.push(record.content_type);
            if record.content_type == CONTENT_APPLICATION_DATA {
                read.extend_from_slice(&plain);
            }
            last = plain;
        }
        assert_eq!(read, s.response, "{leaf:?}");
        assert!(read.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // The server ends with an encrypted close_notify (warning, 0).
        assert_eq!(types.last(), Some(&CONTENT_ALERT));
        assert_eq!(last, [1, 0]);
        // Sequence numbers matter: application record 0 is not record 0.
        let app0 = &summary.application_records(Side::Server)[0];
        assert!(server_keys.open(0, app0).is_err());
        assert!(
            client_keys.open(first, app0).is_err(),
            "keys are per direction"
        );
    }
}

/// The encrypted Finished messages, opened with the derived keys, match PRF over the
/// transcript: the notary's transcript hash is exactly what the client's Finished covers.
#[test]
fn finished_messages_match_the_transcript_hash() {
    for leaf in BOTH {
        let s = session12(leaf);
        let summary = s.verified();
        let (client_keys, server_keys) = tls12_application_keys(&summary, &s.master_secret);
        let [c, srv] = summary.handshake_records();
        let client_finished = client_keys.open(0, &summary.client_records[c - 1]).unwrap();
        let server_finished = server_keys
            .open(0, &summary.server_records[srv - 1])
            .unwrap();
        assert_eq!(client_finished[..4], [20, 0, 0, 12]);
        assert_eq!(server_finished[..4], [20, 0, 0, 12]);
        let mut expected = [0u8; 12];
        prf(
            &s.master_secret,
            b"client finished",
            &summary.transcript_hash,
            &mut expected,
        );
        assert_eq!(client_finished[4..], expected, "{leaf:?}");
        let (client, _) = split(&s.recording.client_to_server);
        let (server, _) = split(&s.recording.server_to_client);
        let mut hash = digest::Context::new(&digest::SHA256);
        for msg in [
            &client[0], &server[0], &server[1], &server[2], &server[3], &client[1],
        ] {
            hash.update(&msg.to_bytes());
        }
        hash.update(&client_finished);
        prf(
            &s.master_secret,
            b"server finished",
            hash.finish().as_ref(),
            &mut expected,
        );
        assert_eq!(server_finished[4..], expected, "{leaf:?}");
    }
}

#[test]
fn altered_server_key_exchange_or_randoms_refused() {
    for leaf in BOTH {
        let s = session12(leaf);
        // The last byte of the signature.
        let err = server_edited(s, |m| {
            let ske = body_of(m, HS_SERVER_KEY_EXCHANGE);
            *ske.last_mut().unwrap() ^= 1;
        })
        .unwrap_err();
        assert!(
            matches!(err, HandshakeError::ServerKeyExchange { .. }),
            "{err}"
        );
        // The server's ECDHE key (a byte of the point).
        let err = server_edited(s, |m| body_of(m, HS_SERVER_KEY_EXCHANGE)[10] ^= 1).unwrap_err();
        assert!(
            matches!(err, HandshakeError::ServerKeyExchange { .. }),
            "{err}"
        );
        // The signature covers both randoms.
        let err = server_edited(s, |m| body_of(m, HS_SERVER_HELLO)[9] ^= 1).unwrap_err();
        assert!(
            matches!(err, HandshakeError::ServerKeyExchange { .. }),
            "{err}"
        );
        let err = client_edited(s, |m| body_of(m, HS_CLIENT_HELLO)[9] ^= 1).unwrap_err();
        assert!(
            matches!(err, HandshakeError::ServerKeyExchange { .. }),
            "{err}"
        );
    }
}

#[test]
fn wrong_server_name_refused() {
    let s = session12(Leaf12::Ecdsa);
    let c = HandshakeCheck {
        server_name: "other.exchange.test",
        ..s.check()
    };
    let err = verify(&c).unwrap_err();
    assert!(
        matches!(err, HandshakeError::ServerNameMismatch { .. }),
        "{err}"
    );
    // No SNI to compare for an IP address: the certificate's names decide.
    let c = HandshakeCheck {
        server_name: "127.0.0.1",
        ..s.check()
    };
    let err = verify(&c).unwrap_err();
    assert!(matches!(err, HandshakeError::Name { .. }), "{err}");
}

#[test]
fn certificate_not_chaining_to_the_roots_refused() {
    let s = session12(Leaf12::Rsa);
    let other = crate::oracle::exchange::ExchangePki::generate(
        &s.server_name,
        s.now,
        30,
        crate::oracle::exchange::LeafKey::EcdsaP256,
    )
    .unwrap();
    let roots = roots_from_pem(other.ca_pem.as_bytes()).unwrap();
    let c = HandshakeCheck {
        roots: &roots,
        ..s.check()
    };
    let err = verify(&c).unwrap_err();
    assert!(matches!(err, HandshakeError::Chain { .. }), "{err}");
    // A certificate list that is not the server's: the other exchange's leaf.
    let err = server_edited(s, |m| {
        let der = other.leaf_der.to_vec();
        let mut body = ((der.len() + 3) as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
        body.extend_from_slice(&der);
        *body_of(m, HS_CERTIFICATE) = body;
    })
    .unwrap_err();
    assert!(matches!(err, HandshakeError::Chain { .. }), "{err}");
}

#[test]
fn expired_or_not_yet_valid_certificate_refused() {
    let s = session12(Leaf12::Ecdsa);
    for now in [s.now + 31 * 86_400, s.now - 3 * 86_400] {
        let c = HandshakeCheck { now, ..s.check() };
        let err = verify(&c).unwrap_err();
        assert!(matches!(err, HandshakeError::Chain { .. }), "{err}");
    }
    verify(&HandshakeCheck {
        now: s.now + 29 * 86_400,
        ..s.check()
    })
    .unwrap();
}

#[test]
fn revealed_secret_refused() {
    let s = session12(Leaf12::Ecdsa);
    let secret = [0xabu8; 32];
    for revealed in [&secret[..], &secret[..1]] {
        let c = HandshakeCheck {
            server_handshake_secret: revealed,
            ..s.check()
        };
        let err = verify(&c).unwrap_err();
        assert!(
            matches!(err, HandshakeError::SecretForTls12 { found } if found == revealed.len()),
            "{err}"
        );
        assert!(!err.to_string().contains("abab"), "{err}");
    }
}

#[test]
fn other_cipher_suites_refused() {
    let s = session12(Leaf12::Ecdsa);
    let set_suite = |suite: u16| {
        move |m: &mut Vec<HandshakeMessage>| {
            let sh = body_of(m, HS_SERVER_HELLO);
            let at = suite_at(sh);
            sh[at..at + 2].copy_from_slice(&suite.to_be_bytes());
        }
    };
    // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, and a TLS 1.3 suite in a TLS 1.2 hello.
    for suite in [0xc02c, 0x1301, 0xcca9] {
        let err = server_edited(s, set_suite(suite)).unwrap_err();
        assert!(
            matches!(err, HandshakeError::Tls12CipherSuite { found } if found == suite),
            "{err}"
        );
    }
    // The RSA suite with the ECDSA server's signature, and the other way round.
    let err = server_edited(s, set_suite(TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Tls12SignatureScheme {
                suite: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                scheme: 0x0403
            }
        ),
        "{err}"
    );
    let rsa = session12(Leaf12::Rsa);
    let err = server_edited(rsa, set_suite(TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)).unwrap_err();
    assert!(
        matches!(err, HandshakeError::Tls12SignatureScheme { .. }),
        "{err}"
    );
}

#[test]
fn resumption_refused() {
    let s = session12(Leaf12::Ecdsa);
    // The ServerHello echoes the client's session id.
    let (client, _) = split(&s.recording.client_to_server);
    let ch = &client[0].body;
    let client_id = ch[35..35 + usize::from(ch[34])].to_vec();
    assert!(!client_id.is_empty(), "rustls sends a session id");
    let err = server_edited(s, |m| {
        let sh = body_of(m, HS_SERVER_HELLO);
        let old_len = usize::from(sh[34]);
        sh.splice(
            34..35 + old_len,
            [client_id.len() as u8].into_iter().chain(client_id.clone()),
        );
    })
    .unwrap_err();
    assert!(matches!(err, HandshakeError::Resumption(_)), "{err}");
    // An abbreviated handshake: change_cipher_spec right after the ServerHello.
    let err = server_edited(s, |m| m.truncate(1)).unwrap_err();
    assert!(matches!(err, HandshakeError::Resumption(_)), "{err}");
    assert!(err.to_string().contains("full handshake"), "{err}");
}

#[test]
fn certificate_request_refused() {
    let s = session12(Leaf12::Rsa);
    let err = server_edited(s, |m| {
        // certificate_types [rsa_sign], signature algorithms [0x0401], no authorities.
        let body = vec![1, 1, 0, 2, 4, 1, 0, 0];
        m.insert(
            3,
            HandshakeMessage {
                msg_type: HS_CERTIFICATE_REQUEST,
                body,
            },
        );
    })
    .unwrap_err();
    assert!(matches!(err, HandshakeError::ClientAuthRequested), "{err}");
    // A client Certificate after all (instead of ClientKeyExchange's successor).
    let err = client_edited(s, |m| {
        m.push(HandshakeMessage {
            msg_type: 15,
            body: vec![0, 0],
        });
    })
    .unwrap_err();
    assert!(
        matches!(err, HandshakeError::UnexpectedMessage { found: 15, .. }),
        "{err}"
    );
}

#[test]
fn handshake_record_after_finished_refused() {
    let s = session12(Leaf12::Ecdsa);
    let summary = s.verified();
    let renegotiation = Record {
        content_type: CONTENT_HANDSHAKE,
        version: 0x0303,
        fragment: vec![0x5a; ENCRYPTED_FINISHED_LEN + 20],
    };
    for side in [Side::Client, Side::Server] {
        let (records, start) = match side {
            Side::Client => (&summary.client_records, summary.client_app_start),
            Side::Server => (&summary.server_records, summary.server_app_start),
        };
        // Right after the Finished, or between application records.
        for at in [start, records.len() - 1] {
            for (record, renegotiates) in [
                (renegotiation.clone(), true),
                (
                    Record {
                        content_type: CONTENT_CHANGE_CIPHER_SPEC,
                        version: 0x0303,
                        fragment: vec![1],
                    },
                    false,
                ),
            ] {
                let mut stream = Vec::new();
                for r in &records[..at] {
                    stream.extend_from_slice(&r.to_bytes());
                }
                stream.extend_from_slice(&record.to_bytes());
                for r in &records[at..] {
                    stream.extend_from_slice(&r.to_bytes());
                }
                let c = match side {
                    Side::Client => with_streams(s, Some(&stream), None),
                    Side::Server => with_streams(s, None, Some(&stream)),
                };
                let err = verify(&c).unwrap_err();
                if renegotiates {
                    assert!(
                        matches!(err, HandshakeError::Renegotiation { side: e, index } if e == side && index == at),
                        "{err}"
                    );
                } else {
                    assert!(
                        matches!(err, HandshakeError::UnexpectedRecord { found: 20, .. }),
                        "{err}"
                    );
                }
            }
        }
    }
}

#[test]
fn truncated_streams_refused() {
    let s = session12(Leaf12::Ecdsa);
    let summary = s.verified();
    let bytes_before = |records: &[Record], n: usize| -> usize {
        records[..n].iter().map(|r| 5 + r.fragment.len()).sum()
    };
    let server = &s.recording.server_to_client;
    let srv = summary.server_app_start;
    // Inside a record.
    let cut = bytes_before(&summary.server_records, srv) - 3;
    let err = verify(&with_streams(s, None, Some(&server[..cut]))).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Records {
                side: Side::Server,
                ..
            }
        ),
        "{err}"
    );
    // Before the encrypted Finished, before change_cipher_spec, before ServerHelloDone.
    for records in [srv - 1, srv - 2] {
        let cut = bytes_before(&summary.server_records, records);
        let err = verify(&with_streams(s, None, Some(&server[..cut]))).unwrap_err();
        assert!(
            matches!(
                err,
                HandshakeError::Incomplete {
                    side: Side::Server,
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = server_edited(s, |m| m.truncate(3)).unwrap_err();
    // Without its change_cipher_spec and the rest, the flight just stops.
    let (messages, _) = split(server);
    let stream = join(&messages[..3], &[]);
    let err2 = verify(&with_streams(s, None, Some(&stream))).unwrap_err();
    assert!(
        matches!(err, HandshakeError::UnexpectedRecord { found: 20, .. }),
        "{err}"
    );
    assert!(
        matches!(
            err2,
            HandshakeError::Incomplete {
                side: Side::Server,
                what: "ServerHelloDone"
            }
        ),
        "{err2}"
    );
    // The client: without its Finished, without ClientKeyExchange.
    let client = &s.recording.client_to_server;
    let crs = &summary.client_records;
    for records in [3, 1] {
        let cut = bytes_before(crs, records);
        let err = verify(&with_streams(s, Some(&client[..cut]), None)).unwrap_err();
        assert!(
            matches!(
                err,
                HandshakeError::Incomplete {
                    side: Side::Client,
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = verify(&with_streams(
        s,
        Some(&client[..bytes_before(crs, 1) + 7]),
        None,
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Records {
                side: Side::Client,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn server_hello_checks() {
    let s = session12(Leaf12::Ecdsa);
    // An extension the server may not send, by number.
    let err = server_edited(s, |m| add_extension(body_of(m, HS_SERVER_HELLO), 5, &[])).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::BadExtension {
                what: "ServerHello",
                ext: 5
            }
        ),
        "{err}"
    );
    // supported_versions makes it a TLS 1.3 ServerHello; selecting 1.2 there is refused.
    let err = server_edited(s, |m| {
        add_extension(body_of(m, HS_SERVER_HELLO), 43, &[3, 3])
    })
    .unwrap_err();
    assert!(matches!(err, HandshakeError::NotTls13 { .. }), "{err}");
    // Another version.
    let err = server_edited(s, |m| body_of(m, HS_SERVER_HELLO)[1] = 2).unwrap_err();
    assert!(
        matches!(err, HandshakeError::Version { found: 0x0302 }),
        "{err}"
    );
    // The TLS 1.3 downgrade sentinel, when the client offered TLS 1.3 (rustls does).
    let err = server_edited(s, |m| {
        body_of(m, HS_SERVER_HELLO)[26..34].copy_from_slice(&DOWNGRADE_SENTINEL)
    })
    .unwrap_err();
    assert!(matches!(err, HandshakeError::Downgrade), "{err}");
    // Compression.
    let err = server_edited(s, |m| {
        let sh = body_of(m, HS_SERVER_HELLO);
        let at = suite_at(sh) + 2;
        sh[at] = 1;
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Malformed {
                what: "ServerHello",
                ..
            }
        ),
        "{err}"
    );
    // renegotiation_info must be empty; the genuine one is.
    let (server, _) = split(&s.recording.server_to_client);
    let sh = &server[0].body;
    let at = suite_at(sh) + 5;
    let exts = extensions("test", &sh[at..]).unwrap();
    assert!(
        exts.contains(&(EXT_RENEGOTIATION_INFO, &[0u8][..])),
        "{exts:?}"
    );
    let err = server_edited(s, |m| {
        let sh = body_of(m, HS_SERVER_HELLO);
        let at = suite_at(sh) + 5;
        let mut exts: Vec<(u16, Vec<u8>)> = extensions("test", &sh[at..])
            .unwrap()
            .into_iter()
            .filter(|(t, _)| *t != EXT_RENEGOTIATION_INFO)
            .map(|(t, d)| (t, d.to_vec()))
            .collect();
        exts.push((EXT_RENEGOTIATION_INFO, vec![1, 7]));
        sh.truncate(at - 2);
        sh.extend_from_slice(&[0, 0]);
        for (t, d) in exts {
            add_extension(sh, t, &d);
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Malformed {
                what: "ServerHello renegotiation_info",
                ..
            }
        ),
        "{err}"
    );
    // No extensions block at all is well-formed TLS 1.2.
    let summary = server_edited(s, |m| {
        let sh = body_of(m, HS_SERVER_HELLO);
        let at = suite_at(sh) + 3;
        sh.truncate(at);
    })
    .unwrap();
    assert_eq!(summary.version, TlsVersion::Tls12);
}

#[test]
fn key_exchange_checks() {
    let s = session12(Leaf12::Ecdsa);
    // secp521r1 (25) is refused before any signature check.
    let err = server_edited(s, |m| body_of(m, HS_SERVER_KEY_EXCHANGE)[2] = 25).unwrap_err();
    assert!(matches!(err, HandshakeError::Curve { found: 25 }), "{err}");
    let err = server_edited(s, |m| body_of(m, HS_SERVER_KEY_EXCHANGE)[0] = 1).unwrap_err();
    assert!(matches!(err, HandshakeError::Malformed { .. }), "{err}");
    // A ClientKeyExchange point of the wrong size for the curve.
    let err = client_edited(s, |m| {
        let cke = body_of(m, HS_CLIENT_KEY_EXCHANGE);
        cke[0] -= 1;
        cke.pop();
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Malformed {
                what: "ClientKeyExchange",
                ..
            }
        ),
        "{err}"
    );
    // A signature scheme the suite does not take (ed25519).
    let err = server_edited(s, |m| {
        let ske = body_of(m, HS_SERVER_KEY_EXCHANGE);
        let at = 4 + usize::from(ske[3]);
        ske[at..at + 2].copy_from_slice(&[8, 7]);
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Tls12SignatureScheme { scheme: 0x0807, .. }
        ),
        "{err}"
    );
    // Garbage after the signature.
    let err = server_edited(s, |m| body_of(m, HS_SERVER_KEY_EXCHANGE).push(0)).unwrap_err();
    assert!(matches!(err, HandshakeError::Malformed { .. }), "{err}");
}

#[test]
fn encrypted_finished_is_one_record_of_one_message() {
    let s = session12(Leaf12::Ecdsa);
    let summary = s.verified();
    let fin = summary.server_app_start - 1;
    for (content_type, len) in [
        (CONTENT_HANDSHAKE, ENCRYPTED_FINISHED_LEN + 4),
        (23, ENCRYPTED_FINISHED_LEN),
    ] {
        let mut stream = Vec::new();
        for (i, r) in summary.server_records.iter().enumerate() {
            if i == fin {
                let mut fragment = r.fragment.clone();
                fragment.resize(len, 0);
                stream.extend_from_slice(
                    &Record {
                        content_type,
                        version: 0x0303,
                        fragment,
                    }
                    .to_bytes(),
                );
            } else {
                stream.extend_from_slice(&r.to_bytes());
            }
        }
        let err = verify(&with_streams(s, None, Some(&stream))).unwrap_err();
        if content_type == CONTENT_HANDSHAKE {
            assert!(
                matches!(err, HandshakeError::EncryptedFinished { side: Side::Server, found, .. } if found == len),
                "{err}"
            );
        } else {
            assert!(
                matches!(err, HandshakeError::UnexpectedRecord { found: 23, .. }),
                "{err}"
            );
        }
    }
}

#[test]
fn new_session_ticket_only_when_negotiated() {
    let s = session12(Leaf12::Ecdsa);
    let ticket = HandshakeMessage {
        msg_type: HS_NEW_SESSION_TICKET,
        body: vec![0, 0, 0x1c, 0x20, 0, 3, 1, 2, 3],
    };
    let err = server_edited(s, |m| m.push(ticket.clone())).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::UnexpectedMessage {
                found: HS_NEW_SESSION_TICKET,
                ..
            }
        ),
        "{err}"
    );
    // With an (empty) session_ticket extension in the ServerHello it is allowed; it is
    // not part of the transcript hash.
    let summary = server_edited(s, |m| {
        add_extension(body_of(m, HS_SERVER_HELLO), EXT_SESSION_TICKET, &[]);
        m.push(ticket.clone());
    })
    .unwrap();
    assert_eq!(
        summary.application_records(Side::Server).len(),
        s.verified().application_records(Side::Server).len()
    );
    // But not twice, and not malformed.
    let err = server_edited(s, |m| {
        add_extension(body_of(m, HS_SERVER_HELLO), EXT_SESSION_TICKET, &[]);
        m.push(ticket.clone());
        m.push(ticket.clone());
    })
    .unwrap_err();
    assert!(
        matches!(err, HandshakeError::UnexpectedMessage { .. }),
        "{err}"
    );
    let err = server_edited(s, |m| {
        add_extension(body_of(m, HS_SERVER_HELLO), EXT_SESSION_TICKET, &[]);
        m.push(HandshakeMessage {
            msg_type: HS_NEW_SESSION_TICKET,
            body: vec![0, 0, 0],
        });
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Malformed {
                what: "NewSessionTicket",
                ..
            }
        ),
        "{err}"
    );
}

/// Random edits of the plaintext flights never panic; most are refused.
#[test]
fn corrupted_plaintext_never_panics() {
    use rand::{Rng, SeedableRng};
    let s = session12(Leaf12::Ecdsa);
    let summary = s.verified();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let plain_len = |records: &[Record], n: usize| -> usize {
        records[..n].iter().map(|r| 5 + r.fragment.len()).sum()
    };
    let server_plain = plain_len(&summary.server_records, summary.server_app_start);
    let client_plain = plain_len(&summary.client_records, summary.client_app_start);
    let mut refused = 0;
    for _ in 0..300 {
        let mut server = s.recording.server_to_client.clone();
        let mut client = s.recording.client_to_server.clone();
        let (stream, len) = if rng.gen() {
            (&mut server, server_plain)
        } else {
            (&mut client, client_plain)
        };
        let at = rng.gen_range(0..len);
        stream[at] = rng.gen();
        if rng.gen_ratio(1, 4) {
            stream.truncate(rng.gen_range(0..len));
        }
        refused += usize::from(verify(&with_streams(s, Some(&client), Some(&server))).is_err());
    }
    assert!(refused > 200, "{refused} of 300 refused");
}
