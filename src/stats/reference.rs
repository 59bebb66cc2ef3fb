//! Plaintext reference of every statistic, computed independently of the MPC formulas with
//! arbitrary-precision integers, then printed by the same `answer::finish`. The demo and the
//! tests compare each MPC answer with it.

use anyhow::{bail, Result};
use num_bigint::{BigInt, BigUint};
use num_traits::ToPrimitive;

use super::answer::{finish, Answer};
use super::Stat;

/// The values `stat` would open over the plaintext `values` (scaled integers).
pub fn opened(stat: Stat, values: &[u128]) -> Result<Vec<u128>> {
    let n = BigInt::from(values.len());
    let sum: BigInt = values.iter().map(|&v| BigInt::from(v)).sum();
    let big = |v: BigInt| -> Result<u128> {
        match v.to_u128() {
            Some(x) => Ok(x),
            None => bail!("plaintext result {v} does not fit in 128 bits"),
        }
    };
    Ok(match stat {
        Stat::Count => vec![],
        Stat::Sum | Stat::Mean => vec![big(sum)?],
        Stat::Variance | Stat::Stddev => {
            if values.is_empty() {
                return Ok(vec![0]);
            }
            // Two-pass: n·Σx² − (Σx)² = Σ (n·x − Σx)² / n, exactly.
            let sq: BigInt = values
                .iter()
                .map(|&v| {
                    let d = &n * BigInt::from(v) - &sum;
                    &d * &d
                })
                .sum();
            let v: BigUint = (sq / &n).to_biguint().unwrap_or_default();
            vec![big(BigInt::from(v))?]
        }
    })
}

/// The answer over the plaintext values, as the consumer would print it.
pub fn answer(stat: Stat, population: bool, scale: u32, values: &[u128]) -> Result<Answer> {
    finish(
        stat,
        population,
        values.len() as u64,
        scale,
        &opened(stat, values)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(stat: Stat, population: bool, scale: u32, values: &[u128]) -> String {
        answer(stat, population, scale, values).unwrap().text
    }

    #[test]
    fn matches_python_statistics() {
        // statistics.variance([1, 2, 3, 4]) == 1.6666…, pvariance == 1.25,
        // stdev == 1.2909944…, pstdev == 1.1180339…, mean == 2.5
        let v = [100, 200, 300, 400]; // scale 2
        assert_eq!(ans(Stat::Count, false, 2, &v), "4");
        assert_eq!(ans(Stat::Sum, false, 2, &v), "10.00");
        assert_eq!(ans(Stat::Mean, false, 2, &v), "2.50");
        assert_eq!(ans(Stat::Variance, false, 2, &v), "1.67");
        assert_eq!(ans(Stat::Variance, true, 2, &v), "1.25");
        assert_eq!(ans(Stat::Stddev, false, 2, &v), "1.29");
        assert_eq!(ans(Stat::Stddev, true, 2, &v), "1.12");
    }

    #[test]
    fn large_values_do_not_wrap() {
        // 10^6 units at scale 8 is 10^14; 1000 contributions alternating 0 and max.
        let max = 100_000_000_000_000u128;
        let v: Vec<u128> = (0..1000)
            .map(|i| if i % 2 == 0 { 0 } else { max })
            .collect();
        // population variance = max²/4 → printed in units²: 2.5e11
        assert_eq!(ans(Stat::Variance, true, 8, &v), "250000000000.00000000");
        assert_eq!(ans(Stat::Stddev, true, 8, &v), "500000.00000000");
        assert_eq!(ans(Stat::Mean, true, 8, &v), "500000.00000000");
    }

    #[test]
    fn sample_variance_needs_two() {
        assert!(answer(Stat::Variance, false, 2, &[5]).is_err());
        assert_eq!(ans(Stat::Variance, true, 2, &[5]), "0.00");
    }
}
