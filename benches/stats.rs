//! Statistics benchmark over real QUIC on loopback: median, max, gini and a 10-bucket
//! histogram for n = 10^4, 10^5, 10^6 (three parties in one process), each in semi-honest
//! and in malicious mode. Prints time, rounds and bytes sent per party, and the ratio.
//!
//! Run: `cargo bench --bench stats` (or `-- 10000 100000` for chosen sizes, names such as
//! `median gini` to run only those statistics, `semi-honest` or `malicious` to run only that
//! mode, and `--reps N` for the repetitions each figure is the median of; 3 by default).

mod common;

use std::sync::Arc;

use common::{bench_dataset, meshes, ratio, report_reps, run3_reps, share_values};
use mpcstats::engine::Security;
use mpcstats::stats::{program, reference, Query};
use mpcstats::wire::QuerySpec;
use rand::{Rng, SeedableRng};

fn main() {
    let sizes: Vec<usize> = {
        let given: Vec<usize> = common::positional()
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        if given.is_empty() {
            vec![10_000, 100_000, 1_000_000]
        } else {
            given
        }
    };
    let words: Vec<String> = common::positional()
        .into_iter()
        .filter(|a| a.parse::<usize>().is_err() && !a.starts_with('-'))
        .collect();
    let (modes, only) = common::modes_and_rest(words);
    let ds = bench_dataset(None);
    let specs = {
        let q = |s: &str| QuerySpec::new("bench", s);
        vec![
            q("median"),
            q("max"),
            q("gini"),
            QuerySpec {
                edges: (0..10)
                    .map(|k| (10u64.pow(k / 2) * if k % 2 == 0 { 1 } else { 3 }).to_string())
                    .collect(),
                ..q("histogram")
            },
        ]
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(&s.stat))
        .collect::<Vec<_>>()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let m = meshes().await;
        let mut session = 0u8;
        for n in sizes {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(n as u64);
            let values: Vec<u128> = (0..n)
                .map(|_| rng.gen_range(0..=100_000_000_000_000u128))
                .collect();
            let shares = Arc::new(share_values(&values, 7));
            println!("n = {n}");
            let mut semi = None;
            for (spec, security) in specs
                .iter()
                .flat_map(|s| modes.iter().map(move |&m| (s, m)))
            {
                let q = Arc::new(Query::new(spec, &ds).unwrap());
                session += 1;
                let shares = shares.clone();
                let qq = q.clone();
                let runs = run3_reps(&m, [session; 16], security, move |i, mut s| {
                    let x = shares[i].clone();
                    let q = qq.clone();
                    async move {
                        let out = program::run(&mut s, &q, x, 5).await.unwrap();
                        let proven = s.proven();
                        (s, (out.values, proven))
                    }
                })
                .await;
                let (t, _, b) =
                    report_reps(&format!("  {}, {}", spec.stat, security.name()), &runs);
                let p = runs[0][0].out.1;
                if security == Security::Malicious {
                    // Party 0's time in proofs, the median over the runs.
                    let mut in_proofs: Vec<_> =
                        runs.iter().map(|r| r[0].out.1.proof_time).collect();
                    in_proofs.sort();
                    println!(
                        "    proven: {} AND gates, {} ring products, in {} proofs taking {:.1} ms",
                        p.and_words * 64,
                        p.product_gates,
                        p.proofs,
                        common::median(&in_proofs).as_secs_f64() * 1e3
                    );
                }
                ratio(&mut semi, t, b);
                // Check every run against plaintext, so a fast wrong answer cannot pass.
                let want = reference::opened(&q, &values).unwrap();
                for r in &runs {
                    let pairs: [mpcstats::engine::Share<mpcstats::engine::Z128>; 3] =
                        std::array::from_fn(|i| r[i].out.0.first().copied().unwrap_or_default());
                    let opened = mpcstats::engine::reconstruct(&pairs).unwrap().0;
                    let got = if spec.stat == "histogram" {
                        opened as u64 as u128
                    } else {
                        opened
                    };
                    assert_eq!(got, want[0], "{} over {n} values", spec.stat);
                }
            }
        }
    });
}
