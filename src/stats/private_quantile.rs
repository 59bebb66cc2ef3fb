//! A differentially private quantile in MPC: a binary search over the B bits of the value
//! domain, most significant first, on noisy counts that stay secret.
//!
//! The values are decomposed into bits once. For the prefix P chosen so far, every value
//! carries a shared bit e = [x's top bits equal P], and the parties hold arithmetic shares
//! of L = #{x < P·2^(j+1)} and E = Σe. At bit j the candidate is t = (P‖1)·2^j:
//! #{x < t} = L + E − C with C = #{e ∧ x_j} (one AND per value and a B2A sum). Its noisy
//! value, plus DLap(B / ε_r), is compared in MPC with the target rank k: the bit b_j of the
//! answer is [#{x < t} + noise ≤ k], which stays a shared bit. Then L, E and e follow b_j
//! obliviously (two products and one AND per value). After B steps, Σ b_j·2^j is the
//! largest t whose noisy count is at most k: without noise exactly x_(k).
//!
//! Each step releases (to nobody: it is only compared) a count of sensitivity 1 with
//! DLap(B / ε_r); B adaptive steps compose to ε_r. Cost: B·n AND gates and B small
//! comparisons; 14 rounds per bit. The parties learn nothing, not even the answer.

use crate::engine::{BitShares, Result, Session, Share, Transport, Z128, Z64};
use crate::privacy::noise::noise_shares;
use crate::privacy::Scale;

/// Every one of `len` bits equal to the single shared bit `b`.
fn broadcast(b: &BitShares, len: usize) -> BitShares {
    let fill = |w: &[u64]| {
        let mut v = vec![if w[0] & 1 == 1 { u64::MAX } else { 0 }; len.div_ceil(64)];
        if let Some(last) = v.last_mut() {
            if !len.is_multiple_of(64) {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        v
    };
    BitShares {
        a: fill(&b.a),
        b: fill(&b.b),
        len,
    }
}

/// Shares of the largest t < 2^bits whose count #{x < t} plus fresh noise at `step` is at
/// most `rank`, for values x below 2^bits.
pub async fn search<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    rank: u64,
    bits: u32,
    step: &Scale,
) -> Result<Share<Z128>> {
    let me = s.id();
    let n = x.len();
    let planes = s.a2b(x, bits).await?.planes;
    let ones = vec![u64::MAX; n.div_ceil(64)];
    let mut eq = BitShares::from_public(me, &ones, n)?;
    let mut less = Share::<Z64>::default();
    let mut equal = Share::<Z64>::default().add_public(me, Z64(n as u64));
    let mut chosen = Vec::with_capacity(bits as usize);
    for j in (0..bits as usize).rev() {
        let z = s.and(&eq, &planes[j]).await?;
        let c = s.b2a_sum::<Z64>(&z).await?;
        let below = less.add(equal).sub(c);
        let noise = noise_shares::<Z64>(s.correlated(), std::slice::from_ref(step))
            .map_err(|e| crate::engine::EngineError::Invalid(format!("{e:#}")))?;
        // take = [below + noise ≤ rank] = [below + noise − rank − 1 < 0].
        let d = below.add(noise[0]).add_public(me, Z64(0) - Z64(rank + 1));
        let take = s.msb(&[d], 64).await?;
        let t = s.b2a::<Z64>(&take).await?[0];
        // L += b·(E − C); E = (E − C) + b·(2C − E).
        let rest = equal.sub(c);
        let p = s
            .mul(&[t, t], &[rest, c.mul_public(Z64(2)).sub(equal)])
            .await?;
        less = less.add(p[0]);
        equal = rest.add(p[1]);
        // e = (e ⊕ z) ⊕ (b ∧ e): z where b = 1, e ∧ ¬x_j where b = 0.
        let te = s.and(&broadcast(&take, n), &eq).await?;
        eq = eq.xor(&z)?.xor(&te)?;
        chosen.push(take);
    }
    let refs: Vec<&BitShares> = chosen.iter().collect();
    let b = s.b2a::<Z128>(&BitShares::concat(&refs)).await?;
    let mut t = Share::<Z128>::default();
    for (i, v) in b.iter().enumerate() {
        t = t.add(v.mul_public(Z128(1u128 << (bits as usize - 1 - i))));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::run3;
    use crate::engine::{reconstruct, split};
    use num_bigint::BigUint;
    use rand::SeedableRng;

    /// Without noise (a scale so small that every draw is 0) the search finds x_(k)
    /// exactly, for every rank.
    #[tokio::test]
    async fn finds_the_exact_order_statistic_without_noise() {
        let values: Vec<u128> = vec![5, 0, 17, 17, 3, 255, 8, 9, 200, 1, 17];
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let shared: Vec<[Share<Z128>; 3]> =
            values.iter().map(|&v| split(Z128(v), &mut rng)).collect();
        let shared = std::sync::Arc::new(shared);
        // DLap(1/10^9): P(x ≠ 0) ≈ 2·e^(−10^9).
        let zero = Scale {
            t: BigUint::from(1u8),
            s: BigUint::from(1_000_000_000u32),
        };
        for k in [0u64, 3, 5, 10] {
            let (sh, z) = (shared.clone(), zero.clone());
            let out = run3(k, move |mut s| {
                let mine: Vec<Share<Z128>> = sh.iter().map(|p| p[s.id()]).collect();
                let z = z.clone();
                async move { search(&mut s, &mine, k, 8, &z).await }
            })
            .await;
            let pairs: [Share<Z128>; 3] = std::array::from_fn(|i| *out[i].as_ref().unwrap());
            assert_eq!(
                reconstruct(&pairs).unwrap().0,
                sorted[k as usize],
                "rank {k}"
            );
        }
    }
}
