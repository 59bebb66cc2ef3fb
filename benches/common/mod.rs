// Each bench binary uses a different part of this module.
#![allow(dead_code)]

//! Shared bench harness: three parties in one process over real QUIC on loopback, each with
//! its own endpoint, identity and mesh, exactly as deployed parties connect.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcstats::engine::{Counters, Security, Session};
use mpcstats::net::endpoint::{peer_pin, server_endpoint};
use mpcstats::net::identity::Identity;
use mpcstats::net::mesh::{Mesh, PeerInfo};
use mpcstats::net::session::QuicTransport;
use rand::SeedableRng;

pub async fn meshes() -> Vec<Arc<Mesh>> {
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
        // The three parties share one (unnamed) cluster: any equal fingerprint will do.
        let mesh = Mesh::start(i, ep.clone(), Arc::new(id), peers, [0; 32]);
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

/// What one party measured: wall time of `f`, the counters it added and the UDP bytes its
/// QUIC connections sent meanwhile.
pub struct Measured<O> {
    pub out: O,
    pub time: Duration,
    pub cost: Counters,
    pub udp_sent: u64,
}

/// Runs `f` as all three parties in a fresh MPC session; returns each party's measurement
/// (excluding session setup). The UDP count of a party ends once all three are done, when
/// everything it sent has reached its neighbours (a party's writes may still sit in QUIC's
/// send buffer when its own `f` returns).
pub async fn run3<F, Fut, O>(meshes: &[Arc<Mesh>], session: [u8; 16], f: F) -> Vec<Measured<O>>
where
    F: Fn(usize, Session<QuicTransport>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Session<QuicTransport>, O)> + Send + 'static,
    O: Send + 'static,
{
    run3_mode(meshes, session, Security::SemiHonest, f).await
}

/// [`run3`] in the given security mode.
#[allow(dead_code)] // not every bench compares modes
pub async fn run3_mode<F, Fut, O>(
    meshes: &[Arc<Mesh>],
    session: [u8; 16],
    security: Security,
    f: F,
) -> Vec<Measured<O>>
where
    F: Fn(usize, Session<QuicTransport>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Session<QuicTransport>, O)> + Send + 'static,
    O: Send + 'static,
{
    let tasks: Vec<_> = meshes
        .iter()
        .enumerate()
        .map(|(i, mesh)| {
            let mesh = mesh.clone();
            let f = f.clone();
            tokio::spawn(async move {
                let t = mesh
                    .session(session, Duration::from_secs(10))
                    .await
                    .unwrap();
                // Seeds differ per session and party (as a real party's entropy would).
                let mut seed = [0u8; 32];
                seed[..16].copy_from_slice(&session);
                seed[16] = i as u8;
                let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
                let s = Session::start_with(i, t, &mut rng, security).await.unwrap();
                let udp_before = mesh.udp_sent();
                let before = s.counters();
                let start = Instant::now();
                let (s, out) = f(i, s).await;
                let time = start.elapsed();
                let after = s.counters();
                let measured = Measured {
                    out,
                    time,
                    cost: Counters {
                        rounds: after.rounds - before.rounds,
                        bytes_sent: after.bytes_sent - before.bytes_sent,
                        bytes_received: after.bytes_received - before.bytes_received,
                    },
                    udp_sent: 0,
                };
                (measured, udp_before)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    for (mesh, (m, udp_before)) in meshes.iter().zip(out.iter_mut()) {
        m.udp_sent = mesh.udp_sent() - *udp_before;
    }
    out.into_iter().map(|(m, _)| m).collect()
}

/// The command line's positional arguments: everything after the program name except
/// `--reps N` and cargo's `--bench`.
pub fn positional() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => {
                args.next();
            }
            "--bench" => {}
            _ => out.push(a),
        }
    }
    out
}

/// Splits named words into the security modes they name (`semi-honest`, `malicious`;
/// both when none is named) and the other words.
pub fn modes_and_rest(words: Vec<String>) -> (Vec<Security>, Vec<String>) {
    let all = [Security::SemiHonest, Security::Malicious];
    let (named, rest): (Vec<String>, Vec<String>) = words
        .into_iter()
        .partition(|a| all.iter().any(|s| s.name() == a));
    let modes = all
        .into_iter()
        .filter(|s| named.is_empty() || named.iter().any(|a| a == s.name()))
        .collect();
    (modes, rest)
}

/// How many times [`run3_reps`] repeats a measurement: `--reps N` on the command line, else 3.
/// This machine's timings vary by up to a third between identical runs, so a single run is
/// not a figure.
pub fn reps() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(3)
}

/// [`run3_mode`] repeated [`reps`] times, each in its own session (the last byte of the
/// session id counts the repetition). Returns every repetition's measurements.
#[allow(dead_code)] // not every bench repeats
pub async fn run3_reps<F, Fut, O>(
    meshes: &[Arc<Mesh>],
    session: [u8; 16],
    security: Security,
    f: F,
) -> Vec<Vec<Measured<O>>>
where
    F: Fn(usize, Session<QuicTransport>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Session<QuicTransport>, O)> + Send + 'static,
    O: Send + 'static,
{
    let mut out = Vec::new();
    for r in 0..reps() {
        let mut id = session;
        id[15] ^= 0x80 | r as u8;
        out.push(run3_mode(meshes, id, security, f.clone()).await);
    }
    out
}

/// One line for a repeated measurement: the median over repetitions of the slowest party's
/// time, with the fastest and slowest repetition beside it; rounds and bytes as [`report`]
/// (the most of any repetition). Returns (median time, rounds, bytes).
#[allow(dead_code)] // not every bench repeats
pub fn report_reps<O>(label: &str, runs: &[Vec<Measured<O>>]) -> (Duration, u64, u64) {
    let slowest = |m: &[Measured<O>]| m.iter().map(|x| x.time).max().unwrap_or_default();
    let mut times: Vec<Duration> = runs.iter().map(|m| slowest(m)).collect();
    times.sort();
    let median = median(&times);
    let most = |f: &dyn Fn(&Measured<O>) -> u64| runs.iter().flatten().map(f).max().unwrap_or(0);
    let rounds = most(&|x| x.cost.rounds);
    let bytes = most(&|x| x.cost.bytes_sent);
    let udp = most(&|x| x.udp_sent);
    println!(
        "{label:<34} {:>8.1} ms ({:.1}–{:.1}, {} runs) {:>5} rounds {:>8.2} MB sent ({:.2} MB UDP) per party",
        median.as_secs_f64() * 1e3,
        times.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.len(),
        rounds,
        bytes as f64 / 1e6,
        udp as f64 / 1e6
    );
    (median, rounds, bytes)
}

/// The middle element of sorted `times` (zero when empty).
#[allow(dead_code)] // not every bench repeats
pub fn median(times: &[Duration]) -> Duration {
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Prints the malicious / semi-honest ratio on the second call of a pair.
#[allow(dead_code)] // not every bench compares modes
pub fn ratio(semi: &mut Option<(Duration, u64)>, t: Duration, b: u64) {
    match semi.take() {
        None => *semi = Some((t, b)),
        Some((ts, bs)) => println!(
            "  malicious / semi-honest: {:.2}x time, {:.2}x bytes",
            t.as_secs_f64() / ts.as_secs_f64(),
            b as f64 / bs as f64
        ),
    }
}

/// One line per measurement: the slowest party's time, rounds, the most bytes any party sent
/// by the session counters and, beside them, the most UDP bytes any party's QUIC
/// connections sent over the same span.
pub fn report<O>(label: &str, m: &[Measured<O>]) -> (Duration, u64, u64) {
    let time = m.iter().map(|x| x.time).max().unwrap_or_default();
    let rounds = m.iter().map(|x| x.cost.rounds).max().unwrap_or(0);
    let bytes = m.iter().map(|x| x.cost.bytes_sent).max().unwrap_or(0);
    let udp = m.iter().map(|x| x.udp_sent).max().unwrap_or(0);
    println!(
        "{label:<34} {:>10.1} ms {:>6} rounds {:>10.2} MB sent ({:.2} MB UDP) per party",
        time.as_secs_f64() * 1e3,
        rounds,
        bytes as f64 / 1e6,
        udp as f64 / 1e6
    );
    (time, rounds, bytes)
}

/// The three pairs of a deterministic sharing of `values` (bench data only).
pub fn share_values(
    values: &[u128],
    seed: u64,
) -> [Vec<mpcstats::engine::Share<mpcstats::engine::Z128>>; 3] {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut out: [Vec<_>; 3] = Default::default();
    for &v in values {
        let p = mpcstats::engine::split(mpcstats::engine::Z128(v), &mut rng);
        for i in 0..3 {
            out[i].push(p[i]);
        }
    }
    out
}

/// The benchmarks' dataset: values up to 10^6 at 8 decimals, with `privacy` if given.
#[allow(dead_code)]
pub fn bench_dataset(privacy: Option<mpcstats::config::Privacy>) -> mpcstats::config::Dataset {
    mpcstats::config::Dataset {
        name: "bench".into(),
        description: String::new(),
        scale: 8,
        max: "1000000".into(),
        min_cohort: 5,
        epoch_size: None,
        probing_per_epoch: mpcstats::config::DEFAULT_PROBING_PER_EPOCH,
        privacy,
        proof: mpcstats::config::ProofPolicy::None,
        template: None,
    }
}
