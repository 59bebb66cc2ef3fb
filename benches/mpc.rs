//! Engine benchmark over real QUIC on loopback: three parties in one process, each with its
//! own endpoint and mesh. Prints time, rounds and bytes per party for vectorised products.
//!
//! Run: `cargo bench --bench mpc` (optionally `-- 100000` for another vector length).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcstats::engine::{Ring, Session, Share, Z128, Z64};
use mpcstats::net::endpoint::{peer_pin, server_endpoint};
use mpcstats::net::identity::Identity;
use mpcstats::net::mesh::{Mesh, PeerInfo};
use mpcstats::net::session::QuicTransport;
use rand::SeedableRng;

async fn meshes() -> Vec<Arc<Mesh>> {
    let ids: Vec<Identity> = (0..3)
        .map(|i| Identity::generate(&format!("party{i}")).unwrap())
        .collect();
    let pins: Vec<_> = ids.iter().map(|i| i.pin()).collect();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let eps: Vec<_> = (0..3)
        .map(|i| {
            let others = (0..3).filter(|&j| j != i).map(|j| pins[j]).collect();
            server_endpoint(any, &ids[i], others).unwrap()
        })
        .collect();
    let peers: [PeerInfo; 3] = std::array::from_fn(|j| PeerInfo {
        addr: eps[j].local_addr().unwrap(),
        pin: pins[j],
    });
    let mut out = Vec::new();
    for (i, (ep, id)) in eps.into_iter().zip(ids).enumerate() {
        let mesh = Mesh::start(i, ep.clone(), Arc::new(id), peers);
        let m = mesh.clone();
        let pins = pins.clone();
        tokio::spawn(async move {
            while let Some(inc) = ep.accept().await {
                if let Ok(conn) = inc.await {
                    if let Some(j) = (0..3).find(|&j| peer_pin(&conn) == Some(pins[j])) {
                        m.add_incoming(j, conn);
                    }
                }
            }
        });
        out.push(mesh);
    }
    out
}

async fn products<R: Ring>(meshes: &[Arc<Mesh>], n: usize, label: &str, sid: u8) {
    let tasks: Vec<_> = meshes
        .iter()
        .enumerate()
        .map(|(i, mesh)| {
            let mesh = mesh.clone();
            tokio::spawn(async move {
                let t: QuicTransport = mesh
                    .session([sid; 16], Duration::from_secs(10))
                    .await
                    .unwrap();
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(i as u64);
                let mut s = Session::start(i, t, &mut rng).await.unwrap();
                let x: Vec<Share<R>> = s.correlated().random_shares(n);
                let y: Vec<Share<R>> = s.correlated().random_shares(n);
                let before = s.counters();
                let start = Instant::now();
                let z = s.mul(&x, &y).await.unwrap();
                let elapsed = start.elapsed();
                let after = s.counters();
                assert_eq!(z.len(), n);
                (
                    elapsed,
                    after.rounds - before.rounds,
                    after.bytes_sent - before.bytes_sent,
                )
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut line = String::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (e, rounds, bytes) = t.await.unwrap();
        worst = worst.max(e);
        line.push_str(&format!(
            "  party {i}: {rounds} round, {:.2} MB sent",
            bytes as f64 / 1e6
        ));
    }
    println!(
        "{label}: {n} products in {:.1} ms = {:.2} M products/s ({} bytes per product per party)\n{line}",
        worst.as_secs_f64() * 1e3,
        n as f64 / worst.as_secs_f64() / 1e6,
        R::BYTES
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let meshes = meshes().await;
        // Warm up the connections.
        products::<Z64>(&meshes, 1000, "warm-up Z_2^64", 0).await;
        products::<Z64>(&meshes, n, "Z_2^64 ", 1).await;
        products::<Z128>(&meshes, n, "Z_2^128", 2).await;
    });
}
