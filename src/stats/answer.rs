//! The consumer's side of a statistic: from the opened values to the printed answer, in the
//! dataset's units with its precision (`scale` decimals, rounded half to even). Exact integer
//! arithmetic only.

use anyhow::{bail, Result};

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::ToPrimitive;

use super::program::GINI_UNDEFINED;
use super::{Query, Stat, GINI_DIGITS};
use crate::decimal;
use crate::engine::{reconstruct_checked, Share, Z128, Z256};

/// A statistic's answer as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub stat: Stat,
    /// Contributions the statistic was computed over (after the filter, if any).
    pub count: u64,
    /// The answer in the dataset's units, e.g. "12.34500000".
    pub text: String,
    /// The release epoch it was computed over (0 when computed outside a cluster).
    pub epoch: u64,
    /// Under differential privacy: the dataset's budget after this answer.
    pub spent: Option<Spent>,
    /// The security mode of the parties' session (None when computed outside a cluster).
    pub security: Option<crate::engine::Security>,
}

/// A differentially private dataset's budget as an answer reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spent {
    /// Fresh releases made so far, this one's included, of `releases` in all.
    pub used: u32,
    pub releases: u32,
    /// ε spent and left, as decimals (6 places, rounded down for "left").
    pub epsilon_spent: String,
    pub epsilon_left: String,
}

impl Spent {
    /// The budget of `privacy` after `used` releases.
    pub fn of(privacy: &crate::config::Privacy, used: u32) -> Result<Spent> {
        let total = privacy.epsilon_micro()?;
        let releases = privacy.releases;
        let used_c = used.min(releases);
        // ε·used/releases, rounded up (spent) and the rest (left), in millionths.
        let spent = (total * u128::from(used_c)).div_ceil(u128::from(releases));
        let fmt = |v: u128| decimal::format(v, crate::config::EPSILON_DIGITS);
        Ok(Spent {
            used,
            releases,
            epsilon_spent: fmt(spent),
            epsilon_left: fmt(total - spent.min(total)),
        })
    }
}

impl Answer {
    /// A histogram's buckets or a Lorenz curve's points as (label, value) pairs, e.g.
    /// ("[1.00, 10.00)", "12") or ("1/4", "0.100000"); empty for single-valued statistics.
    pub fn parts(&self) -> Vec<(String, String)> {
        if !matches!(self.stat, Stat::Histogram | Stat::Lorenz)
            || self.text.starts_with("undefined")
        {
            return Vec::new();
        }
        self.text
            .split(" · ")
            .filter_map(|p| p.rsplit_once(": "))
            .map(|(l, v)| (l.to_string(), v.to_string()))
            .collect()
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Turns the opened values of `q` over `count` contributions into the answer.
pub fn finish(q: &Query, count: u64, opened: &[u128]) -> Result<Answer> {
    if opened.len() != q.opened_len() {
        bail!(
            "expected {} opened values for {}, found {}",
            q.opened_len(),
            q.stat.name(),
            opened.len()
        );
    }
    if count < q.min_count() {
        bail!(
            "{} needs at least {} contributions",
            q.stat.name(),
            q.min_count()
        );
    }
    if q.privacy.is_some() {
        return Ok(Answer {
            stat: q.stat,
            count,
            text: super::private_answer::finish(q, count, opened)?,
            epoch: 0,
            spent: None,
            security: None,
        });
    }
    let scale = q.scale;
    let n = u128::from(count);
    let fmt = |v: u128| decimal::format(v, scale);
    let text = match q.stat {
        Stat::Count => count.to_string(),
        Stat::Sum | Stat::Min | Stat::Max => fmt(opened[0]),
        Stat::Mean => fmt(decimal::div_round(opened[0], n)),
        Stat::Median if count % 2 == 1 => fmt(opened[0]),
        Stat::Median => fmt(decimal::div_round(opened[0], 2)),
        Stat::Quantile | Stat::Percentile => fmt(decimal::div_round(
            opened[0],
            q.fraction.expect("validated").den,
        )),
        Stat::Variance | Stat::Stddev => {
            // V = n·Σx² − (Σx)² in (10^-scale units)², opened as two 128-bit halves;
            // variance = V / (n·d), d = n or n − 1.
            let v = BigUint::from(opened[0]) + (BigUint::from(opened[1]) << 128);
            let d = if q.population { n } else { n - 1 };
            let den = BigUint::from(n) * BigUint::from(d);
            let r = if q.stat == Stat::Variance {
                div_round_big(&v, &(den * BigUint::from(10u128.pow(scale))))
            } else {
                sqrt_ratio_round_big(&v, &den)
            };
            match r.to_u128() {
                Some(r) => fmt(r),
                None => bail!("result rejected: a {} beyond 2^128", q.stat.name()),
            }
        }
        Stat::Gini if opened[0] == GINI_UNDEFINED => "undefined (every value is 0)".to_string(),
        Stat::Gini => {
            // Rounded half to even, so 0.9999995 and above print as 1.000000.
            if opened[0] > 10u128.pow(GINI_DIGITS) {
                bail!(
                    "result rejected: a Gini coefficient of {} is out of range",
                    opened[0]
                );
            }
            decimal::format(opened[0], GINI_DIGITS)
        }
        Stat::Histogram => histogram_text(q, count, opened)?,
        Stat::Lorenz => lorenz_text(q, opened)?,
    };
    Ok(Answer {
        stat: q.stat,
        count,
        text,
        epoch: 0,
        spent: None,
        security: None,
    })
}

/// "1/4: 0.100000 · 2/4: 0.300000 · 3/4: 0.600000 · 4/4: 1.000000".
fn lorenz_text(q: &Query, opened: &[u128]) -> Result<String> {
    let k = q.points.expect("validated");
    if opened.iter().all(|&v| v == GINI_UNDEFINED) {
        return Ok("undefined (every value is 0)".to_string());
    }
    let one = 10u128.pow(GINI_DIGITS);
    if opened.iter().any(|&v| v > one) || opened.windows(2).any(|w| w[0] > w[1]) {
        bail!("result rejected: the Lorenz curve is not a non-decreasing share");
    }
    let mut parts: Vec<String> = opened
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{}/{k}: {}", i + 1, decimal::format(v, GINI_DIGITS)))
        .collect();
    parts.push(format!("{k}/{k}: {}", decimal::format(one, GINI_DIGITS)));
    Ok(parts.join(" · "))
}

fn histogram_text(q: &Query, count: u64, opened: &[u128]) -> Result<String> {
    // Cumulative counts #{x < e_k}, shared in Z_2^64.
    let cum: Vec<u64> = opened.iter().map(|&c| c as u64).collect();
    if cum.windows(2).any(|w| w[0] > w[1]) || cum.last().is_some_and(|&c| c > count) {
        bail!("result rejected: the histogram counts are inconsistent");
    }
    let e = |k: usize| decimal::format(q.edges[k], q.scale);
    let k = q.edges.len();
    let mut parts = vec![format!("< {}: {}", e(0), cum[0])];
    for i in 0..k - 1 {
        parts.push(format!("[{}, {}): {}", e(i), e(i + 1), cum[i + 1] - cum[i]));
    }
    parts.push(format!(">= {}: {}", e(k - 1), count - cum[k - 1]));
    Ok(parts.join(" · "))
}

/// num / den rounded to the nearest integer, ties to even.
pub(super) fn div_round_big(num: &BigUint, den: &BigUint) -> BigUint {
    let (q, r) = num.div_rem(den);
    let twice = &r << 1;
    if twice > *den || (twice == *den && q.is_odd()) {
        q + 1u8
    } else {
        q
    }
}

/// sqrt(num / den) rounded to the nearest integer (up when exactly halfway, as
/// `decimal::sqrt_ratio_round`).
pub(super) fn sqrt_ratio_round_big(num: &BigUint, den: &BigUint) -> BigUint {
    let s = (num / den).sqrt();
    // Round up iff num/den ≥ (s + 1/2)², i.e. 4·num ≥ den·(2s + 1)².
    let t: BigUint = (&s << 1) + 1u8;
    if (num << 2) >= den * &t * &t {
        s + 1u8
    } else {
        s
    }
}

/// The values a statistic opened, from the three parties' result pairs: each component
/// must arrive identically from both of its holders. Z_2^256 values (see [`Query::wide`])
/// arrive as low and high halves and are recombined per component before adding.
pub fn open_results(q: &Query, parties: [&[(u128, u128)]; 3]) -> Result<Vec<u128>> {
    let len = q.opened_len();
    for (i, p) in parties.iter().enumerate() {
        if p.len() != len {
            bail!(
                "party {i} sent {} result pairs, expected {len}; it is faulty",
                p.len()
            );
        }
    }
    let rejected = |e| anyhow::anyhow!("result rejected: {e}");
    let mut out = Vec::with_capacity(len);
    if q.wide() {
        for k in (0..len).step_by(2) {
            let pairs: [Share<Z256>; 3] = std::array::from_fn(|i| Share {
                a: Z256::new(parties[i][k].0, parties[i][k + 1].0),
                b: Z256::new(parties[i][k].1, parties[i][k + 1].1),
            });
            let v = reconstruct_checked(&pairs).map_err(rejected)?;
            out.extend([v.lo, v.hi]);
        }
    } else {
        for (k, first) in parties[0].iter().enumerate() {
            let pairs: [Share<Z128>; 3] = std::array::from_fn(|i| {
                let (a, b) = if i == 0 { *first } else { parties[i][k] };
                Share {
                    a: Z128(a),
                    b: Z128(b),
                }
            });
            out.push(reconstruct_checked(&pairs).map_err(rejected)?.0);
        }
    }
    Ok(out)
}
