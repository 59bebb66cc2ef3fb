//! TLS-oracle benchmark: the MPC verification of one contribution for 1, 2, 4 and 16 KB
//! responses on TLS 1.3 and TLS 1.2, semi-honest and malicious side by side (targets: 16 KB within 50 ms, rounds the same at every
//! size), the cost of proving against a direct HTTPS request, and prove + share throughput
//! against the signed exchange (Binance's shape) with 16 providers at a time (target: at
//! least 50 admitted per second). Everything runs on this machine: sources, notary,
//! coordinator and three parties over QUIC on loopback.
//!
//! Run: `cargo bench --bench oracle` (`-- --providers N` for the throughput run's size).

use std::sync::Arc;
use std::time::Instant;

use mpcstats::engine::Security;
use mpcstats::oracle::exchange::DEFAULT_NAME;
use mpcstats::oracle::handshake::{roots_from_pem, TlsVersion};
use mpcstats::oracle::mpc::local::cost_in;
use mpcstats::oracle::prover::{client_config, SecretCapture};
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs of each verification, the fastest reported.
const RUNS: u64 = 9;

/// Providers proving and sharing at the same time in the throughput run.
const AT_ONCE: usize = 16;

fn providers() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--providers")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!("MPC verification of one contribution (three parties, in-process transport):");
        for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
            for len in [1024, 2048, 4096, 16384] {
                let mut semi = None;
                for security in [Security::SemiHonest, Security::Malicious] {
                    // The best of RUNS runs: the first ones warm the allocator and the
                    // pooled proof buffers, and this machine's spread is wide.
                    let mut best = None::<mpcstats::oracle::mpc::local::Cost>;
                    for seed in 1..=RUNS {
                        let c = cost_in(len, seed, version, security).await.unwrap();
                        if best.is_none_or(|b| c.seconds < b.seconds) {
                            best = Some(c);
                        }
                    }
                    let c = best.expect("at least one run");
                    println!(
                        "  {version} {len:>6} B response, {:<11}: {:>7.1} ms, {} rounds, {} AND gates, {:.1} KB sent per party",
                        security.name(),
                        c.seconds * 1e3,
                        c.rounds,
                        c.and_gates,
                        c.bytes_sent as f64 / 1e3
                    );
                    match semi.take() {
                        None => semi = Some((c.seconds, c.bytes_sent)),
                        Some((t, b)) => println!(
                            "    malicious / semi-honest: {:.2}x time, {:.2}x bytes",
                            c.seconds / t,
                            c.bytes_sent as f64 / b as f64
                        ),
                    }
                }
            }
        }

        let n = providers();
        let c = LocalCluster::start_with(None, n, 3).await.unwrap();
        let roots = roots_from_pem(c.oracle.ca_pem.as_bytes()).unwrap();
        let rounds = 20;
        let t = Instant::now();
        for i in 0..rounds {
            let config = client_config(roots.clone(), SecretCapture::new()).unwrap();
            let tcp = tokio::net::TcpStream::connect(c.oracle.exchange_addr)
                .await
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from(DEFAULT_NAME).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .unwrap();
            let req = format!(
                "GET /api/v1/account HTTP/1.1\r\nHost: {DEFAULT_NAME}\r\nX-API-KEY: {}\r\nConnection: close\r\n\r\n",
                c.oracle.accounts[i % n].api_key
            );
            tls.write_all(req.as_bytes()).await.unwrap();
            let mut body = Vec::new();
            let _ = tls.read_to_end(&mut body).await;
            assert!(body.starts_with(b"HTTP/1.1 200"));
        }
        let direct = t.elapsed().as_secs_f64() / rounds as f64;
        let t = Instant::now();
        for i in 0..rounds {
            c.oracle.prove(&c.cluster, i % n).await.unwrap();
        }
        let proved = t.elapsed().as_secs_f64() / rounds as f64;
        println!("prove overhead (mean of {rounds}):");
        println!("  direct HTTPS request      {:>7.2} ms", direct * 1e3);
        println!(
            "  proved through the notary {:>7.2} ms ({:.1}×)",
            proved * 1e3,
            proved / direct
        );

        // Every provider proves its balance at the signed exchange and shares it, 16 at a time
        // (the notary relays at most 64 sessions at once and refuses more as busy).
        let client = Arc::new(Client::connect(&c.cluster).await.unwrap());
        let cluster = Arc::new(c);
        let at_once = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        let t = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (client, c, at_once) = (client.clone(), cluster.clone(), at_once.clone());
                tokio::spawn(async move {
                    let _slot = at_once.acquire().await?;
                    let proof = c.oracle.sources.prove_signed(&c.cluster, i).await?;
                    client.share_proof("signed_eth", &proof).await
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(e) => println!("  refused: {e:#}"),
            }
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{n} providers proving at the signed exchange and sharing, {AT_ONCE} at a time: {admitted} admitted in {secs:.2} s = {:.1} admitted/s",
            admitted as f64 / secs
        );
        if let Ok(c) = Arc::try_unwrap(cluster) {
            c.stop().await;
        }
    });
}
