//! The notary and prove roles in-process: a local HTTPS exchange, a notary on loopback whose
//! resolver maps the exchange's name to it, and `prove` producing a proof file.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mpcstats::config::{Cluster, Limits, Server};
use mpcstats::net::endpoint::server_endpoint;
use mpcstats::net::identity::Identity;
use mpcstats::net::pin::pin_to_hex;
use mpcstats::oracle::attestation::{Direction, NotaryKey};
use mpcstats::oracle::exchange::{
    self, generate_accounts, Account, Exchange, ExchangeConfig, ExchangePki, LeafKey,
};
use mpcstats::oracle::handshake::roots_from_pem;
use mpcstats::oracle::proof::{decrypt_application_data, Proof};
use mpcstats::oracle::prover::Recording;
use mpcstats::roles::init::exchange_dataset;
use mpcstats::roles::notary::{serve, NotaryOptions, NotaryServer};
use mpcstats::roles::prove::prove;
use tokio::sync::mpsc;

const NAME: &str = exchange::DEFAULT_NAME;
const URL: &str = "https://api.exchange.test/api/v1/account";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Site {
    addr: SocketAddr,
    ca_pem: String,
    accounts: Vec<Account>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn exchange_site() -> Site {
    exchange_site_with(|pki| pki.server_config().unwrap()).await
}

/// An exchange whose TLS configuration `tls` builds from its certificates.
async fn exchange_site_with(tls: impl Fn(&ExchangePki) -> Arc<rustls::ServerConfig>) -> Site {
    let pki = ExchangePki::generate(NAME, now(), 30, LeafKey::EcdsaP256).unwrap();
    let accounts = generate_accounts(5, 42);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(exchange::serve(
        listener,
        ExchangeConfig {
            tls: tls(&pki),
            exchange: Arc::new(Exchange::new(accounts.clone())),
        },
    ));
    Site {
        addr,
        ca_pem: pki.ca_pem,
        accounts,
        task,
    }
}

struct Notary {
    server: NotaryServer,
    cluster: Cluster,
    key: [u8; 32],
    tap: mpsc::UnboundedReceiver<Recording>,
}

/// A notary trusting `roots` (PEM; `None`: none, `Some("mozilla")`: the Mozilla program),
/// resolving `names` to the exchange, and a cluster file whose `exchange_eth` template names
/// `template_name`.
async fn notary(
    site: &Site,
    roots: Option<&str>,
    names: &[&str],
    allowed: Option<Vec<String>>,
    template_name: &str,
) -> Notary {
    let id = Identity::generate("notary").unwrap();
    let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), &id, vec![]).unwrap();
    let key = NotaryKey::generate().unwrap();
    let public = key.public_key();
    let roots = match roots {
        Some("mozilla") => mpcstats::roles::prove::mozilla_roots(),
        Some(pem) => roots_from_pem(pem.as_bytes()).unwrap(),
        None => rustls::RootCertStore::empty(),
    };
    let mut opts = NotaryOptions::new(key, roots);
    opts.resolve = names
        .iter()
        .map(|n| (n.to_string(), site.addr))
        .collect::<HashMap<_, _>>();
    opts.allowed_servers = allowed.map(|names| names.into_iter().map(|n| (n, 443)).collect());
    let (tx, tap) = mpsc::unbounded_channel();
    opts.tap = Some(tx);
    let server = serve(opts, endpoint).await.unwrap();
    let cluster = cluster(server.addr, &id, public, template_name);
    Notary {
        server,
        cluster,
        key: public,
        tap,
    }
}

fn cluster(notary_addr: SocketAddr, id: &Identity, key: [u8; 32], template_name: &str) -> Cluster {
    let other = |port: u16| Server {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pin: pin_to_hex(&Identity::generate("x").unwrap().pin()),
        attestation_key: None,
    };
    let mut dataset = exchange_dataset();
    dataset.template.as_mut().unwrap().server_name = template_name.into();
    let cluster = Cluster {
        security: Default::default(),
        coordinator: other(9),
        parties: vec![other(9), other(9), other(9)],
        notary: Server {
            addr: notary_addr,
            pin: pin_to_hex(&id.pin()),
            attestation_key: Some(hex::encode(key)),
        },
        limits: Limits::default(),
        datasets: vec![dataset],
    };
    cluster.validate().unwrap();
    cluster
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Collects everything logged through `tracing` while the guard lives (current-thread tests).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn proof_through_the_notary() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let site = exchange_site().await;
    let mut n = notary(
        &site,
        Some(&site.ca_pem),
        &[NAME],
        Some(vec![NAME.into()]),
        NAME,
    )
    .await;
    let proof = prove(
        &n.cluster,
        "exchange_eth",
        URL,
        &["X-API-KEY: key-3".into()],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap();

    // The attestation verifies under the notary's key and covers the proof's records.
    let attestation = proof.attestation.verify(&n.key).unwrap();
    assert_eq!(attestation.server_name, NAME);
    assert!(attestation.time.abs_diff(now()) < 60);
    proof.check_records(&attestation).unwrap();

    // The records decrypt to the request and a response holding the ETH balance.
    let request = decrypt_application_data(
        Direction::ClientToServer,
        &proof.client_keys,
        &proof.client_records,
    )
    .unwrap();
    let template = n.cluster.datasets[0].template.clone().unwrap();
    let (head, _) = template.request_head(&[]).unwrap();
    assert!(request.starts_with(&head));
    assert!(request.ends_with(b"Accept-Encoding: identity\r\nConnection: close\r\n\r\n"));
    assert!(contains(&request, b"X-API-KEY: key-3\r\n"));
    let response = decrypt_application_data(
        Direction::ServerToClient,
        &proof.server_keys,
        &proof.server_records,
    )
    .unwrap();
    let eth = site.accounts[3].balance("ETH").unwrap();
    let value = proof
        .declaration
        .value
        .within("value", response.len())
        .unwrap();
    assert_eq!(&response[value.clone()], eth.as_bytes());
    let mut opened = response.clone();
    opened[value.clone()].fill(b'0');
    assert_eq!(template.check_response(&opened, value).unwrap(), "acct-3");

    // The file round-trips and is private.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proof.bin");
    proof.write(&path).unwrap();
    assert_eq!(Proof::read(&path).unwrap(), proof);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The notary held ciphertext only, and logged no plaintext.
    let recording = n.tap.recv().await.unwrap();
    assert!(recording.server_to_client.len() > response.len());
    n.server.stop().await;
    let logs = logs.0.lock().unwrap().clone();
    assert!(
        contains(&logs, b"attested"),
        "{}",
        String::from_utf8_lossy(&logs)
    );
    for secret in [
        eth.as_bytes(),
        b"acct-3",
        b"key-3",
        b"X-API-KEY",
        b"HTTP/1.1",
        b"balances",
    ] {
        for (what, bytes) in [
            ("client→server", &recording.client_to_server),
            ("server→client", &recording.server_to_client),
            ("logs", &logs),
            ("attestation", &proof.attestation.body),
        ] {
            assert!(
                !contains(bytes, secret),
                "{} found in the notary's {what}",
                String::from_utf8_lossy(secret)
            );
        }
    }
    site.task.abort();
}

#[tokio::test]
async fn notary_without_roots_refuses() {
    let site = exchange_site().await;
    let n = notary(&site, None, &[NAME], None, NAME).await;
    let err = prove(
        &n.cluster,
        "exchange_eth",
        URL,
        &["X-API-KEY: key-1".into()],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("notary refused to attest"), "{msg}");
    assert!(msg.contains("does not verify"), "{msg}");
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn wrong_server_name_fails() {
    let site = exchange_site().await;
    let other = "wrong.exchange.test";
    let n = notary(&site, Some(&site.ca_pem), &[other], None, other).await;
    let err = prove(
        &n.cluster,
        "exchange_eth",
        "https://wrong.exchange.test/api/v1/account",
        &["X-API-KEY: key-1".into()],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("TLS handshake"), "{msg}");
    assert!(
        msg.contains("NotValidForName") || msg.contains("name"),
        "{msg}"
    );
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn notary_dials_only_its_datasets_servers() {
    let site = exchange_site().await;
    let other = "other.exchange.test";
    let n = notary(
        &site,
        Some(&site.ca_pem),
        &[other],
        Some(vec![NAME.into()]),
        other,
    )
    .await;
    let err = prove(
        &n.cluster,
        "exchange_eth",
        "https://other.exchange.test/api/v1/account",
        &[],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("the notary refused"), "{msg}");
    assert!(msg.contains("does not dial other.exchange.test"), "{msg}");
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn url_must_match_the_template_before_any_traffic() {
    let site = exchange_site().await;
    let mut n = notary(&site, Some(&site.ca_pem), &[NAME], None, NAME).await;
    let roots = [site.ca_pem.clone().into_bytes()];
    for (url, expected) in [
        ("https://api.exchange.test/api/v2/account", "path"),
        ("https://evil.exchange.test/api/v1/account", "host"),
        ("http://api.exchange.test/api/v1/account", "https://"),
    ] {
        let err = prove(&n.cluster, "exchange_eth", url, &[], &roots)
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "{url}: {msg}");
    }
    let err = prove(
        &n.cluster,
        "exchange_eth",
        URL,
        &["Host: evil".into()],
        &roots,
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("Host"), "{err:#}");
    let err = prove(&n.cluster, "nope", URL, &[], &roots)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("unknown dataset"), "{err:#}");
    // Nothing reached the notary.
    n.server.stop().await;
    assert!(n.tap.try_recv().is_err());
    site.task.abort();
}

#[tokio::test]
async fn server_without_the_suite_gets_a_clear_error() {
    // A TLS 1.3 server that offers only AES-256-GCM: nothing the prover can prove.
    let site = exchange_site_with(|pki| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384];
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf_der.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.leaf_key.clone_key()),
            )
            .unwrap();
        Arc::new(config)
    })
    .await;
    let n = notary(&site, Some(&site.ca_pem), &[NAME], None, NAME).await;
    let err = prove(
        &n.cluster,
        "exchange_eth",
        URL,
        &["X-API-KEY: key-1".into()],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("TLS 1.3") && msg.contains("TLS13_AES_128_GCM_SHA256"),
        "{msg}"
    );
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn the_mozilla_roots_do_not_vouch_for_a_private_ca() {
    let mozilla = mpcstats::roles::prove::mozilla_roots();
    assert!(mozilla.len() > 100, "{} Mozilla roots", mozilla.len());
    let site = exchange_site().await;
    let n = notary(&site, Some("mozilla"), &[NAME], None, NAME).await;
    let err = prove(
        &n.cluster,
        "exchange_eth",
        URL,
        &["X-API-KEY: key-1".into()],
        &[site.ca_pem.clone().into_bytes()],
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("notary refused to attest"), "{msg}");
    assert!(msg.contains("certificate chain not valid"), "{msg}");
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn the_notary_dials_only_the_templates_port() {
    use mpcstats::net::endpoint::{client_endpoint, connect};
    use mpcstats::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
    use mpcstats::roles::notary::{FromNotary, ToNotary};
    let site = exchange_site().await;
    let n = notary(
        &site,
        Some(&site.ca_pem),
        &[NAME],
        Some(vec![NAME.into()]),
        NAME,
    )
    .await;
    let pin = mpcstats::net::pin::pin_from_hex(&n.cluster.notary.pin).unwrap();
    let endpoint = client_endpoint().unwrap();
    for (port, ok) in [(444u16, false), (8443, false), (443, true)] {
        let conn = connect(&endpoint, n.server.addr, pin, None).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send_msg(
            &mut send,
            &ToNotary::Connect {
                server_name: NAME.into(),
                port,
            },
        )
        .await
        .unwrap();
        let answer: FromNotary = recv_msg(&mut recv, MAX_CONTROL_FRAME).await.unwrap();
        match (answer, ok) {
            (FromNotary::Connected, true) => {}
            (FromNotary::Refused(why), false) => {
                assert!(
                    why.contains(&format!("does not dial {NAME}:{port}")),
                    "{why}"
                )
            }
            (other, _) => panic!("port {port}: {other:?}"),
        }
        conn.close(0u32.into(), b"done");
    }
    n.server.stop().await;
    site.task.abort();
}

#[tokio::test]
async fn the_urls_port_must_be_the_templates() {
    let site = exchange_site().await;
    let mut n = notary(&site, Some(&site.ca_pem), &[NAME], None, NAME).await;
    let roots = [site.ca_pem.clone().into_bytes()];
    let err = prove(
        &n.cluster,
        "exchange_eth",
        "https://api.exchange.test:8443/api/v1/account",
        &[],
        &roots,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("the URL's port 8443 is not the template's port 443"),
        "{err:#}"
    );
    n.server.stop().await;
    assert!(n.tap.try_recv().is_err(), "nothing reached the notary");
    site.task.abort();
}

/// Opens a session at the notary from `from` and sends `first` on its control stream.
async fn notary_session(
    n: &Notary,
    from: &str,
    first: &[u8],
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let ep = quinn::Endpoint::client(format!("{from}:0").parse().unwrap()).unwrap();
    let pin = mpcstats::net::pin::pin_from_hex(&n.cluster.notary.pin).unwrap();
    let conn = mpcstats::net::endpoint::connect(&ep, n.server.addr, pin, None)
        .await
        .unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(first).await.unwrap();
    (conn, send, recv)
}

#[tokio::test]
async fn one_address_cannot_hold_the_notarys_sessions() {
    use mpcstats::net::frame::{encode, recv_msg, MAX_CONTROL_FRAME};
    use mpcstats::roles::notary::{FromNotary, ToNotary};
    let site = exchange_site().await;
    let n = notary(
        &site,
        Some(&site.ca_pem),
        &[NAME],
        Some(vec![NAME.into()]),
        NAME,
    )
    .await;
    let cap = Limits::default().notary_sessions_per_address;
    // A hoarder opens `cap` sessions and stalls each one mid-frame.
    let mut stalled = Vec::new();
    for _ in 0..cap {
        stalled.push(notary_session(&n, "127.0.0.1", &[0, 0]).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let connect = ToNotary::Connect {
        server_name: "not.allowed.test".into(),
        port: 443,
    };
    let mut frame = (encode(&connect).len() as u32).to_be_bytes().to_vec();
    frame.extend(encode(&connect));
    // Its next session is refused at once for the per-address cap …
    let (_c, _s, mut recv) = notary_session(&n, "127.0.0.1", &frame).await;
    match recv_msg::<_, FromNotary>(&mut recv, MAX_CONTROL_FRAME)
        .await
        .unwrap()
    {
        FromNotary::Refused(reason) => {
            assert!(reason.contains("notary_sessions_per_address"), "{reason}")
        }
        _ => panic!("expected a refusal"),
    }
    // … while another address still gets a session (refused only for its server).
    let (_c, _s, mut recv) = notary_session(&n, "127.0.0.2", &frame).await;
    match recv_msg::<_, FromNotary>(&mut recv, MAX_CONTROL_FRAME)
        .await
        .unwrap()
    {
        FromNotary::Refused(reason) => {
            assert!(!reason.contains("notary_sessions_per_address"), "{reason}");
            assert!(
                reason.contains("does not dial not.allowed.test"),
                "{reason}"
            );
        }
        _ => panic!("expected a refusal of the server"),
    }
    // A hoarder's session that ends gives its place back to its address.
    let (conn, _, _) = stalled.pop().unwrap();
    conn.close(0u32.into(), b"done");
    let (_c, _s, mut recv) = {
        let mut tries = 0;
        loop {
            let (c, s, mut r) = notary_session(&n, "127.0.0.1", &frame).await;
            match recv_msg::<_, FromNotary>(&mut r, MAX_CONTROL_FRAME)
                .await
                .unwrap()
            {
                FromNotary::Refused(reason) if reason.contains("notary_sessions_per_address") => {
                    tries += 1;
                    assert!(tries < 100, "the closed session never gave its place back");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                FromNotary::Refused(reason) => {
                    assert!(reason.contains("does not dial"), "{reason}");
                    break (c, s, r);
                }
                _ => panic!("expected a refusal of the server"),
            }
        }
    };
    assert!(recv.read_to_end(16).await.is_ok());
    drop(stalled);
    n.server.stop().await;
    site.task.abort();
}
