//! The MPC programs of statistics under differential privacy: the same secret computations
//! as `program`, with noise drawn inside the MPC (`privacy::noise`) added before anything
//! leaves the parties, and nothing opened to the parties at all (the consumer alone gets
//! the shares). Mechanisms and scales are `privacy::mechanism`'s.
//!
//! * `count`: exact (the number of contributions of an epoch is public).
//! * `sum`, `mean`: Σx + noise.
//! * `variance`, `stddev`: Σx + noise and Σx² + noise, in Z_2^256.
//! * `histogram`: each bucket's count + noise (K + 1 buckets for K edges).
//! * `median`, `quantile`, `percentile`: the noisy binary search of `private_quantile`.

use anyhow::Result;

use super::order::quantile_ranks;
use super::program::{cumulative_counts, halves, widen64};
use super::{private_quantile, Fraction, Query, Stat};
use crate::engine::{share, Session, Share, Transport, Z128, Z256, Z64};
use crate::privacy::noise::noise_shares;
use crate::privacy::Budget;

/// Bits of the value domain [0, 2^B) that holds every value up to `max_scaled`.
pub fn domain_bits(max_scaled: u128) -> u32 {
    (128 - max_scaled.leading_zeros()).max(1)
}

/// The 0-based rank a quantile at `f` targets among n values (the lower of numpy's two).
pub fn target_rank(n: usize, f: Fraction) -> u64 {
    quantile_ranks(n, f).0 as u64
}

/// Shares of the noisy values `q` releases over this party's shares `x`.
pub async fn run<T: Transport>(
    s: &mut Session<T>,
    q: &Query,
    x: &[Share<Z128>],
    budget: &Budget,
) -> Result<Vec<Share<Z128>>> {
    let n = x.len();
    let max = q.max_scaled;
    Ok(match q.stat {
        Stat::Count => Vec::new(),
        Stat::Sum | Stat::Mean => {
            let noise = noise_shares::<Z128>(s.correlated(), &[budget.sum(max)])?;
            s.reshare(&[share::sum(x).add(noise[0])]).await?
        }
        Stat::Variance | Stat::Stddev => {
            let w = s.lift(x).await?;
            let squares = s.dot(&w, &w).await?;
            let noise = noise_shares::<Z256>(s.correlated(), &budget.moments(max))?;
            let out = [share::sum(&w).add(noise[0]), squares.add(noise[1])];
            halves(&s.reshare(&out).await?)
        }
        Stat::Histogram => {
            let me = s.id();
            let cum = cumulative_counts(s, x, &q.edges, domain_bits(q.max_scaled)).await?;
            let k = cum.len();
            let mut buckets = Vec::with_capacity(k + 1);
            buckets.push(cum[0]);
            for i in 1..k {
                buckets.push(cum[i].sub(cum[i - 1]));
            }
            buckets.push(
                Share::default()
                    .add_public(me, Z64(n as u64))
                    .sub(cum[k - 1]),
            );
            let scales = vec![budget.bucket(); k + 1];
            let noise = noise_shares::<Z64>(s.correlated(), &scales)?;
            let noisy: Vec<Share<Z64>> =
                buckets.iter().zip(&noise).map(|(b, e)| b.add(*e)).collect();
            widen64(&s.reshare(&noisy).await?)
        }
        Stat::Median | Stat::Quantile | Stat::Percentile => {
            let f = q.fraction.unwrap_or(Fraction { num: 1, den: 2 });
            let bits = domain_bits(max);
            let step = budget.search_step(bits);
            let t = private_quantile::search(s, x, target_rank(n, f), bits, &step).await?;
            s.reshare(&[t]).await?
        }
        Stat::Min | Stat::Max | Stat::Gini | Stat::Lorenz => {
            anyhow::bail!(
                "{} is not released under differential privacy",
                q.stat.name()
            )
        }
    })
}
