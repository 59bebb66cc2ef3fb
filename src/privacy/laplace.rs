//! Exact sampling of the discrete Laplace distribution DLap(t/s): P(x) ∝ exp(−|x|·s/t) over
//! the integers, from uniform random bits with integer arithmetic only (Canonne, Kamath and
//! Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, Algorithms 1
//! and 2). No floating point anywhere: a float sampler leaks through its rounding
//! (Mironov, CCS 2012). Scales are arbitrary-precision, so noise for Σx² fits too.
//!
//! Deterministic given the random stream: two parties drawing from the same stream get the
//! same sample (the MPC relies on it, see `noise`).

use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Zero};
use rand::RngCore;

/// A uniform integer in [0, bound), bound > 0, by rejection on ⌈log2 bound⌉ random bits.
pub fn uniform_below<G: RngCore + ?Sized>(rng: &mut G, bound: &BigUint) -> BigUint {
    debug_assert!(!bound.is_zero());
    let bits = bound.bits();
    let bytes = bits.div_ceil(8) as usize;
    let excess = (bytes as u64) * 8 - bits;
    let mut buf = vec![0u8; bytes];
    loop {
        rng.fill_bytes(&mut buf);
        if let Some(top) = buf.last_mut() {
            *top &= 0xff >> excess;
        }
        let v = BigUint::from_bytes_le(&buf);
        if &v < bound {
            return v;
        }
    }
}

/// True with probability num/den (0 ≤ num ≤ den, den > 0).
fn bernoulli<G: RngCore + ?Sized>(rng: &mut G, num: &BigUint, den: &BigUint) -> bool {
    &uniform_below(rng, den) < num
}

/// True with probability exp(−num/den), for num ≥ 0, den > 0 (CKS Algorithm 1).
pub fn bernoulli_exp_neg<G: RngCore + ?Sized>(rng: &mut G, num: &BigUint, den: &BigUint) -> bool {
    if num <= den {
        // K = the first k with A_k = 0, A_k ~ Bernoulli(γ/k); return whether K is odd.
        let mut k = BigUint::one();
        loop {
            if !bernoulli(rng, num, &(den * &k)) {
                return k.bit(0);
            }
            k += 1u8;
        }
    }
    let whole = num / den;
    let mut i = BigUint::zero();
    while i < whole {
        if !bernoulli_exp_neg(rng, &BigUint::one(), &BigUint::one()) {
            return false;
        }
        i += 1u8;
    }
    bernoulli_exp_neg(rng, &(num - &whole * den), den)
}

/// One draw from DLap(t/s), t, s > 0 (CKS Algorithm 2).
pub fn discrete_laplace<G: RngCore + ?Sized>(rng: &mut G, t: &BigUint, s: &BigUint) -> BigInt {
    let one = BigUint::one();
    loop {
        let u = uniform_below(rng, t);
        if !bernoulli_exp_neg(rng, &u, t) {
            continue;
        }
        let mut v = BigUint::zero();
        while bernoulli_exp_neg(rng, &one, &one) {
            v += 1u8;
        }
        let y = (u + t * v) / s;
        let negative = bernoulli(rng, &one, &BigUint::from(2u8));
        if negative && y.is_zero() {
            continue;
        }
        let sign = if negative { Sign::Minus } else { Sign::Plus };
        return BigInt::from_biguint(sign, y);
    }
}

/// x mod 2^256 as (low, high) 128-bit halves (two's complement for negative x).
pub fn wrap_256(x: &BigInt) -> (u128, u128) {
    let m = BigInt::one() << 256;
    let r: BigInt = ((x % &m) + &m) % &m;
    let (_, digits) = r.to_u64_digits();
    let d = |i: usize| u128::from(digits.get(i).copied().unwrap_or(0));
    (d(0) | (d(1) << 64), d(2) | (d(3) << 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// P(x) of DLap(t/s) = (1 − q)/(1 + q) · q^|x|, q = exp(−s/t) (floats: tests only).
    fn pmf(x: i64, t: f64, s: f64) -> f64 {
        let q = (-s / t).exp();
        (1.0 - q) / (1.0 + q) * q.powi(x.unsigned_abs() as i32)
    }

    /// Pearson's χ² of `draws` against DLap(t/s), over the cells |x| ≤ cut and two tails.
    fn chi_square(draws: &[i64], t: f64, s: f64, cut: i64) -> (f64, usize) {
        let n = draws.len() as f64;
        let mut cells: Vec<(f64, f64)> = Vec::new();
        for x in -cut..=cut {
            let obs = draws.iter().filter(|&&d| d == x).count() as f64;
            cells.push((obs, n * pmf(x, t, s)));
        }
        let tail: f64 = 1.0 - (-cut..=cut).map(|x| pmf(x, t, s)).sum::<f64>();
        let obs = draws.iter().filter(|&&d| d.abs() > cut).count() as f64;
        cells.push((obs, n * tail));
        let stat = cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
        (stat, cells.len() - 1)
    }

    /// χ² critical values at false-alarm rate 10^-3 (from tables), by degrees of freedom.
    fn critical(df: usize) -> f64 {
        match df {
            11 => 31.26,
            13 => 34.53,
            21 => 46.80,
            _ => panic!("no table entry for {df}"),
        }
    }

    fn draws(seed: u64, t: u64, s: u64, n: usize) -> Vec<i64> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let (t, s) = (BigUint::from(t), BigUint::from(s));
        (0..n)
            .map(|_| {
                let d = discrete_laplace(&mut rng, &t, &s);
                i64::try_from(d).unwrap()
            })
            .collect()
    }

    #[test]
    fn matches_the_discrete_laplace_distribution() {
        // Scales 1, 2.5 and 4/3 (a rational t/s), 40,000 draws each, seeded: the χ² test at a
        // 10^-3 false-alarm rate accepts.
        for (t, s, cut) in [(1u64, 1u64, 5i64), (5, 2, 10), (4, 3, 6)] {
            let d = draws(t * 31 + s, t, s, 40_000);
            let (stat, df) = chi_square(&d, t as f64, s as f64, cut);
            assert!(
                stat < critical(df),
                "t/s = {t}/{s}: χ² = {stat:.1} with {df} df"
            );
            let mean = d.iter().sum::<i64>() as f64 / d.len() as f64;
            assert!(
                mean.abs() < 0.1 * t as f64 / s as f64,
                "symmetric: mean {mean}"
            );
        }
    }

    #[test]
    fn the_test_rejects_a_wrong_scale() {
        // The same test tells DLap(2) from DLap(2.5): it can fail.
        let d = draws(7, 2, 1, 40_000);
        let (stat, df) = chi_square(&d, 5.0, 2.0, 10);
        assert!(stat > critical(df), "χ² = {stat:.1}");
    }

    #[test]
    fn exp_bernoulli_has_the_right_rate() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for (num, den) in [(1u32, 2u32), (3, 1), (0, 1), (7, 3)] {
            let n = 20_000;
            let hits = (0..n)
                .filter(|_| bernoulli_exp_neg(&mut rng, &BigUint::from(num), &BigUint::from(den)))
                .count() as f64;
            let p = (-(num as f64) / den as f64).exp();
            let sd = (p * (1.0 - p) / n as f64).sqrt().max(1e-9);
            assert!((hits / n as f64 - p).abs() < 5.0 * sd + 1e-9, "{num}/{den}");
        }
    }

    #[test]
    fn same_stream_same_draws_and_huge_scales_work() {
        let t = BigUint::from(1u8) << 200;
        let s = BigUint::from(3u8);
        let mut a = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut b = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let x = discrete_laplace(&mut a, &t, &s);
        assert_eq!(x, discrete_laplace(&mut b, &t, &s));
        assert!(x.bits() > 150, "a draw at scale 2^200/3 is large");
    }

    #[test]
    fn wrapping_is_twos_complement() {
        assert_eq!(wrap_256(&BigInt::from(5)), (5, 0));
        assert_eq!(wrap_256(&BigInt::from(-1)), (u128::MAX, u128::MAX));
        assert_eq!(wrap_256(&(BigInt::one() << 130)), (0, 4));
    }
}
