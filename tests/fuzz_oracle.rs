//! Property tests of the oracle's decoders of untrusted bytes (inventory in
//! `fuzz_decoders.rs`): TLS record framing, inner plaintext, handshake message reassembly,
//! the notary's check of a recorded handshake (a real TLS 1.3 session, mutated), the records
//! the parties decrypt, and the template's HTTP, JSON and request checks. Each runs over
//! arbitrary bytes and over mutations of a valid encoding, and asserts no panic, an error for
//! invalid input, and the exact decoding where the input is valid.

mod fuzz_common;

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use fuzz_common::{apply_all, mutations};
use mpcstats::oracle::attestation::Direction;
use mpcstats::oracle::exchange::{self, Exchange, ExchangeConfig, ExchangePki, LeafKey};
use mpcstats::oracle::handshake::{self, roots_from_pem, HandshakeCheck, TlsVersion};
use mpcstats::oracle::mpc::gcm;
use mpcstats::oracle::prover::{client_config, Recording, RecordingStream, SecretCapture};
use mpcstats::oracle::template::http::{parse_response, Framing};
use mpcstats::oracle::template::json;
use mpcstats::oracle::template::value::check_value_text;
use mpcstats::oracle::template::Template;
use mpcstats::oracle::tls13::{
    parse_records, HandshakeReader, InnerPlaintext, Record, MAX_CIPHERTEXT_LEN,
    MAX_HANDSHAKE_MESSAGE_LEN, MAX_PLAINTEXT_LEN,
};
use proptest::prelude::*;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One genuine TLS 1.3 session through the prover's recording client, with what the notary
/// needs to check it.
struct Session {
    server_name: String,
    now: u64,
    roots: RootCertStore,
    recording: Recording,
    secret: Vec<u8>,
    transcript_hash: [u8; 32],
}

fn session() -> &'static Session {
    static S: OnceLock<Session> = OnceLock::new();
    S.get_or_init(|| {
        let server_name = exchange::DEFAULT_NAME.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let pki = ExchangePki::generate(&server_name, now, 30, LeafKey::EcdsaP256).unwrap();
        let roots = roots_from_pem(pki.ca_pem.as_bytes()).unwrap();
        let config = ExchangeConfig {
            tls: pki.server_config().unwrap(),
            exchange: Arc::new(Exchange::new(exchange::generate_accounts(3, 7))),
        };
        let capture = SecretCapture::new();
        let client = client_config(roots.clone(), capture.clone()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let recording = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(exchange::serve(listener, config));
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let recorder = RecordingStream::new(tcp, 1 << 20);
            let log = recorder.handle();
            let name = ServerName::try_from(server_name.clone()).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(name, recorder)
                .await
                .unwrap();
            let request = format!(
                "GET /api/v1/account HTTP/1.1\r\nHost: {server_name}\r\nX-API-KEY: key-1\r\nConnection: close\r\n\r\n"
            );
            tls.write_all(request.as_bytes()).await.unwrap();
            tls.flush().await.unwrap();
            let mut response = Vec::new();
            tls.read_to_end(&mut response).await.unwrap();
            server.abort();
            let recording = log.lock().unwrap().clone();
            recording
        });
        let secret = capture.session_secrets().unwrap().server_handshake;
        let mut s = Session {
            server_name,
            now,
            roots,
            recording,
            secret,
            transcript_hash: [0; 32],
        };
        s.transcript_hash = verify(&s, None, None, None).unwrap().transcript_hash;
        s
    })
}

fn verify(
    s: &Session,
    client: Option<&[u8]>,
    server: Option<&[u8]>,
    secret: Option<&[u8]>,
) -> Result<handshake::HandshakeSummary, handshake::HandshakeError> {
    handshake::verify(&HandshakeCheck {
        client_to_server: client.unwrap_or(&s.recording.client_to_server),
        server_to_client: server.unwrap_or(&s.recording.server_to_client),
        server_handshake_secret: secret.unwrap_or(&s.secret),
        server_name: &s.server_name,
        now: s.now,
        roots: &s.roots,
    })
}

fn record_strategy() -> impl Strategy<Value = Record> {
    (
        20u8..=23,
        prop_oneof![Just(0x0303u16), Just(0x0301)],
        prop::collection::vec(any::<u8>(), 1..40),
    )
        .prop_map(|(content_type, version, fragment)| Record {
            content_type,
            version,
            fragment,
        })
}

fn encode_records(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(Record::to_bytes).collect()
}

/// A response in the exchange's shape, chunked or with Content-Length.
fn response(pieces: &[Vec<u8>], chunked: bool) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n".to_vec();
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for p in pieces.iter().filter(|p| !p.is_empty()) {
            out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        let body: Vec<u8> = pieces.concat();
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn template() -> Template {
    mpcstats::roles::init::exchange_dataset()
        .template
        .expect("the exchange dataset has a template")
}

const BODY: &str = r#"{"account":"acct-3","balances":[{"asset":"BTC","free":"0.5"},{"asset":"ETH","free":"12.34500000"}]}"#;

fn ranges_ok(data: &[Range<usize>], body_start: usize, len: usize) -> bool {
    let mut at = body_start;
    data.iter().all(|r| {
        let ok = r.start >= at && r.start <= r.end && r.end <= len;
        at = r.end;
        ok
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20000))]

    /// Record framing: whatever parses re-encodes to exactly the input (no byte is ignored)
    /// with every header in range; a valid stream parses to its records.
    #[test]
    fn tls_records(records in prop::collection::vec(record_strategy(), 0..5), ms in mutations(), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let valid = encode_records(&records);
        prop_assert_eq!(parse_records(&valid).unwrap(), records);
        for bytes in [apply_all(&valid, &ms), junk] {
            if let Ok(parsed) = parse_records(&bytes) {
                prop_assert_eq!(encode_records(&parsed), bytes);
                for r in &parsed {
                    prop_assert!((20..=23).contains(&r.content_type));
                    prop_assert!(!r.fragment.is_empty() && r.fragment.len() <= MAX_CIPHERTEXT_LEN);
                }
            }
        }
    }

    /// Inner plaintext: the content type is the last non-zero byte and the content what
    /// precedes it; all-zero or overlong input is refused.
    #[test]
    fn inner_plaintext(mut plain in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..64), pad in 0usize..40, long in any::<bool>()) {
        plain.extend(std::iter::repeat_n(0, pad));
        if long {
            plain.resize(MAX_PLAINTEXT_LEN + 2, 1);
        }
        let r = InnerPlaintext::parse(7, plain.clone());
        match plain.iter().rposition(|&b| b != 0) {
            Some(at) if plain.len() <= MAX_PLAINTEXT_LEN + 1 => {
                let p = r.unwrap();
                prop_assert_eq!(p.content_type, plain[at]);
                prop_assert_eq!(&p.content[..], &plain[..at]);
            }
            _ => prop_assert!(r.is_err()),
        }
    }

    /// Handshake reassembly, fed in arbitrary pieces: the messages taken are exactly the
    /// stream's prefix; a header announcing more than the limit is an error.
    #[test]
    fn handshake_reader(stream in prop::collection::vec(any::<u8>(), 0..200), cuts in prop::collection::vec(0usize..200, 0..6), huge in any::<bool>()) {
        let mut stream = stream;
        if huge && stream.len() >= 4 {
            let len = (MAX_HANDSHAKE_MESSAGE_LEN + 1) as u32;
            stream[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
        }
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= stream.len()).collect();
        cuts.push(stream.len());
        cuts.sort();
        let mut reader = HandshakeReader::new();
        let mut taken = Vec::new();
        let mut failed = false;
        let mut from = 0;
        'outer: for c in cuts {
            reader.push(&stream[from..c]);
            from = c;
            loop {
                match reader.next_message() {
                    Ok(Some(m)) => taken.extend(m.to_bytes()),
                    Ok(None) => break,
                    Err(_) => { failed = true; break 'outer; }
                }
            }
        }
        prop_assert!(stream.starts_with(&taken));
        let rest = &stream[taken.len()..];
        if failed {
            let len = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            prop_assert!(len > MAX_HANDSHAKE_MESSAGE_LEN);
        } else {
            prop_assert_eq!(reader.has_partial(), !rest.is_empty());
        }
    }

    /// HTTP responses built from arbitrary body pieces decode to exactly that body, chunked
    /// or not; mutated ones are refused or decode consistently (ranges in order and in
    /// bounds, `map` and `unmap` inverse).
    #[test]
    fn http_responses(pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..4), chunked in any::<bool>(), ms in mutations(), junk in prop::collection::vec(any::<u8>(), 0..100)) {
        let valid = response(&pieces, chunked);
        let parsed = parse_response(&valid).unwrap();
        prop_assert_eq!(parsed.body(&valid), pieces.concat());
        prop_assert_eq!(parsed.framing, if chunked { Framing::Chunked } else { Framing::ContentLength });
        for bytes in [apply_all(&valid, &ms), junk.clone(), [&b"HTTP/1.1 200 OK\r\n"[..], &junk].concat()] {
            if let Ok(r) = parse_response(&bytes) {
                prop_assert!(ranges_ok(&r.data, r.body_start, bytes.len()));
                let body = r.body(&bytes);
                for d in r.data.iter().filter(|d| !d.is_empty()) {
                    let inner = d.start..d.end;
                    let mapped = r.map(&inner).unwrap();
                    prop_assert_eq!(&body[mapped.clone()], &bytes[inner.clone()]);
                    prop_assert_eq!(r.unmap(&mapped), Some(inner));
                }
            }
        }
    }

    /// The template's checks on the exchange's response shape: the genuine response locates
    /// the value and the account; a mutated one is refused, or located consistently (the
    /// parties' check of the opened response agrees with the prover's).
    #[test]
    fn template_checks(ms in mutations(), chunked in any::<bool>(), split in 1usize..100, window in (0usize..400, 0usize..400)) {
        let t = template();
        let body = BODY.as_bytes();
        let split = split.min(body.len() - 1);
        let pieces = vec![body[..split].to_vec(), body[split..].to_vec()];
        let valid = response(&pieces, chunked);
        let genuine = t.locate(&valid, vec![]);
        let value_inside = |d: &mpcstats::oracle::proof::Declaration| {
            let r = d.value.start as usize..d.value.end as usize;
            valid[r].to_vec()
        };
        match &genuine {
            Ok((d, account)) => {
                prop_assert_eq!(account.as_str(), "acct-3");
                prop_assert_eq!(value_inside(d), b"12.34500000".to_vec());
            }
            // A chunk boundary through the value's text is refused.
            Err(_) => prop_assert!(chunked),
        }
        let bytes = apply_all(&valid, &ms);
        if let Ok((d, account)) = t.locate(&bytes, vec![]) {
            let r = d.value.start as usize..d.value.end as usize;
            prop_assert!(check_value_text(&bytes[r.clone()], t.decimals).is_ok());
            let mut opened = bytes.clone();
            opened[r.clone()].fill(b'7');
            prop_assert_eq!(t.check_response(&opened, r).unwrap(), account);
        }
        let (a, b) = window;
        let _ = t.check_response(&bytes, a..b);
        let _ = t.check_response(&valid, a..b);
    }

    /// JSON paths and windows over arbitrary text: no panic; a path that parses has one
    /// step per dot-separated part.
    #[test]
    fn json_paths_and_windows(path in "[a-z\\[\\]=.A-Z0-9]{0,24}", raw in ".{0,24}", body in prop::collection::vec(any::<u8>(), 0..80), a in 0usize..100, b in 0usize..100) {
        for p in [&path, &raw] {
            if let Ok(steps) = json::parse_path(p) {
                prop_assert!(!steps.is_empty());
            }
        }
        let value: serde_json::Value = serde_json::from_str(BODY).unwrap();
        let _ = json::lookup(&value, &path);
        let _ = json::lookup(&value, &raw);
        let _ = json::find_window(BODY.as_bytes(), &value, &path);
        let _ = json::check_window(&body, &(a..b), &path, "account");
        let _ = json::check_window(BODY.as_bytes(), &(a..b), "balances[asset=ETH].free", &raw);
        let _ = json::is_string_window(&body, &(a..b));
        let _ = check_value_text(&body, 30);
    }

    /// The parameter lengths a provider declares: any list is refused or laid out within the
    /// request's bounds.
    #[test]
    fn request_layouts(lens in prop::collection::vec(prop_oneof![0u32..2000, Just(u32::MAX)], 0..6)) {
        let t = mpcstats::roles::init::signed_dataset().template.unwrap();
        if let Ok(layout) = t.request_layout(&lens) {
            prop_assert_eq!(lens.len(), t.variable_params());
            prop_assert!(lens.iter().all(|&l| l as usize <= mpcstats::oracle::template::request::MAX_PARAM_LEN));
            prop_assert!(!layout.is_empty());
        }
    }

    /// The records the parties decrypt: each entry must be exactly one protected record.
    #[test]
    fn gcm_record_entries(records in prop::collection::vec(record_strategy(), 0..4), ms in mutations(), tls12 in any::<bool>()) {
        let entries: Vec<Vec<u8>> = records.iter().map(Record::to_bytes).collect();
        let mutated: Vec<Vec<u8>> = entries.iter().map(|e| apply_all(e, &ms)).collect();
        let version = if tls12 { TlsVersion::Tls12 } else { TlsVersion::Tls13 };
        for list in [&entries, &mutated] {
            if let Ok(infos) = gcm::parse(version, Direction::ServerToClient, &[3; 12], list) {
                prop_assert_eq!(infos.len(), list.len());
                for (info, e) in infos.iter().zip(list.iter()) {
                    prop_assert_eq!(&info.header[..], &e[..5]);
                    prop_assert!(info.ciphertext.len() + 16 <= e.len() - 5);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The notary's check of a genuine TLS 1.3 session, mutated: refused, or (a mutation in a
    /// part the check ignores, such as application data) verified with the same transcript
    /// hash. Arbitrary streams and secrets are refused.
    #[test]
    fn notary_handshake_check(ms in mutations(), side in 0u8..3, junk in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = session();
        let (c, sv, k) = (&s.recording.client_to_server, &s.recording.server_to_client, &s.secret);
        let r = match side {
            0 => verify(s, Some(&apply_all(c, &ms)), None, None),
            1 => verify(s, None, Some(&apply_all(sv, &ms)), None),
            _ => verify(s, None, None, Some(&apply_all(k, &ms))),
        };
        if let Ok(summary) = r {
            prop_assert_eq!(summary.transcript_hash, s.transcript_hash);
        }
        prop_assert!(verify(s, Some(&junk), None, None).is_err());
        prop_assert!(verify(s, None, Some(&junk), None).is_err());
        prop_assert!(verify(s, Some(&junk), Some(&junk), Some(&junk)).is_err());
    }
}
