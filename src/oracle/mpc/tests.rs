//! The check on a real recorded session against the local exchange, and on sessions altered
//! by each kind of cheater; costs of the real session and of synthetic 1 KB and 4 KB ones.

use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::local::{
    key_pairs, measure, plain_layout, reconstruct_value, run_local, seal_stream, synthetic_with,
    xor_shares, Inputs, Outcome,
};
use super::VerifyError;
use crate::oracle::attestation::Direction;
use crate::oracle::exchange::LeafKey;
use crate::oracle::handshake::Side;
use crate::oracle::handshake::TlsVersion;
use crate::oracle::proof::decrypt_application_data;
use crate::oracle::proof::{decrypt_application_data12, traffic_keys_of_tls12};
use crate::oracle::prover::tls12_application_keys;
use crate::oracle::template::{ParamKind, QueryParam, Template};
use crate::oracle::testutil::session;
use crate::oracle::testutil::{session12, Leaf12};
use crate::oracle::tls12::Tls12Keys;
use crate::oracle::tls13::{
    parse_records, TrafficKeys, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE,
};

/// The genuine recorded session: public inputs (scale 8), keys, plaintexts, the balance.
struct Genuine {
    inputs: Inputs,
    client: TrafficKeys,
    server: TrafficKeys,
    request: Vec<u8>,
    response: Vec<u8>,
    eth: String,
    account: std::ops::Range<usize>,
}

fn genuine() -> Genuine {
    let s = session(LeafKey::EcdsaP256);
    let summary = s.verified();
    let records = |side| {
        summary
            .application_records(side)
            .iter()
            .map(|r| r.to_bytes())
            .collect::<Vec<_>>()
    };
    let client = TrafficKeys::derive(&s.secrets.client_application).unwrap();
    let server = TrafficKeys::derive(&s.secrets.server_application).unwrap();
    let (client_records, server_records) = (records(Side::Client), records(Side::Server));
    let request =
        decrypt_application_data(Direction::ClientToServer, &client, &client_records).unwrap();
    let response =
        decrypt_application_data(Direction::ServerToClient, &server, &server_records).unwrap();
    let text = String::from_utf8(response.clone()).unwrap();
    let find = |needle: &str| {
        let start = text.find(needle).unwrap() + needle.len();
        start..start + text[start..].find('"').unwrap()
    };
    let value = find("{\"asset\":\"ETH\",\"free\":\"");
    assert_eq!(text[value.clone()], s.eth_balance);
    let inputs = Inputs {
        version: TlsVersion::Tls13,
        client_records,
        server_records,
        client_iv: client.iv,
        server_iv: server.iv,
        request: plain_layout(&s.server_name, "/api/v1/account"),
        value,
        decimals: 8,
        scale: 8,
    };
    Genuine {
        inputs,
        client,
        server,
        request,
        response,
        eth: s.eth_balance.clone(),
        account: find("{\"account\":\""),
    }
}

/// [`genuine`] off the async runtime (the test session starts its own).
async fn load() -> Genuine {
    tokio::task::spawn_blocking(genuine).await.unwrap()
}

async fn run(inputs: Inputs, client: [u8; 16], server: [u8; 16], seed: u64) -> [Outcome; 3] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let pairs = key_pairs(&xor_shares(client, &mut rng), &xor_shares(server, &mut rng));
    run_local(Arc::new(inputs), pairs, seed).await
}

/// All three parties refuse, with the same error; returns it.
fn refused(out: [Outcome; 3]) -> VerifyError {
    let msgs: Vec<String> = out
        .iter()
        .map(|o| match &o.result {
            Ok(_) => panic!("a party accepted a session it must refuse"),
            Err(e) => e.to_string(),
        })
        .collect();
    assert!(
        msgs.iter().all(|m| *m == msgs[0]),
        "verdicts differ: {msgs:?}"
    );
    let [o, _, _] = out;
    o.result.err().unwrap()
}

/// (content type, content) of every record of one direction.
fn open_all(keys: &TrafficKeys, records: &[Vec<u8>]) -> Vec<(u8, Vec<u8>)> {
    records
        .iter()
        .enumerate()
        .map(|(seq, bytes)| {
            let inner = keys
                .open(seq as u64, &parse_records(bytes).unwrap()[0])
                .unwrap();
            (inner.content_type, inner.content)
        })
        .collect()
}

fn seal_all(keys: &TrafficKeys, inner: &[(u8, Vec<u8>)]) -> Vec<Vec<u8>> {
    inner
        .iter()
        .enumerate()
        .map(|(seq, (ty, content))| keys.seal(seq as u64, *ty, content).unwrap().to_bytes())
        .collect()
}

/// The balance text × 10^scale, truncated.
fn scaled(text: &str, scale: usize) -> u128 {
    let (int, frac) = text.split_once('.').unwrap();
    format!("{int}{}", &frac[..scale]).parse().unwrap()
}

#[tokio::test]
async fn genuine_session_verifies() {
    let g = load().await;
    let types: Vec<u8> = open_all(&g.server, &g.inputs.server_records)
        .iter()
        .map(|(t, _)| *t)
        .collect();
    eprintln!(
        "testutil session: {} client / {} server records (server inner types {types:?}), \
         request {} B, response {} B",
        g.inputs.client_records.len(),
        g.inputs.server_records.len(),
        g.request.len(),
        g.response.len()
    );
    for scale in [8u32, 2] {
        let inputs = Inputs {
            scale,
            ..g.inputs.clone()
        };
        let t = Instant::now();
        let out = run(inputs, g.client.key, g.server.key, 7 + scale as u64).await;
        let secs = t.elapsed().as_secs_f64();
        for o in &out {
            let v = o.result.as_ref().unwrap();
            assert!(v.public_params.is_empty());
            assert!(v.close_notify, "the test exchange sends close_notify");
            let mut want = g.response.clone();
            want[g.inputs.value.clone()].fill(b'0');
            assert_eq!(v.response, want);
            assert_ne!(v.response, g.response);
        }
        assert_eq!(
            reconstruct_value(&out),
            Some(scaled(&g.eth, scale as usize)),
            "scale {scale}"
        );
        let c = out
            .iter()
            .max_by_key(|o| o.counters.bytes_sent)
            .unwrap()
            .counters;
        eprintln!(
            "testutil session, scale {scale}: {} rounds, {} AND gates, {} B sent / {} B received \
             per party, {secs:.2} s",
            c.rounds,
            out[0].result.as_ref().unwrap().and_gates,
            c.bytes_sent,
            c.bytes_received
        );
    }
}

#[tokio::test]
async fn integer_window_without_point() {
    let g = load().await;
    let dot = g.eth.find('.').unwrap();
    let inputs = Inputs {
        value: g.inputs.value.start..g.inputs.value.start + dot,
        decimals: 0,
        scale: 0,
        ..g.inputs.clone()
    };
    let out = run(inputs, g.client.key, g.server.key, 5).await;
    assert_eq!(reconstruct_value(&out), Some(scaled(&g.eth, 0)));
}

#[tokio::test]
async fn flipped_bit_fails_its_tag() {
    let g = load().await;
    let mut inputs = g.inputs.clone();
    let last = inputs.server_records.len() - 2;
    inputs.server_records[last][9] ^= 0x10;
    let e = refused(run(inputs, g.client.key, g.server.key, 1).await);
    assert!(
        matches!(e, VerifyError::TagMismatch { direction: Direction::ServerToClient, seq } if seq == last as u64),
        "{e}"
    );
    let mut inputs = g.inputs.clone();
    let n = inputs.client_records[0].len();
    inputs.client_records[0][n - 1] ^= 1;
    let e = refused(run(inputs, g.client.key, g.server.key, 2).await);
    assert!(
        matches!(
            e,
            VerifyError::TagMismatch {
                direction: Direction::ClientToServer,
                seq: 0
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn wrong_key_share_is_refused() {
    let g = load().await;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let client = xor_shares(g.client.key, &mut rng);
    let mut server = xor_shares(g.server.key, &mut rng);
    server[1][5] ^= 0x40;
    // Component 1 changed for both holders: a well-formed sharing of a wrong key.
    let out = run_local(Arc::new(g.inputs.clone()), key_pairs(&client, &server), 3).await;
    let e = refused(out);
    assert!(
        matches!(
            e,
            VerifyError::TagMismatch {
                direction: Direction::ServerToClient,
                seq: 0
            }
        ),
        "{e}"
    );
    // Only party 1's copy of component 1 changed: the sharing is not well formed.
    let server = xor_shares(g.server.key, &mut rng);
    let mut pairs = key_pairs(&client, &server);
    pairs[1].client.0[0] ^= 1;
    let e = refused(run_local(Arc::new(g.inputs.clone()), pairs, 4).await);
    assert!(matches!(e, VerifyError::KeySharesInconsistent), "{e}");
}

#[tokio::test]
async fn windows_off_the_value_are_refused() {
    let g = load().await;
    let v = g.inputs.value.clone();
    let cases = [
        // The account id as an integer.
        (g.account.clone(), 0, 0),
        // Text at the start of the response, as long as the value.
        (0..v.len(), 8, 8),
        // One byte early (the opening quote) and one late (the closing quote).
        (v.start - 1..v.end - 1, 8, 8),
        (v.start + 1..v.end + 1, 8, 8),
        (v.start..v.end + 1, 8, 2),
        // The right window read with too few decimals allowed.
        (v.clone(), 7, 2),
        (v.clone(), 0, 0),
    ];
    for (k, (value, decimals, scale)) in cases.into_iter().enumerate() {
        let inputs = Inputs {
            value: value.clone(),
            decimals,
            scale,
            ..g.inputs.clone()
        };
        let e = refused(run(inputs, g.client.key, g.server.key, 10 + k as u64).await);
        assert!(
            matches!(e, VerifyError::NotADecimal { decimals: d } if d == decimals),
            "window {value:?}: {e}"
        );
    }
    // Public refusals: beyond the response, too long, too many digits with the scale.
    let n = g.response.len();
    for (value, decimals, scale) in [
        (n - 3..n + 1, 0, 0),
        (v.start..v.start + 31, 8, 8),
        (v.start..v.start + 21, 8, 18),
    ] {
        let inputs = Inputs {
            value,
            decimals,
            scale,
            ..g.inputs.clone()
        };
        let e = refused(run(inputs, g.client.key, g.server.key, 20).await);
        assert!(matches!(e, VerifyError::ValueWindow { .. }), "{e}");
    }
}

#[tokio::test]
async fn smuggled_second_request_is_refused() {
    let g = load().await;
    let prefix = String::from_utf8(g.inputs.request.expected.clone()).unwrap();
    let smuggled = format!("{prefix}X-API-KEY: k\r\n\r\nGET /other HTTP/1.1\r\n\r\n");
    let inputs = Inputs {
        client_records: seal_stream(&g.client, smuggled.as_bytes()),
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 30).await);
    assert!(matches!(e, VerifyError::SecondRequest), "{e}");
    // The same split over two records, the blank line straddling them.
    let cut = prefix.len() + 14;
    let mut client = seal_all(
        &g.client,
        &[
            (
                CONTENT_APPLICATION_DATA,
                smuggled.as_bytes()[..cut].to_vec(),
            ),
            (
                CONTENT_APPLICATION_DATA,
                smuggled.as_bytes()[cut..].to_vec(),
            ),
        ],
    );
    client.push(g.client.seal(2, CONTENT_ALERT, &[1, 0]).unwrap().to_bytes());
    let inputs = Inputs {
        client_records: client,
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 31).await);
    assert!(matches!(e, VerifyError::SecondRequest), "{e}");
    // A request not ending with the blank line, and one with another prefix.
    let open = format!("{prefix}X-API-KEY: k\r\n\r\nGET /other HTTP/1.1\r\n");
    let inputs = Inputs {
        client_records: seal_stream(&g.client, open.as_bytes()),
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 32).await);
    assert!(matches!(e, VerifyError::RequestHead), "{e}");
    let other = String::from_utf8(g.request.clone())
        .unwrap()
        .replace("/api/v1/account", "/api/v1/orders!");
    let inputs = Inputs {
        client_records: seal_stream(&g.client, other.as_bytes()),
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 33).await);
    assert!(matches!(e, VerifyError::RequestHead), "{e}");
    // Bare LF line endings a lenient server would read as a blank line, and a bare CR.
    for (k, hidden) in [
        "X-API-KEY: k\n\nGET /other HTTP/1.1\r\n\r\n",
        "X-API-KEY: k\r\n\nGET /other HTTP/1.1\r\n\r\n",
        "X-API-KEY: k\rX-Other: y\r\n\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let bare = format!("{prefix}{hidden}");
        let inputs = Inputs {
            client_records: seal_stream(&g.client, bare.as_bytes()),
            ..g.inputs.clone()
        };
        let e = refused(run(inputs, g.client.key, g.server.key, 34 + k as u64).await);
        assert!(matches!(e, VerifyError::SecondRequest), "{hidden:?}: {e}");
    }
}

/// The genuine session's response under a request with query parameters `query` (the text
/// after `?`), checked against `template`.
fn with_query(g: &Genuine, query: &str, template: &Template, lens: &[u32]) -> Inputs {
    let request = format!(
        "GET /api/v1/account?{query} HTTP/1.1\r\nHost: {}\r\nX-API-KEY: k\r\nConnection: close\r\n\r\n",
        template.server_name
    );
    Inputs {
        client_records: seal_stream(&g.client, request.as_bytes()),
        request: template.request_layout(lens).unwrap(),
        ..g.inputs.clone()
    }
}

fn query_template(g: &Genuine, kinds: &[(&str, Option<&str>, Option<ParamKind>)]) -> Template {
    Template {
        server_name: crate::oracle::testutil::session(LeafKey::EcdsaP256)
            .server_name
            .clone(),
        port: 443,
        method: "GET".into(),
        path: "/api/v1/account".into(),
        query: kinds
            .iter()
            .map(|(name, value, kind)| QueryParam {
                name: name.to_string(),
                kind: *kind,
                value: value.map(String::from),
            })
            .collect(),
        signing: None,
        value: "v".into(),
        account: "a".into(),
        decimals: g.inputs.decimals,
        max_age_secs: 60,
    }
}

#[tokio::test]
async fn query_parameters_fixed_public_and_hidden() {
    let g = load().await;
    let t = query_template(
        &g,
        &[
            ("recvWindow", Some("60000"), None),
            ("symbol", None, Some(ParamKind::Public)),
            ("timestamp", None, None),
            ("signature", None, None),
        ],
    );
    let sig = "ab12".repeat(16);
    let query = format!("recvWindow=60000&symbol=ETHUSDT&timestamp=1700000000000&signature={sig}");
    let inputs = with_query(&g, &query, &t, &[7, 13, 64]);
    let out = run(inputs, g.client.key, g.server.key, 50).await;
    for o in &out {
        let v = o.result.as_ref().unwrap();
        assert_eq!(v.public_params, vec![b"ETHUSDT".to_vec()]);
    }
    assert_eq!(reconstruct_value(&out), Some(scaled(&g.eth, 8)));

    // Another fixed value, or another name: refused with the head verdict only.
    let other = query.replace("60000", "60001");
    let e = refused(
        run(
            with_query(&g, &other, &t, &[7, 13, 64]),
            g.client.key,
            g.server.key,
            51,
        )
        .await,
    );
    assert!(matches!(e, VerifyError::RequestHead), "{e}");
    let other = query.replace("symbol=", "symbal=");
    let e = refused(
        run(
            with_query(&g, &other, &t, &[7, 13, 64]),
            g.client.key,
            g.server.key,
            52,
        )
        .await,
    );
    assert!(matches!(e, VerifyError::RequestHead), "{e}");
    // Declared lengths that shift the segments.
    let e = refused(
        run(
            with_query(&g, &query, &t, &[7, 12, 65]),
            g.client.key,
            g.server.key,
            53,
        )
        .await,
    );
    assert!(matches!(e, VerifyError::RequestHead), "{e}");

    // Hidden values outside the safe set: each refused inside the MPC.
    for (k, bad) in [
        "17000 0000000",
        "1700000000%0g",
        "170000000000%",
        "170000000000&",
        "17000000000\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let q = query.replace("1700000000000", bad);
        let e = refused(
            run(
                with_query(&g, &q, &t, &[7, 13, 64]),
                g.client.key,
                g.server.key,
                60 + k as u64,
            )
            .await,
        );
        assert!(
            matches!(e, VerifyError::UnsafeHidden | VerifyError::SecondRequest),
            "{bad:?}: {e}"
        );
        if !bad.contains('\r') {
            assert!(matches!(e, VerifyError::UnsafeHidden), "{bad:?}: {e}");
        }
    }
    // A %XX escape is fine; an unsafe public value is refused after opening.
    let q = query.replace("1700000000000", "17000000%2F00");
    assert!(run(
        with_query(&g, &q, &t, &[7, 13, 64]),
        g.client.key,
        g.server.key,
        70
    )
    .await[0]
        .result
        .is_ok());
    let q = query.replace("ETHUSDT", "ETH#SDT");
    let e = refused(
        run(
            with_query(&g, &q, &t, &[7, 13, 64]),
            g.client.key,
            g.server.key,
            71,
        )
        .await,
    );
    assert!(matches!(e, VerifyError::UnsafePublic { index: 0 }), "{e}");
}

#[tokio::test]
async fn server_key_update_padding_and_late_data_are_refused() {
    let g = load().await;
    let inner = open_all(&g.server, &g.inputs.server_records);
    let last_data = inner
        .iter()
        .rposition(|(t, _)| *t == CONTENT_APPLICATION_DATA)
        .unwrap();
    assert_eq!(inner.last().unwrap(), &(CONTENT_ALERT, vec![1, 0]));

    // A KeyUpdate (update_not_requested) right after the response.
    let mut with_update = inner.clone();
    with_update.insert(last_data + 1, (CONTENT_HANDSHAKE, vec![24, 0, 0, 1, 0]));
    let inputs = Inputs {
        server_records: seal_all(&g.server, &with_update),
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 40).await);
    assert!(
        matches!(e, VerifyError::KeyUpdate { seq } if seq == last_data as u64 + 1),
        "{e}"
    );
    assert!(e.to_string().contains("server KeyUpdate in the session"));

    // The last data record padded with zeros.
    let mut padded = inner.clone();
    let (_, content) = &mut padded[last_data];
    content.extend_from_slice(&[CONTENT_APPLICATION_DATA, 0]);
    padded[last_data].0 = 0;
    let inputs = Inputs {
        server_records: seal_all(&g.server, &padded),
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 41).await);
    assert!(
        matches!(e, VerifyError::Padding { direction: Direction::ServerToClient, seq } if seq == last_data as u64),
        "{e}"
    );

    // Data after close_notify, and an alert other than close_notify.
    let mut late = inner.clone();
    late.push((CONTENT_APPLICATION_DATA, b"more".to_vec()));
    let mut fatal = inner.clone();
    *fatal.last_mut().unwrap() = (CONTENT_ALERT, vec![2, 40]);
    for (k, records) in [late, fatal].into_iter().enumerate() {
        let inputs = Inputs {
            server_records: seal_all(&g.server, &records),
            ..g.inputs.clone()
        };
        let e = refused(run(inputs, g.client.key, g.server.key, 42 + k as u64).await);
        assert!(
            matches!(
                e,
                VerifyError::Refused {
                    direction: Direction::ServerToClient,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[tokio::test]
async fn synthetic_sessions_cost_the_same_rounds_at_every_size() {
    let mut rounds = std::collections::HashMap::new();
    for (len, version) in [
        (1024usize, TlsVersion::Tls13),
        (4096, TlsVersion::Tls13),
        (16384, TlsVersion::Tls13),
        (1024, TlsVersion::Tls12),
        (16384, TlsVersion::Tls12),
    ] {
        let syn = synthetic_with(len, len as u64, version);
        assert_eq!(syn.response.len(), len);
        assert_eq!(
            &syn.response[syn.inputs.value.clone()],
            syn.value_text.as_bytes()
        );
        let (cost, out) = measure(
            syn.inputs.clone(),
            syn.client_keys.key,
            syn.server_keys.key,
            len as u64,
        )
        .await
        .unwrap();
        assert_eq!(reconstruct_value(&out), Some(scaled(&syn.value_text, 8)));
        assert_eq!(cost.response_len, len);
        eprintln!("synthetic {version}: {cost}");
        let r = rounds.entry(version).or_insert(cost.rounds);
        assert_eq!(*r, cost.rounds, "{version}: rounds depend on the size");
    }
}

/// A genuine recorded TLS 1.2 session as the parties get it, with its keys.
struct Genuine12 {
    inputs: Inputs,
    client: Tls12Keys,
    server: Tls12Keys,
    response: Vec<u8>,
}

fn genuine12(leaf: Leaf12) -> Genuine12 {
    let s = session12(leaf);
    let summary = s.verified();
    assert_eq!(summary.version, TlsVersion::Tls12);
    let records = |side| {
        summary
            .application_records(side)
            .iter()
            .map(|r| r.to_bytes())
            .collect::<Vec<_>>()
    };
    let (client, server) = tls12_application_keys(&summary, &s.master_secret);
    let (client_records, server_records) = (records(Side::Client), records(Side::Server));
    let response =
        decrypt_application_data12(Direction::ServerToClient, &server, &server_records).unwrap();
    assert_eq!(response, s.response);
    let text = String::from_utf8(response.clone()).unwrap();
    let needle = "{\"asset\":\"ETH\",\"free\":\"";
    let start = text.find(needle).unwrap() + needle.len();
    let value = start..start + text[start..].find('"').unwrap();
    let inputs = Inputs {
        version: TlsVersion::Tls12,
        client_records,
        server_records,
        client_iv: traffic_keys_of_tls12(&client).iv,
        server_iv: traffic_keys_of_tls12(&server).iv,
        request: plain_layout(&s.server_name, "/api/v1/account"),
        value,
        decimals: 8,
        scale: 8,
    };
    Genuine12 {
        inputs,
        client,
        server,
        response,
    }
}

async fn load12(leaf: Leaf12) -> Genuine12 {
    tokio::task::spawn_blocking(move || genuine12(leaf))
        .await
        .unwrap()
}

#[tokio::test]
async fn tls12_sessions_verify_in_mpc() {
    for leaf in [Leaf12::Ecdsa, Leaf12::Rsa] {
        let g = load12(leaf).await;
        let out = run(g.inputs.clone(), g.client.key, g.server.key, 80).await;
        let text = String::from_utf8(g.response.clone()).unwrap();
        let eth = &text[g.inputs.value.clone()];
        assert_eq!(reconstruct_value(&out), Some(scaled(eth, 8)), "{leaf:?}");
        let c = out[0].counters;
        eprintln!(
            "TLS 1.2 {leaf:?}: {} rounds, {} B sent",
            c.rounds, c.bytes_sent
        );
    }
}

#[tokio::test]
async fn tls12_cheaters_are_refused() {
    let g = load12(Leaf12::Ecdsa).await;
    // A flipped ciphertext bit.
    let mut inputs = g.inputs.clone();
    inputs.server_records[0][20] ^= 4;
    let e = refused(run(inputs, g.client.key, g.server.key, 81).await);
    assert!(matches!(e, VerifyError::TagMismatch { seq: 0, .. }), "{e}");
    // The TLS 1.3 record format applied to TLS 1.2 records: every tag fails.
    let inputs = Inputs {
        version: TlsVersion::Tls13,
        ..g.inputs.clone()
    };
    assert!(refused(run(inputs, g.client.key, g.server.key, 82).await)
        .to_string()
        .contains("record"));
    // Records resealed by a cheater who knows the keys: a repeated explicit nonce, a
    // renegotiation handshake record, an alert that is not close_notify, data after it.
    let seal = |k: &Tls12Keys, recs: &[(u8, Vec<u8>)]| -> Vec<Vec<u8>> {
        recs.iter()
            .enumerate()
            .map(|(i, (t, c))| k.seal(i as u64 + 1, *t, c).unwrap().to_bytes())
            .collect()
    };
    let data = g.response.clone();
    let mut repeated = seal(
        &g.server,
        &[
            (CONTENT_APPLICATION_DATA, data.clone()),
            (CONTENT_ALERT, vec![1, 0]),
        ],
    );
    let first_nonce = repeated[0][5..13].to_vec();
    let second = g.server.seal(2, CONTENT_ALERT, &[1, 0]).unwrap();
    let mut fragment = second.fragment.clone();
    fragment[..8].copy_from_slice(&first_nonce);
    repeated[1] = crate::oracle::tls13::Record { fragment, ..second }.to_bytes();
    let inputs = Inputs {
        server_records: repeated,
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 83).await);
    assert!(e.to_string().contains("repeated explicit nonce"), "{e}");
    for (k, tail) in [
        (CONTENT_HANDSHAKE, vec![0u8, 0, 0, 0]),
        (CONTENT_ALERT, vec![2, 40]),
    ]
    .into_iter()
    .enumerate()
    {
        let recs = seal(&g.server, &[(CONTENT_APPLICATION_DATA, data.clone()), tail]);
        let inputs = Inputs {
            server_records: recs,
            ..g.inputs.clone()
        };
        let e = refused(run(inputs, g.client.key, g.server.key, 84 + k as u64).await);
        assert!(
            matches!(
                e,
                VerifyError::MalformedRecord { .. } | VerifyError::Refused { .. }
            ),
            "{e}"
        );
    }
    let recs = seal(
        &g.server,
        &[
            (CONTENT_APPLICATION_DATA, data.clone()),
            (CONTENT_ALERT, vec![1, 0]),
            (CONTENT_APPLICATION_DATA, b"late".to_vec()),
        ],
    );
    let inputs = Inputs {
        server_records: recs,
        ..g.inputs.clone()
    };
    let e = refused(run(inputs, g.client.key, g.server.key, 86).await);
    assert!(e.to_string().contains("after close_notify"), "{e}");
}

#[tokio::test]
async fn a_server_that_closes_without_close_notify_is_accepted_and_said_so() {
    let g = load().await;
    let mut inputs = g.inputs.clone();
    let inner = open_all(&g.server, &inputs.server_records);
    assert_eq!(inner.last().unwrap(), &(CONTENT_ALERT, vec![1, 0]));
    inputs.server_records.pop();
    let out = run(inputs, g.client.key, g.server.key, 90).await;
    for o in &out {
        assert!(!o.result.as_ref().unwrap().close_notify);
    }
    assert_eq!(reconstruct_value(&out), Some(scaled(&g.eth, 8)));
}
