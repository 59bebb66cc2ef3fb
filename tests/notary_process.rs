//! The notary as its own process: after it attested a real session, nothing it wrote — its
//! log (at debug level) and every file in its working directory, home and temporary
//! directory — holds a byte of the request or the response.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mpcstats::config::Cluster;
use mpcstats::oracle::exchange::{self, Exchange, ExchangeConfig, ExchangePki, LeafKey};
use mpcstats::roles::prove::prove;

const BIN: &str = env!("CARGO_BIN_EXE_mpcstats");

fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notary_writes_no_plaintext_to_its_log_or_disk() {
    let deploy = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let notary_addr = free_addr();
    let out = Command::new(BIN)
        .args(["init", "--out"])
        .arg(deploy.path())
        .args(["--notary", &notary_addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let now = mpcstats::oracle::admit::now();
    let pki = ExchangePki::generate(exchange::DEFAULT_NAME, now, 30, LeafKey::EcdsaP256).unwrap();
    let ca = deploy.path().join("exchange-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let accounts = exchange::generate_accounts(5, 11);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    let config = ExchangeConfig {
        tls: pki.server_config().unwrap(),
        exchange: Arc::new(Exchange::new(accounts.clone())),
    };
    let task = tokio::spawn(exchange::serve(listener, config));

    let log_path = home.path().join("notary.log");
    let mut notary = Command::new(BIN)
        .arg("--cluster")
        .arg(deploy.path().join("cluster.toml"))
        .arg("notary")
        .arg("--resolve")
        .arg(format!("{}:{site}", exchange::DEFAULT_NAME))
        .arg("--extra-root")
        .arg(&ca)
        .arg("--no-default-roots")
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();

    let cluster = Cluster::load(&deploy.path().join("cluster.toml")).unwrap();
    let url = format!("https://{}/api/v1/account", exchange::DEFAULT_NAME);
    let mut proof = None;
    for _ in 0..100 {
        match prove(
            &cluster,
            "exchange_eth",
            &url,
            &["X-API-KEY: key-3".into()],
            &[pki.ca_pem.clone().into_bytes()],
        )
        .await
        {
            Ok(p) => {
                proof = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let proof = proof.expect("the notary attested within 10 s");
    assert!(!proof.server_records.is_empty());
    // SIGTERM, so that it flushes and exits as an operator would stop it.
    Command::new("kill")
        .arg(notary.id().to_string())
        .status()
        .unwrap();
    let _ = notary.wait();
    task.abort();

    let mut written = Vec::new();
    files(home.path(), &mut written);
    let log = std::fs::read(&log_path).unwrap();
    assert!(
        contains(&log, b"attested"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(
        contains(&log, b"DEBUG") || contains(&log, b"debug"),
        "debug logging was on"
    );
    let account = &accounts[3];
    let secrets: Vec<Vec<u8>> = account
        .balances
        .iter()
        .map(|b| b.free.clone().into_bytes())
        .chain([
            b"acct-3".to_vec(),
            b"key-3".to_vec(),
            b"X-API-KEY".to_vec(),
            b"GET /api".to_vec(),
            b"HTTP/1.1 200".to_vec(),
            b"balances".to_vec(),
            proof.client_keys.key.to_vec(),
            proof.server_keys.key.to_vec(),
        ])
        .collect();
    for (name, bytes) in &written {
        for s in &secrets {
            assert!(
                !contains(bytes, s),
                "{name} holds {}",
                String::from_utf8_lossy(s)
            );
        }
    }
}

#[test]
fn a_notary_without_roots_refuses_to_start() {
    let deploy = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--out"])
        .arg(deploy.path())
        .args(["--notary", &free_addr().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(deploy.path().join("cluster.toml"))
        .args(["notary", "--no-default-roots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--no-default-roots needs at least one --extra-root"),
        "{err}"
    );
}
