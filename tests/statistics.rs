//! Every statistic's MPC program against the plaintext reference, on seeded random data of
//! several shapes and sizes: n just above min_cohort, even and odd n, all values equal, many
//! ties, values at 0 and at the dataset maximum, large values; then a property test over many
//! small random cases. The three parties run in-process (the engine's channel transport), so
//! hundreds of cases take seconds; the end-to-end tests cover the same programs over QUIC.

use std::sync::Arc;

use mpcstats::config::{Dataset, ProofPolicy};
use mpcstats::engine::local::{local_transports, run3_secure};
use mpcstats::engine::{split, Security, Share, Z128};
use mpcstats::stats::answer::{finish, open_results};
use mpcstats::stats::{program, reference, Query};
use mpcstats::wire::QuerySpec;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

const MIN_COHORT: u64 = 5;
/// The dataset maximum: 10^6 units at 8 decimals.
const MAX: u128 = 100_000_000_000_000;

fn dataset() -> Dataset {
    Dataset {
        name: "d".into(),
        description: String::new(),
        scale: 8,
        max: "1000000".into(),
        min_cohort: MIN_COHORT,
        epoch_size: None,
        probing_per_epoch: mpcstats::config::DEFAULT_PROBING_PER_EPOCH,
        privacy: None,
        proof: ProofPolicy::None,
        template: None,
    }
}

/// [`dataset`] with no decimal places, maximum `max` and a cohort of 2.
fn unscaled(max: u128) -> Dataset {
    Dataset {
        scale: 0,
        max: max.to_string(),
        min_cohort: 2,
        ..dataset()
    }
}

/// Every kind of statistic, with parameters and filters.
fn specs() -> Vec<QuerySpec> {
    let q = |s: &str| QuerySpec::new("d", s);
    let mut v: Vec<QuerySpec> = [
        "count", "sum", "mean", "variance", "stddev", "min", "max", "median", "gini",
    ]
    .iter()
    .map(|s| q(s))
    .collect();
    v.push(QuerySpec {
        population: true,
        ..q("variance")
    });
    v.push(QuerySpec {
        population: true,
        ..q("stddev")
    });
    for p in ["0", "0.1", "0.5", "0.9", "0.999", "1"] {
        v.push(QuerySpec {
            param: Some(p.into()),
            ..q("quantile")
        });
    }
    for p in ["1", "25", "50", "99.5"] {
        v.push(QuerySpec {
            param: Some(p.into()),
            ..q("percentile")
        });
    }
    v.push(QuerySpec {
        param: Some("2".into()),
        ..q("lorenz")
    });
    v.push(QuerySpec {
        edges: ["0", "0.00000001", "1", "1000", "999999.99999999"]
            .iter()
            .map(|e| e.to_string())
            .collect(),
        ..q("histogram")
    });
    v.push(QuerySpec {
        filter: Some(">= 1".into()),
        ..q("median")
    });
    v.push(QuerySpec {
        filter: Some("!= 0".into()),
        ..q("mean")
    });
    v.push(QuerySpec {
        filter: Some("< 1000000".into()),
        ..q("max")
    });
    v
}

/// A party's count and result shares, or why it refused.
type PartyOutcome = Result<(u64, Vec<Share<Z128>>), String>;

/// Runs `spec` in MPC over `values` and returns the consumer's answer, or the error text.
async fn mpc_answer(spec: &QuerySpec, values: &[u128], seed: u64) -> Result<String, String> {
    mpc_answer_in(&dataset(), spec, values, seed).await
}

/// [`mpc_answer_in`] in a session of the given security.
async fn mpc_answer_in(
    ds: &Dataset,
    spec: &QuerySpec,
    values: &[u128],
    seed: u64,
) -> Result<String, String> {
    mpc_answer_secure(ds, spec, values, seed, Security::SemiHonest).await
}

/// [`mpc_answer`] over dataset `ds`, in a session of `security`.
async fn mpc_answer_secure(
    ds: &Dataset,
    spec: &QuerySpec,
    values: &[u128],
    seed: u64,
    security: Security,
) -> Result<String, String> {
    let min_cohort = ds.min_cohort;
    let q = Arc::new(Query::new(spec, ds).unwrap());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut per_party: [Vec<Share<Z128>>; 3] = Default::default();
    for &v in values {
        let p = split(Z128(v), &mut rng);
        for i in 0..3 {
            per_party[i].push(p[i]);
        }
    }
    let per_party = Arc::new(per_party);
    let qq = q.clone();
    let out = run3_secure(seed, security, local_transports(), move |mut s| {
        let x = per_party[s.id()].clone();
        let q = qq.clone();
        async move {
            let r = program::run(&mut s, &q, x, min_cohort).await;
            Ok(r.map(|o| (o.count, o.values)).map_err(|e| format!("{e:#}")))
        }
    })
    .await;
    let out: Vec<PartyOutcome> = out.into_iter().map(|r| r.unwrap()).collect();
    let (count, _) = out[0].clone()?;
    let pairs: Vec<Vec<(u128, u128)>> = out
        .iter()
        .map(|o| {
            o.as_ref()
                .unwrap()
                .1
                .iter()
                .map(|s| (s.a.0, s.b.0))
                .collect()
        })
        .collect();
    let opened = open_results(&q, std::array::from_fn(|i| &pairs[i][..])).unwrap();
    finish(&q, count, &opened)
        .map(|a| a.text)
        .map_err(|e| format!("{e:#}"))
}

fn plaintext(spec: &QuerySpec, values: &[u128]) -> Result<String, String> {
    let q = Query::new(spec, &dataset()).unwrap();
    let kept = match &q.filter {
        Some(f) => values
            .iter()
            .filter(|&&v| f.op.holds(v, f.threshold))
            .count(),
        None => values.len(),
    };
    if (kept as u64) < MIN_COHORT {
        return Err("cohort".into());
    }
    // A Lorenz curve's blocks of n/K contributions must each reach min_cohort.
    if let Some(k) = q.points {
        if ((kept / k as usize) as u64) < MIN_COHORT {
            return Err("cohort".into());
        }
    }
    reference::answer(&q, values)
        .map(|a| a.text)
        .map_err(|e| format!("{e:#}"))
}

async fn check_all(values: &[u128], seed: u64) {
    check_all_in(values, seed, Security::SemiHonest).await
}

async fn check_all_in(values: &[u128], seed: u64, security: Security) {
    for (k, spec) in specs().iter().enumerate() {
        let want = plaintext(spec, values);
        let got = mpc_answer_secure(&dataset(), spec, values, seed + k as u64, security).await;
        match (&want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "{spec:?} over {} values", values.len()),
            // A filter leaving fewer than min_cohort is refused by the parties.
            (Err(w), Err(g)) if w == "cohort" => assert!(g.contains("min_cohort"), "{g}"),
            _ => panic!("{spec:?}: MPC {got:?}, plaintext {want:?}"),
        }
    }
}

fn random_values(n: usize, seed: u64, max: u128) -> Vec<u128> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..=max)).collect()
}

/// Every statistic in a malicious session (every gate proven, every shuffle tagged) gives
/// the plaintext answer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statistic_in_malicious_mode() {
    for (n, seed) in [(6usize, 11u64), (33, 12), (101, 13)] {
        check_all_in(
            &random_values(n, seed, MAX),
            seed * 1000,
            Security::Malicious,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_even_odd_and_just_above_min_cohort() {
    for (n, seed) in [
        (6usize, 1u64),
        (7, 2),
        (8, 3),
        (33, 4),
        (64, 5),
        (101, 6),
        (500, 7),
    ] {
        check_all(&random_values(n, seed, MAX), seed * 1000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_equal_many_ties_zeros_and_maximum() {
    check_all(&[7_000_000; 9], 11).await;
    check_all(&[0; 6], 12).await;
    check_all(&[MAX; 10], 13).await;
    let ties: Vec<u128> = random_values(80, 14, 3)
        .into_iter()
        .map(|v| v * 100_000_000)
        .collect();
    check_all(&ties, 15).await;
    let extremes: Vec<u128> = (0..40).map(|i| if i % 3 == 0 { 0 } else { MAX }).collect();
    check_all(&extremes, 16).await;
    let mixed: Vec<u128> = (0..30)
        .map(|i| [0, 1, MAX - 1, MAX, 123_456_789][i % 5])
        .collect();
    check_all(&mixed, 17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_below_min_cohort_is_refused() {
    let values = vec![0u128, 0, 0, 0, 5, 5, 5, 5];
    let spec = QuerySpec {
        filter: Some("> 0".into()),
        ..QuerySpec::new("d", "mean")
    };
    let err = mpc_answer(&spec, &values, 3).await.unwrap_err();
    assert!(err.contains("min_cohort"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_small_cases_match_plaintext(
        values in prop::collection::vec(prop_oneof![
            3 => 0u128..1_000,
            1 => Just(0u128),
            1 => Just(MAX),
            2 => 0u128..=MAX,
        ], 5..24),
        which in 0usize..1000,
        seed in any::<u64>(),
    ) {
        let all = specs();
        let spec = &all[which % all.len()];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(mpc_answer(spec, &values, seed));
        let want = plaintext(spec, &values);
        match (&want, &got) {
            (Ok(w), Ok(g)) => prop_assert_eq!(g, w),
            (Err(w), Err(g)) if w == "cohort" => prop_assert!(g.contains("min_cohort")),
            _ => prop_assert!(false, "{:?}: MPC {:?}, plaintext {:?}", spec, got, want),
        }
    }
}

/// Variance at every magnitude: the largest V there is (half the values at the largest max
/// a dataset may have, half at 0: V = n²·max²/4), all values at max (V = 0) and a spread of
/// one, with n × max × 10^scale just below and above 2^64 and 2^65 and far beyond, equal to
/// the big-integer reference. A 128-bit V (n²·max²/4 at its largest) would wrap from n = 8.
#[tokio::test]
async fn variance_is_exact_at_every_magnitude() {
    let max: u128 = (1 << 62) - 1;
    let ds = unscaled(max);
    ds.max_scaled().unwrap();
    for stat in ["variance", "stddev"] {
        for population in [false, true] {
            let spec = QuerySpec {
                population,
                ..QuerySpec::new("d", stat)
            };
            let q = Query::new(&spec, &ds).unwrap();
            // n·max: 2^64 − 4, 2^64 + 2^62 − 5, 2^65 − 8, 2^65 + 2^62 − 9, about 2^72.
            for n in [4usize, 5, 8, 9, 1000] {
                let half: Vec<u128> = (0..n).map(|i| if i % 2 == 0 { max } else { 0 }).collect();
                let spread: Vec<u128> = (0..n).map(|i| max - (i % 2) as u128).collect();
                for (shape, values) in [
                    ("half at max", half),
                    ("all at max", vec![max; n]),
                    ("max and max − 1", spread),
                ] {
                    let want = reference::answer(&q, &values).unwrap().text;
                    assert_eq!(
                        mpc_answer_in(&ds, &spec, &values, 7 + n as u64).await,
                        Ok(want),
                        "{stat} population={population} n={n} {shape}"
                    );
                }
            }
        }
    }
}

/// Gini rounds half to even at its six digits: values whose 10^6·G is exactly 1.5 and 2.5
/// both print 0.000002 (a truncating division would print 0.000001 for the first).
#[tokio::test]
async fn gini_rounds_half_to_even() {
    let ds = Dataset {
        min_cohort: 2,
        ..dataset()
    };
    let spec = QuerySpec::new("d", "gini");
    for (values, want) in [
        ([99_999_700u128, 100_000_300], "0.000002"), // 10^6·G = 1.5
        ([99_999_500, 100_000_500], "0.000002"),     // 2.5
        ([99_999_300, 100_000_700], "0.000004"),     // 3.5
        ([99_999_299, 100_000_700], "0.000004"),     // just above 3.5
        ([99_999_301, 100_000_700], "0.000003"),     // just below 3.5
    ] {
        let q = Query::new(&spec, &ds).unwrap();
        assert_eq!(reference::answer(&q, &values).unwrap().text, want);
        assert_eq!(
            mpc_answer_in(&ds, &spec, &values, 3).await,
            Ok(want.to_string())
        );
    }
}

/// Lorenz takes 2 to 100 points: the edges pass, just outside them is refused.
#[test]
fn lorenz_points_are_limited_to_2_through_100() {
    let ds = dataset();
    let spec = |k: &str| QuerySpec {
        param: Some(k.into()),
        ..QuerySpec::new("d", "lorenz")
    };
    for ok in ["2", "100"] {
        assert_eq!(
            Query::new(&spec(ok), &ds).unwrap().points,
            Some(ok.parse().unwrap())
        );
    }
    for bad in ["1", "101", "0", "-3", "2.5"] {
        let e = format!("{:#}", Query::new(&spec(bad), &ds).unwrap_err());
        assert!(e.contains("from 2 to 100"), "{bad}: {e}");
    }
}

/// Order statistics compare keys only as wide as the dataset's maximum needs (its bits,
/// plus those of an index, plus a sign). At that limit: maxima of 1, 2^20 − 1, 2^20 (one
/// bit more) and 2^62 − 1 (the widest a dataset may have), values at 0, 1, max − 1 and
/// max, and n at and just past a power of two (where the index takes one more bit).
/// Histograms compare on the bits of the dataset's maximum: values at 0, 1, max − 1 and max
/// against edges at, just below and just above the maximum and the power of two above it
/// (where no comparison is made), in both modes and on both of malicious mode's paths (one
/// edge compares x − e; twelve small edges, which share their high bits, decompose x once:
/// `stats::program`'s path test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_at_the_width_of_the_maximum() {
    for max in [1u128, (1 << 20) - 1, 1 << 20, (1 << 62) - 1] {
        let ds = unscaled(max);
        let b = 128 - max.leading_zeros();
        let mut edges: Vec<u128> = [1, max.saturating_sub(1), max, max + 1]
            .into_iter()
            .chain([(1 << b) - 1, 1 << b, (1 << b) + 1])
            .filter(|e| (1..1 << 62).contains(e))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let n = 9;
        let values: Vec<u128> = (0..n)
            .map(|i| [max, 0, max.saturating_sub(1), 1.min(max)][(i * 7) % 4])
            .collect();
        let small: Vec<u128> = (1..=12).collect();
        let one = vec![(max / 3).max(1)];
        for edges in [edges.clone(), edges[edges.len() - 3..].to_vec(), small, one] {
            let spec = QuerySpec {
                edges: edges.iter().map(|e| e.to_string()).collect(),
                ..QuerySpec::new("d", "histogram")
            };
            let q = Query::new(&spec, &ds).unwrap();
            let want = reference::answer(&q, &values).unwrap().text;
            for security in [Security::SemiHonest, Security::Malicious] {
                let got = mpc_answer_secure(&ds, &spec, &values, 7, security).await;
                assert_eq!(
                    got,
                    Ok(want.clone()),
                    "max {max}, edges {edges:?}, {security:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_statistics_at_the_width_of_the_maximum() {
    for max in [1u128, (1 << 20) - 1, 1 << 20, (1 << 62) - 1] {
        let ds = unscaled(max);
        for n in [8usize, 9, 16, 17] {
            let values: Vec<u128> = (0..n)
                .map(|i| [max, 0, max.saturating_sub(1), 1.min(max)][(i * 7) % 4])
                .collect();
            for stat in ["min", "max", "median", "gini"] {
                let spec = QuerySpec::new("d", stat);
                let q = Query::new(&spec, &ds).unwrap();
                let want = reference::answer(&q, &values).unwrap().text;
                let got = mpc_answer_in(&ds, &spec, &values, n as u64).await;
                assert_eq!(got, Ok(want), "{stat}, max {max}, n {n}");
            }
            let spec = QuerySpec {
                param: Some("0.3".into()),
                ..QuerySpec::new("d", "quantile")
            };
            let q = Query::new(&spec, &ds).unwrap();
            let want = reference::answer(&q, &values).unwrap().text;
            let got = mpc_answer_in(&ds, &spec, &values, 100 + n as u64).await;
            assert_eq!(got, Ok(want), "quantile, max {max}, n {n}");
        }
    }
}
