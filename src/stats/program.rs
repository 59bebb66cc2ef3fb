//! The MPC programs of the statistics: from the stored shares of a dataset to the shares of
//! exactly the values the statistic opens, nothing more.
//!
//! * `sum`, `mean`: Σx (the count n is public, so the mean n⁻¹Σx implies Σx and nothing else).
//! * `variance`, `stddev`: V = n·Σx² − (Σx)², computed as one resharing of local cross terms
//!   (one round, one ring element per party). V = n²·(population variance) = n(n−1)·(sample
//!   variance), so V carries exactly the information of the variance. In Z_2^128 the
//!   intermediate terms may wrap; V itself is exact while n·max < 2^64 (README, limits).
//! * `count`: opens nothing; n is the number of contributions in the query's snapshot.
//!
//! Results are reshared (fresh components) before they leave a party.

use super::Stat;
use crate::engine::arith::local_cross;
use crate::engine::{share, Result, Session, Share, Transport, Z128};

/// Runs the program of `stat` over `values`; returns this party's shares of the opened values,
/// freshly reshared.
pub async fn run<T: Transport>(
    session: &mut Session<T>,
    stat: Stat,
    values: &[Share<Z128>],
) -> Result<Vec<Share<Z128>>> {
    let n = Z128(values.len() as u128);
    let out = match stat {
        Stat::Count => return Ok(Vec::new()),
        Stat::Sum | Stat::Mean => vec![share::sum(values)],
        Stat::Variance | Stat::Stddev => {
            let s = share::sum(values);
            let mut t = Z128(0);
            for x in values {
                t += local_cross(x, x);
            }
            let v = n * t - local_cross(&s, &s);
            return session.reshare_products(vec![v]).await;
        }
    };
    session.reshare(&out).await
}
