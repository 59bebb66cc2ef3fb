//! Load benchmark: the contributions and queries per second a whole cluster sustains on this
//! machine (coordinator and three parties in one process, over QUIC on loopback), with the
//! p50 and p99 latency each client saw. Unproven contributions (the proven path's cost is in
//! `--bench oracle`); queries of count, mean and median over the newest closed epoch. An
//! epoch's answer is computed once and then served as kept (the release rule), so the first
//! query of each statistic is the MPC (the max latency) and the rest are served answers.
//!
//! Run: `cargo bench --bench load` (`-- --contributions N --at-once C` to change the load).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcstats::config::Limits;
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;
use mpcstats::wire::QuerySpec;

const DATASET: &str = "eth_balance";

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Runs `jobs` jobs, `at_once` at a time; returns the wall time and each job's latency.
async fn run<F, Fut>(jobs: usize, at_once: usize, job: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..at_once)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= jobs {
                        return lat;
                    }
                    let t = Instant::now();
                    job(i).await.expect("every job succeeds under this load");
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let wall = start.elapsed();
    all.sort();
    (wall, all)
}

fn print(what: &str, unit: &str, wall: Duration, lat: &[Duration]) {
    println!(
        "{what}: {} in {:.2} s = {:.1} {unit}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let contributions = flag("--contributions", 500);
    let at_once = flag("--at-once", 32);
    let queries = flag("--queries", 60);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // One address for every client here: its per-address limits lifted.
        let limits = Limits {
            requests_per_minute: 1_000_000,
            intents_per_minute: 1_000_000,
            queries_per_minute: 1_000_000,
            tickets_per_address: 100_000,
            ..Limits::default()
        };
        let cluster = LocalCluster::start_limits(limits).await.unwrap();
        let client = Arc::new(Client::connect(&cluster.cluster).await.unwrap());
        println!(
            "coordinator and three parties in one process over QUIC on loopback, {} mode",
            cluster.cluster.security.name()
        );
        let c = client.clone();
        let (wall, lat) = run(contributions, at_once, move |i| {
            let c = c.clone();
            async move {
                c.share(DATASET, &format!("{}.25", i % 997)).await?;
                Ok(())
            }
        })
        .await;
        print(
            &format!("contributions, {at_once} providers at a time"),
            "contributions",
            wall,
            &lat,
        );
        for (stat, at_once) in [("count", 4), ("mean", 4), ("median", 4)] {
            let c = client.clone();
            let (wall, lat) = run(queries, at_once, move |_| {
                let c = c.clone();
                async move {
                    c.query(&QuerySpec::new(DATASET, stat)).await?;
                    Ok(())
                }
            })
            .await;
            print(
                &format!(
                    "{stat} over {contributions} contributions, {at_once} consumers at a time"
                ),
                "queries",
                wall,
                &lat,
            );
        }
        cluster.stop().await;
    });
}
