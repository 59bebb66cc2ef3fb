//! Noise drawn inside the MPC, known to no single party.
//!
//! Component j of a replicated sharing is held by parties j and j − 1, which share seed k_j
//! (`engine::prf`). For each noisy value both holders of component j draw the same full
//! sample N_j ~ DLap(scale) from k_j's pairwise stream and add it to component j: the value
//! then carries N_0 + N_1 + N_2, with no round and no byte sent. Party i knows N_i and
//! N_{i+1} but not N_{i+2}, an independent full draw: what it could subtract leaves the
//! result with at least one complete DLap(scale) sample, so its view of the released value
//! is ε-DP however it combines it with the consumer's (post-processing). The consumer sees
//! the sum of three draws (variance 3× one draw).
//!
//! Malicious parties (a holder adding a different N_j) are out of scope here, as for every
//! other opening of this engine today.

use anyhow::{bail, Result};
use num_bigint::BigInt;

use super::laplace::{discrete_laplace, wrap_256};
use super::mechanism::Scale;
use crate::engine::{Correlated, Ring, Share, Z128, Z256, Z64};

/// A ring a noise sample is reduced into (two's complement mod 2^k).
pub trait Noisy: Ring {
    fn from_wrapped(lo: u128, hi: u128) -> Self;
}

impl Noisy for Z64 {
    fn from_wrapped(lo: u128, _hi: u128) -> Self {
        Z64(lo as u64)
    }
}

impl Noisy for Z128 {
    fn from_wrapped(lo: u128, _hi: u128) -> Self {
        Z128(lo)
    }
}

impl Noisy for Z256 {
    fn from_wrapped(lo: u128, hi: u128) -> Self {
        Z256::new(lo, hi)
    }
}

/// Largest magnitude a noise sample may have in `R` (results are read as signed numbers,
/// so value plus three samples must stay far inside the ring). A larger sample is an
/// error, not a wrap; at the scales the datasets allow it never happens.
fn bound<R: Ring>() -> u64 {
    u64::from(R::BITS) - 8
}

fn reduce<R: Noisy>(x: &BigInt) -> Result<R> {
    if x.bits() > bound::<R>() {
        bail!(
            "a noise sample beyond 2^{} (scale too large for this ring)",
            bound::<R>()
        );
    }
    let (lo, hi) = wrap_256(x);
    Ok(R::from_wrapped(lo, hi))
}

/// This party's share of fresh noise N_0 + N_1 + N_2 for each scale, in order. All three
/// parties must call it at the same point of the session with the same scales.
pub fn noise_shares<R: Noisy>(c: &mut Correlated, scales: &[Scale]) -> Result<Vec<Share<R>>> {
    let (own, next) = c.common_streams();
    let mut out = Vec::with_capacity(scales.len());
    for sc in scales {
        let a = discrete_laplace(own, &sc.t, &sc.s);
        let b = discrete_laplace(next, &sc.t, &sc.s);
        out.push(Share {
            a: reduce(&a)?,
            b: reduce(&b)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reconstruct;
    use num_bigint::BigUint;

    fn three(seed: u8) -> [Correlated; 3] {
        let k = [
            [seed; 32],
            [seed.wrapping_add(1); 32],
            [seed.wrapping_add(2); 32],
        ];
        [0, 1, 2].map(|i| Correlated::new(k[i], k[(i + 1) % 3]))
    }

    fn signed(x: Z64) -> i64 {
        x.0 as i64
    }

    #[test]
    fn holders_agree_and_the_total_is_the_sum_of_three_draws() {
        let scale = Scale {
            t: BigUint::from(3u8),
            s: BigUint::from(1u8),
        };
        let mut c = three(1);
        let shares: Vec<Vec<Share<Z64>>> = c
            .iter_mut()
            .map(|p| noise_shares(p, &[scale.clone(), scale.clone()]).unwrap())
            .collect();
        for (k, first) in shares[0].iter().enumerate() {
            let pairs = [*first, shares[1][k], shares[2][k]];
            // reconstruct checks that both holders of each component agree.
            let total = reconstruct(&pairs).unwrap();
            let parts: i64 = (0..3).map(|j| signed(pairs[j].a)).sum();
            assert_eq!(signed(total), parts);
        }
    }

    /// What party 0 knows (N_0 + N_1) and what it lacks (N_2) are independent: over many
    /// seeded sessions, a χ² test of independence on (sign of known, |missing| ≤ scale)
    /// accepts at false-alarm rate 10^-3; and the missing part alone is a full draw (its
    /// variance is that of one DLap(scale) sample).
    #[test]
    fn a_partys_view_is_independent_of_the_noise_it_lacks() {
        let scale = Scale {
            t: BigUint::from(4u8),
            s: BigUint::from(1u8),
        };
        let mut table = [[0f64; 2]; 3];
        let mut missing_sq = 0f64;
        let runs = 6000;
        for r in 0..runs {
            let mut c = three((r % 250) as u8);
            // Advance differently per run so that seeds repeat with fresh positions.
            for p in c.iter_mut() {
                let _ = noise_shares::<Z64>(p, &vec![scale.clone(); r / 250]).unwrap();
            }
            let s: Vec<Share<Z64>> = c
                .iter_mut()
                .map(|p| noise_shares(p, std::slice::from_ref(&scale)).unwrap()[0])
                .collect();
            let known = signed(s[0].a) + signed(s[0].b);
            let missing = signed(s[1].b); // component 2, held by parties 1 and 2
            missing_sq += (missing * missing) as f64;
            let row = (known.signum() + 1) as usize;
            let col = usize::from(missing.abs() <= 4);
            table[row][col] += 1.0;
        }
        let total: f64 = table.iter().flatten().sum();
        let mut chi = 0.0;
        for (i, row) in table.iter().enumerate() {
            for j in 0..2 {
                let rs: f64 = table[i].iter().sum();
                let cs: f64 = table.iter().map(|r| r[j]).sum();
                let e = rs * cs / total;
                chi += (row[j] - e).powi(2) / e;
            }
        }
        // 2 degrees of freedom: 13.82 at 10^-3.
        assert!(chi < 13.82, "χ² = {chi:.2}: {table:?}");
        // DLap(b) has variance 2q/(1 − q)², q = exp(−1/b).
        let q = (-0.25f64).exp();
        let var = 2.0 * q / (1.0 - q).powi(2);
        let got = missing_sq / runs as f64;
        assert!(
            (got - var).abs() < 0.1 * var,
            "variance {got:.2}, expected {var:.2}"
        );
    }

    #[test]
    fn oversized_samples_are_refused() {
        let huge = Scale {
            t: BigUint::from(1u8) << 100,
            s: BigUint::from(1u8),
        };
        let mut c = three(9);
        assert!(noise_shares::<Z64>(&mut c[0], std::slice::from_ref(&huge)).is_err());
        assert!(noise_shares::<Z256>(&mut c[1], &[huge]).is_ok());
    }
}
