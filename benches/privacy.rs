//! Differential privacy benchmark over real QUIC on loopback (three parties in one
//! process): what the noise drawn inside the MPC adds to count, sum and mean (rounds and
//! bytes beside the exact statistic), and the DP median of 10^5 values: time, rounds, bytes
//! per party, the process's peak memory, and its rank error at ε = 1 over seeded runs.
//!
//! Run: `cargo bench --bench privacy` (or `-- 1000000` for another n).

mod common;

use std::sync::Arc;

use common::{bench_dataset, meshes, report, run3, share_values};
use mpcstats::config::{Dataset, Privacy};
use mpcstats::decimal;
use mpcstats::stats::answer::{finish, open_results};
use mpcstats::stats::{program, Query};
use mpcstats::wire::QuerySpec;
use rand::{Rng, SeedableRng};

/// Peak resident memory of this process (all three parties), from /proc.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let exact = bench_dataset(None);
    let private = bench_dataset(Some(Privacy {
        epsilon: "1".into(),
        releases: 1,
    }));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let m = meshes().await;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(n as u64);
        let values: Vec<u128> = (0..n)
            .map(|_| rng.gen_range(0..=100_000_000_000_000u128))
            .collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let shares = Arc::new(share_values(&values, 7));
        let mut session = 0u8;
        println!("n = {n}, ε = 1 per release, values up to 10^6 at 8 decimals (47 bits)");
        let mut run = |spec: QuerySpec, ds: Dataset, label: String, seed: u8| {
            session += 1;
            let shares = shares.clone();
            let id = [session, seed, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let m = &m;
            async move {
                let q = Arc::new(Query::new(&spec, &ds).unwrap());
                let qq = q.clone();
                let r = run3(m, id, move |i, mut s| {
                    let x = shares[i].clone();
                    let q = qq.clone();
                    async move {
                        let out = program::run(&mut s, &q, x, 5).await.unwrap();
                        (s, (out.count, out.values))
                    }
                })
                .await;
                report(&label, &r);
                let pairs: Vec<Vec<(u128, u128)>> = r
                    .iter()
                    .map(|x| x.out.1.iter().map(|s| (s.a.0, s.b.0)).collect())
                    .collect();
                let opened = open_results(&q, std::array::from_fn(|i| &pairs[i][..])).unwrap();
                finish(&q, r[0].out.0, &opened).unwrap().text
            }
        };
        for stat in ["count", "sum", "mean"] {
            run(
                QuerySpec::new("bench", stat),
                exact.clone(),
                format!("  {stat} (exact)"),
                0,
            )
            .await;
            run(
                QuerySpec::new("bench", stat),
                private.clone(),
                format!("  {stat} (DP)"),
                0,
            )
            .await;
        }
        run(
            QuerySpec::new("bench", "median"),
            exact.clone(),
            "  median (exact)".into(),
            0,
        )
        .await;
        let mut errors = Vec::new();
        for seed in 0..5u8 {
            let text = run(
                QuerySpec::new("bench", "median"),
                private.clone(),
                format!("  median (DP, run {seed})"),
                seed,
            )
            .await;
            let t = decimal::parse(&text, 8, decimal::Excess::Reject).unwrap();
            let rank = sorted.partition_point(|&v| v < t) as i64;
            errors.push((rank - (n as i64 - 1) / 2).abs());
        }
        println!("  DP median rank error at ε = 1 over 5 seeded runs: {errors:?} (of n = {n})");
        println!(
            "  peak memory of the process (all three parties): {:.0} MB",
            peak_rss_mb()
        );
    });
}
