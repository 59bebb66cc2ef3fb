//! Plaintext reference of every statistic, computed directly from the values with
//! arbitrary-precision integers, then printed by the same `answer::finish`. The demo and the
//! tests compare each MPC answer with it.

use anyhow::{bail, Result};
use num_bigint::BigInt;
use num_traits::{ToPrimitive, Zero};

use super::answer::{finish, Answer};
use super::program::GINI_UNDEFINED;
use super::{Query, Stat, GINI_DIGITS};

fn small(v: BigInt) -> Result<u128> {
    match v.to_u128() {
        Some(x) => Ok(x),
        None => bail!("plaintext result {v} does not fit in 128 bits"),
    }
}

/// 10^GINI_DIGITS · num / den (num ≥ 0, den > 0) rounded half to even, like every result.
fn digits6(num: BigInt, den: &BigInt) -> BigInt {
    let scaled = num * BigInt::from(10u64.pow(GINI_DIGITS));
    let (q, r) = (&scaled / den, &scaled % den);
    let twice = r * 2;
    let up = &twice > den || (&twice == den && (&q % 2u8) == BigInt::from(1u8));
    if up {
        q + 1u8
    } else {
        q
    }
}

/// The values `q` opens over the plaintext `values` (already filtered), scaled integers.
pub fn opened(q: &Query, values: &[u128]) -> Result<Vec<u128>> {
    let n = values.len();
    let big_n = BigInt::from(n);
    let sum: BigInt = values.iter().map(|&v| BigInt::from(v)).sum();
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Ok(match q.stat {
        Stat::Count => vec![],
        Stat::Sum | Stat::Mean => vec![small(sum)?],
        Stat::Variance | Stat::Stddev => {
            // Two-pass: n·Σx² − (Σx)² = Σ (n·x − Σx)² / n, exactly.
            let sq: BigInt = values
                .iter()
                .map(|&v| {
                    let d = &big_n * BigInt::from(v) - &sum;
                    &d * &d
                })
                .sum();
            let v = sq / &big_n;
            let lo = small(&v % (BigInt::from(1u8) << 128))?;
            vec![lo, small(v >> 128)?]
        }
        Stat::Min => vec![sorted[0]],
        Stat::Max => vec![sorted[n - 1]],
        Stat::Median if n % 2 == 1 => vec![sorted[n / 2]],
        Stat::Median => vec![sorted[n / 2 - 1] + sorted[n / 2]],
        Stat::Quantile | Stat::Percentile => {
            // numpy's linear method, written out apart from the MPC program's helper:
            // h = (n − 1)·q; between x_⌊h⌋ and the next value, weight h − ⌊h⌋.
            let f = q.fraction.expect("validated");
            let h = (n as u128 - 1) * f.num;
            let lo = (h / f.den) as usize;
            let frac = h - lo as u128 * f.den;
            let hi = if frac == 0 { lo } else { lo + 1 };
            let v = BigInt::from(sorted[lo]) * BigInt::from(f.den - frac)
                + BigInt::from(sorted[hi]) * BigInt::from(frac);
            vec![small(v)?]
        }
        Stat::Gini => {
            if sum.is_zero() {
                vec![GINI_UNDEFINED]
            } else {
                let num: BigInt = sorted
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        BigInt::from(2 * (i as i128 + 1) - n as i128 - 1) * BigInt::from(v)
                    })
                    .sum();
                vec![small(digits6(num, &(&big_n * &sum)))?]
            }
        }
        Stat::Lorenz => {
            let k = q.points.expect("validated") as usize;
            if sum.is_zero() {
                vec![GINI_UNDEFINED; k - 1]
            } else {
                (1..k)
                    .map(|i| {
                        let part: BigInt =
                            sorted[..i * n / k].iter().map(|&v| BigInt::from(v)).sum();
                        let scaled = part * BigInt::from(10u64.pow(GINI_DIGITS));
                        let (q, r) = (&scaled / &sum, &scaled % &sum);
                        let twice = r * 2;
                        let up = twice > sum || (twice == sum && (&q % 2u8) == BigInt::from(1u8));
                        small(if up { q + 1u8 } else { q })
                    })
                    .collect::<Result<_>>()?
            }
        }
        Stat::Histogram => q
            .edges
            .iter()
            .map(|&e| values.iter().filter(|&&v| v < e).count() as u128)
            .collect(),
    })
}

/// The answer over the plaintext values, as the consumer would print it.
pub fn answer(q: &Query, values: &[u128]) -> Result<Answer> {
    let kept: Vec<u128> = match &q.filter {
        Some(f) => values
            .iter()
            .copied()
            .filter(|&v| f.op.holds(v, f.threshold))
            .collect(),
        None => values.to_vec(),
    };
    finish(q, kept.len() as u64, &opened(q, &kept)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dataset, ProofPolicy};
    use crate::wire::QuerySpec;

    fn ds(scale: u32) -> Dataset {
        Dataset {
            name: "d".into(),
            description: String::new(),
            scale,
            max: "1000000".into(),
            min_cohort: 1,
            epoch_size: None,
            probing_per_epoch: crate::config::DEFAULT_PROBING_PER_EPOCH,
            privacy: None,
            proof: ProofPolicy::None,
            template: None,
        }
    }

    fn ans(spec: QuerySpec, scale: u32, values: &[u128]) -> String {
        let q = Query::new(&spec, &ds(scale)).unwrap();
        answer(&q, values).unwrap().text
    }

    fn spec(stat: &str) -> QuerySpec {
        QuerySpec::new("d", stat)
    }

    #[test]
    fn matches_python_statistics() {
        // statistics.variance([1, 2, 3, 4]) == 1.6666…, pvariance == 1.25,
        // stdev == 1.2909944…, pstdev == 1.1180339…, mean == 2.5, median == 2.5
        let v = [100, 200, 300, 400]; // scale 2
        let pop = |stat: &str| QuerySpec {
            population: true,
            ..spec(stat)
        };
        assert_eq!(ans(spec("count"), 2, &v), "4");
        assert_eq!(ans(spec("sum"), 2, &v), "10.00");
        assert_eq!(ans(spec("mean"), 2, &v), "2.50");
        assert_eq!(ans(spec("variance"), 2, &v), "1.67");
        assert_eq!(ans(pop("variance"), 2, &v), "1.25");
        assert_eq!(ans(spec("stddev"), 2, &v), "1.29");
        assert_eq!(ans(pop("stddev"), 2, &v), "1.12");
        assert_eq!(ans(spec("median"), 2, &v), "2.50");
        assert_eq!(ans(spec("median"), 2, &v[..3]), "2.00");
        assert_eq!(ans(spec("min"), 2, &v), "1.00");
        assert_eq!(ans(spec("max"), 2, &v), "4.00");
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 90) == 3.7; ([1, 2, 3, 4], 25) == 1.75;
        // numpy.quantile([10, 20], 0.333) == 13.33
        let v = [100, 200, 300, 400];
        let with = |stat: &str, p: &str| QuerySpec {
            param: Some(p.into()),
            ..spec(stat)
        };
        assert_eq!(ans(with("percentile", "90"), 2, &v), "3.70");
        assert_eq!(ans(with("percentile", "25"), 2, &v), "1.75");
        assert_eq!(ans(with("quantile", "0.9"), 2, &v), "3.70");
        assert_eq!(ans(with("quantile", "0"), 2, &v), "1.00");
        assert_eq!(ans(with("quantile", "1"), 2, &v), "4.00");
        assert_eq!(ans(with("quantile", "0.333"), 2, &[1000, 2000]), "13.33");
        let bad = Query::new(&with("quantile", "1.5"), &ds(2));
        assert!(bad.is_err());
        assert!(Query::new(&spec("quantile"), &ds(2)).is_err());
    }

    #[test]
    fn gini_and_histogram() {
        // Gini of [1, 2, 3, 4]: Σ(2i − n − 1)x = −3·1 − 1·2 + 1·3 + 3·4 = 10; 10 / (4·10) = 0.25
        assert_eq!(ans(spec("gini"), 0, &[1, 2, 3, 4]), "0.250000");
        assert_eq!(ans(spec("gini"), 0, &[5, 5, 5]), "0.000000");
        assert_eq!(
            ans(spec("gini"), 0, &[0, 0, 0]),
            "undefined (every value is 0)"
        );
        // One holder of everything among 3: G = (n − 1)/n = 0.666666…, rounded.
        assert_eq!(ans(spec("gini"), 0, &[0, 0, 9]), "0.666667");
        let h = QuerySpec {
            edges: vec!["0".into(), "1".into(), "10".into()],
            ..spec("histogram")
        };
        assert_eq!(
            ans(h, 0, &[0, 0, 1, 5, 10, 11]),
            "< 0: 0 · [0, 1): 2 · [1, 10): 2 · >= 10: 2"
        );
    }

    #[test]
    fn filters() {
        let f = |stat: &str, w: &str| QuerySpec {
            filter: Some(w.into()),
            ..spec(stat)
        };
        let v = [0, 50, 100, 150, 200];
        assert_eq!(ans(f("count", ">= 1"), 2, &v), "3");
        assert_eq!(ans(f("count", "> 1"), 2, &v), "2");
        assert_eq!(ans(f("count", "< 1"), 2, &v), "2");
        assert_eq!(ans(f("count", "<= 1"), 2, &v), "3");
        assert_eq!(ans(f("count", "== 1"), 2, &v), "1");
        assert_eq!(ans(f("count", "!= 1"), 2, &v), "4");
        assert_eq!(ans(f("sum", ">= 1"), 2, &v), "4.50");
        for bad in ["", ">=", "~ 1", ">= -1", ">= 1.234"] {
            assert!(Query::new(&f("count", bad), &ds(2)).is_err(), "{bad}");
        }
    }

    #[test]
    fn large_values_do_not_wrap() {
        // 10^6 units at scale 8 is 10^14; 1000 contributions alternating 0 and max.
        let max = 100_000_000_000_000u128;
        let v: Vec<u128> = (0..1000)
            .map(|i| if i % 2 == 0 { 0 } else { max })
            .collect();
        let pop = |stat: &str| QuerySpec {
            population: true,
            ..spec(stat)
        };
        assert_eq!(ans(pop("variance"), 8, &v), "250000000000.00000000");
        assert_eq!(ans(pop("stddev"), 8, &v), "500000.00000000");
        assert_eq!(ans(spec("mean"), 8, &v), "500000.00000000");
        assert_eq!(ans(spec("gini"), 8, &v), "0.500000");
    }

    #[test]
    fn sample_variance_needs_two() {
        let q = Query::new(&spec("variance"), &ds(2)).unwrap();
        assert!(answer(&q, &[5]).is_err());
        let q = Query::new(
            &QuerySpec {
                population: true,
                ..spec("variance")
            },
            &ds(2),
        )
        .unwrap();
        assert_eq!(answer(&q, &[5]).unwrap().text, "0.00");
    }
}
