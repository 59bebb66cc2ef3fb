//! Proofs against a TLS server that is not rustls: Python's `http.server` over its `ssl`
//! module (OpenSSL), started by the test (`tests/foreign/server.py`). Python 3 must be on the
//! PATH; the test fails loudly if it is not. The server writes JSON numbers, sends OpenSSL's
//! NewSessionTickets and closes without close_notify.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use mpcstats::config::{Dataset, ProofPolicy};
use mpcstats::oracle::exchange::{ExchangePki, LeafKey};
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::{ExtraSources, LocalCluster};
use mpcstats::roles::prove::{prove_with, ProveRequest};
use mpcstats::wire::QuerySpec;

const NAME: &str = "api.python.test";

/// The Python server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

/// Starts `server.py` with `pki`'s leaf for TLS `version`.
fn python_server(dir: &Path, pki: &ExchangePki, version: &str) -> Server {
    let cert = dir.join("leaf.pem");
    let key = dir.join("leaf.key");
    std::fs::write(&cert, pem("CERTIFICATE", &pki.leaf_der)).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", pki.leaf_key.secret_pkcs8_der())).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/foreign/server.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&cert)
        .arg(&key)
        .arg(version)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 is needed for this test (Debian: apt-get install python3)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("server.py printed {line:?}, not its port"));
    Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn dataset(name: &str) -> Dataset {
    Dataset {
        name: name.into(),
        description: "balance on the Python test server".into(),
        scale: 2,
        max: "1000000".into(),
        min_cohort: 2,
        epoch_size: Some(3),
        probing_per_epoch: mpcstats::config::DEFAULT_PROBING_PER_EPOCH,
        privacy: None,
        proof: ProofPolicy::Tls,
        template: Some(
            toml::from_str(&format!(
                "server_name = \"{NAME}\"\npath = \"/api/balance\"\nvalue = \"balance\"\naccount = \"user.id\"\ndecimals = 2"
            ))
            .unwrap(),
        ),
    }
}

async fn prove_and_share(version: &str, pki: ExchangePki) {
    let dir = tempfile::tempdir().unwrap();
    let server = python_server(dir.path(), &pki, version);
    let ds = format!("python_{}", version.replace('.', ""));
    let extra = ExtraSources {
        datasets: vec![dataset(&ds)],
        resolve: vec![(NAME.into(), server.addr)],
        roots_pem: pki.ca_pem.clone(),
    };
    let c = LocalCluster::start_extra(None, 2, 5, extra).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let roots = [pki.ca_pem.clone().into_bytes()];
    for n in 0..3 {
        let header = format!("Authorization: Bearer py-token-{n}");
        let req = ProveRequest {
            dataset: &ds,
            url: &format!("https://{NAME}/api/balance"),
            headers: &[header],
            key: None,
            extra_roots: &roots,
            default_roots: false,
        };
        let proof = prove_with(&c.cluster, &req)
            .await
            .unwrap_or_else(|e| panic!("TLS {version}: {e:#}"));
        let a =
            mpcstats::oracle::attestation::Attestation::decode(&proof.attestation.body).unwrap();
        let code = if version == "1.2" { 0x0303 } else { 0x0304 };
        assert_eq!(a.tls_version, code);
        client.share_proof(&ds, &proof).await.unwrap();
    }
    // 0.25 + 1.25 + 2.25
    let sum = client.query(&QuerySpec::new(&ds, "sum")).await.unwrap();
    assert_eq!(sum.text, "3.75");
    c.stop().await;
}

/// A 2048-bit RSA key (ring cannot generate one).
fn rsa_key() -> rcgen::KeyPair {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    rcgen::KeyPair::try_from(key.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ssl_server_tls13() {
    let pki = ExchangePki::generate(NAME, now(), 30, LeafKey::EcdsaP256).unwrap();
    prove_and_share("1.3", pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ssl_server_tls12_ecdsa() {
    let pki = ExchangePki::generate(NAME, now(), 30, LeafKey::EcdsaP256).unwrap();
    prove_and_share("1.2", pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ssl_server_tls12_rsa() {
    let pki = ExchangePki::generate_with_leaf_key(NAME, now(), 30, rsa_key()).unwrap();
    prove_and_share("1.2", pki).await;
}

fn now() -> u64 {
    mpcstats::oracle::admit::now()
}
