//! TLS-oracle benchmark: the cost of proving against a direct HTTPS request, the MPC
//! verification of one contribution for 1 KB, 2 KB and 4 KB responses, and proven
//! contributions admitted per second with 50 providers sharing at once (everything on this
//! machine: exchange, notary, coordinator and three parties over QUIC on loopback).
//!
//! Run: `cargo bench --bench oracle`.

use std::sync::Arc;
use std::time::Instant;

use mpcstats::oracle::exchange::DEFAULT_NAME;
use mpcstats::oracle::handshake::roots_from_pem;
use mpcstats::oracle::mpc::local::cost_of;
use mpcstats::oracle::prover::{client_config, SecretCapture};
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVIDERS: usize = 50;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!("MPC verification of one contribution (three parties, in-process transport):");
        for len in [1024, 2048, 4096] {
            let c = cost_of(len, 1).await.unwrap();
            println!(
                "  {len:>5} B response: {:>6.1} ms, {} rounds, {} AND gates, {:.1} KB sent per party",
                c.seconds * 1e3,
                c.rounds,
                c.and_gates,
                c.bytes_sent as f64 / 1e3
            );
        }

        let c = LocalCluster::start_with(None, PROVIDERS, 3).await.unwrap();
        let exchange_addr = {
            // The notary resolves the exchange's name; a direct request needs its address.
            let proof = c.oracle.prove(&c.cluster, 0).await.unwrap();
            drop(proof);
            c.oracle.exchange_addr
        };
        let roots = roots_from_pem(c.oracle.ca_pem.as_bytes()).unwrap();
        let rounds = 20;
        let t = Instant::now();
        for i in 0..rounds {
            let config = client_config(roots.clone(), SecretCapture::new()).unwrap();
            let tcp = tokio::net::TcpStream::connect(exchange_addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(DEFAULT_NAME).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
            let req = format!(
                "GET /api/v1/account HTTP/1.1\r\nHost: {DEFAULT_NAME}\r\nX-API-KEY: {}\r\nConnection: close\r\n\r\n",
                c.oracle.accounts[i % PROVIDERS].api_key
            );
            tls.write_all(req.as_bytes()).await.unwrap();
            let mut body = Vec::new();
            let _ = tls.read_to_end(&mut body).await;
            assert!(body.starts_with(b"HTTP/1.1 200"));
        }
        let direct = t.elapsed().as_secs_f64() / rounds as f64;
        let t = Instant::now();
        for i in 0..rounds {
            c.oracle.prove(&c.cluster, i % PROVIDERS).await.unwrap();
        }
        let proved = t.elapsed().as_secs_f64() / rounds as f64;
        println!("prove overhead (mean of {rounds}):");
        println!("  direct HTTPS request      {:>7.2} ms", direct * 1e3);
        println!(
            "  proved through the notary {:>7.2} ms ({:.1}×)",
            proved * 1e3,
            proved / direct
        );

        let mut proofs = Vec::new();
        for i in 0..PROVIDERS {
            proofs.push(c.oracle.prove(&c.cluster, i).await.unwrap());
        }
        let client = Arc::new(Client::connect(&c.cluster).await.unwrap());
        let t = Instant::now();
        let tasks: Vec<_> = proofs
            .into_iter()
            .map(|p| {
                let client = client.clone();
                tokio::spawn(async move { client.share_proof("exchange_eth", &p).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{PROVIDERS} providers sharing proofs at once: all admitted in {:.2} s = {:.1} contributions/s",
            secs,
            PROVIDERS as f64 / secs
        );
        c.stop().await;
    });
}
