//! Differential privacy end to end: a dataset with `privacy = { epsilon, releases }` on a
//! real cluster (noise drawn inside the MPC, the budget kept by the parties), and the DP
//! programs' accuracy in-process.

use std::sync::Arc;

use mpcstats::config::{Dataset, Privacy, ProofPolicy};
use mpcstats::decimal;
use mpcstats::engine::local::run3;
use mpcstats::engine::{split, Share, Z128};
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::{ExtraSources, LocalCluster};
use mpcstats::stats::answer::{finish, open_results};
use mpcstats::stats::{program, Query};
use mpcstats::wire::QuerySpec;
use rand::{Rng, SeedableRng};

const DS: &str = "dp_balance";

fn dataset(epsilon: &str, releases: u32) -> Dataset {
    Dataset {
        name: DS.into(),
        description: "balances under differential privacy".into(),
        scale: 2,
        max: "1000".into(),
        min_cohort: 5,
        epoch_size: Some(10),
        probing_per_epoch: 1,
        privacy: Some(Privacy {
            epsilon: epsilon.into(),
            releases,
        }),
        proof: ProofPolicy::None,
        template: None,
    }
}

fn q(stat: &str) -> QuerySpec {
    QuerySpec::new(DS, stat)
}

fn value(text: &str) -> i128 {
    decimal::parse(text, 2, decimal::Excess::Reject).unwrap() as i128
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_answers_spend_the_budget_once_and_then_are_refused() {
    let extra = ExtraSources {
        datasets: vec![dataset("8", 4)],
        ..Default::default()
    };
    let c = LocalCluster::start_extra(None, 1, 1, extra).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let values: Vec<u128> = (1..=20).map(|v| v * 2_500).collect(); // 25.00 … 500.00
    for v in &values {
        client.share(DS, &decimal::format(*v, 2)).await.unwrap();
    }
    let total: u128 = values.iter().sum();

    // The count is exact and free: the number of contributions of an epoch is public.
    let count = client.query(&q("count")).await.unwrap();
    assert_eq!((count.text.as_str(), count.epoch), ("20", 2));
    assert_eq!(count.spent.as_ref().unwrap().used, 0);

    // ε = 8 over 4 releases: ε_r = 2, a sum's noise scale is max/2 = 500.00 per draw.
    let sum = client.query(&q("sum")).await.unwrap();
    let spent = sum.spent.clone().unwrap();
    assert_eq!((spent.used, spent.releases), (1, 4));
    assert_eq!(
        (spent.epsilon_spent.as_str(), spent.epsilon_left.as_str()),
        ("2.000000", "6.000000")
    );
    let err = value(&sum.text) - total as i128;
    assert!(err.abs() < 40 * 50_000, "noise far beyond its scale: {err}");
    // Asking again returns the released answer (the same noise) and spends nothing.
    let again = client.query(&q("sum")).await.unwrap();
    assert_eq!(again.text, sum.text);
    assert_eq!(again.spent.unwrap().used, 1);

    // Each fresh statistic is a release; results stay within what the dataset allows.
    let mean = client.query(&q("mean")).await.unwrap();
    assert!((0..=100_000).contains(&value(&mean.text)), "{}", mean.text);
    let median = client.query(&q("median")).await.unwrap();
    assert!(
        (0..=100_000).contains(&value(&median.text)),
        "{}",
        median.text
    );
    let hist = client
        .query(&QuerySpec {
            edges: vec!["100".into(), "300".into()],
            ..q("histogram")
        })
        .await
        .unwrap();
    assert_eq!(
        hist.text.matches(':').count(),
        3,
        "three noisy buckets: {}",
        hist.text
    );
    assert_eq!(hist.spent.as_ref().unwrap().used, 4);
    assert_eq!(hist.spent.as_ref().unwrap().epsilon_left, "0.000000");

    // The fifth fresh release is refused with the budget in the message; answers released
    // before are still served.
    let e = format!("{:#}", client.query(&q("variance")).await.unwrap_err());
    assert!(e.contains("privacy budget") && e.contains("all 4"), "{e}");
    assert_eq!(client.query(&q("sum")).await.unwrap().text, sum.text);

    // What DP cannot release is refused by name, before any computation.
    for (spec, needle) in [
        (q("max"), "one contributor's exact value"),
        (q("min"), "one contributor's exact value"),
        (q("gini"), "gini is not released"),
        (
            QuerySpec {
                filter: Some(">= 1".into()),
                ..q("sum")
            },
            "a filter opens the exact number",
        ),
    ] {
        let e = format!("{:#}", client.query(&spec).await.unwrap_err());
        assert!(e.contains(needle), "{}: {e}", spec.stat);
    }
    c.stop().await;
}

/// Runs `spec` under DP in-process over `values` and returns the answer text.
async fn dp_answer(ds: &Dataset, spec: &QuerySpec, values: &[u128], seed: u64) -> String {
    let q = Arc::new(Query::new(spec, ds).unwrap());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut per: [Vec<Share<Z128>>; 3] = Default::default();
    for &v in values {
        let p = split(Z128(v), &mut rng);
        for i in 0..3 {
            per[i].push(p[i]);
        }
    }
    let per = Arc::new(per);
    let qq = q.clone();
    let out = run3(seed, move |mut s| {
        let x = per[s.id()].clone();
        let q = qq.clone();
        async move { Ok(program::run(&mut s, &q, x, 1).await.unwrap()) }
    })
    .await;
    let out: Vec<program::Output> = out.into_iter().map(|r| r.unwrap()).collect();
    let pairs: Vec<Vec<(u128, u128)>> = out
        .iter()
        .map(|o| o.values.iter().map(|s| (s.a.0, s.b.0)).collect())
        .collect();
    let opened = open_results(&q, std::array::from_fn(|i| &pairs[i][..])).unwrap();
    finish(&q, out[0].count, &opened).unwrap().text
}

/// The DP median's rank error at ε_r = 1 over seeded runs: small against n, and the noise
/// is real (the runs do not all agree).
#[tokio::test]
async fn dp_median_is_accurate_in_rank_and_actually_noisy() {
    let ds = dataset("1", 1);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let n = 1000;
    let mut values: Vec<u128> = (0..n).map(|_| rng.gen_range(0..=100_000)).collect();
    let mut answers = std::collections::HashSet::new();
    for seed in 0..4 {
        let t = value(&dp_answer(&ds, &q("median"), &values, seed).await) as u128;
        values.sort_unstable();
        let rank = values.iter().filter(|&&v| v < t).count() as i64;
        let err = (rank - (n as i64 - 1) / 2).abs();
        // 17 steps of DLap(17) each (three draws): a rank error of a few dozen.
        assert!(err < 150, "seed {seed}: rank {rank}, error {err}");
        answers.insert(t);
    }
    assert!(
        answers.len() > 1,
        "four runs gave the same median: no noise?"
    );
}

/// Noisy variance from noisy Σx and Σx²: close to the exact one when ε_r is large.
#[tokio::test]
async fn dp_variance_and_histogram_are_close_at_large_epsilon() {
    let ds = dataset("100", 1);
    let values: Vec<u128> = (0..200).map(|i| (i % 10) * 10_000).collect(); // 0, 100, …, 900
    let var = value(&dp_answer(&ds, &q("variance"), &values, 1).await);
    // Exact sample variance of 0..900 step 100, 20 times each: 82914.57…
    assert!((var - 8_291_457).abs() < 200_000, "{var}");
    let h = QuerySpec {
        edges: vec!["450".into()],
        ..q("histogram")
    };
    let text = dp_answer(&ds, &h, &values, 2).await;
    // 100 below and 100 at or above 450, each ± a few.
    let counts: Vec<i64> = text
        .split(" · ")
        .map(|p| p.rsplit(": ").next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{text}");
    assert!(counts.iter().all(|&c| (c - 100).abs() <= 5), "{text}");
}
