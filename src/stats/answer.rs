//! The consumer's side of a statistic: from the opened values to the printed answer, in the
//! dataset's units with its precision (`scale` decimals, rounded half to even). Exact integer
//! arithmetic only.

use anyhow::{bail, Result};

use super::Stat;
use crate::decimal;

/// A statistic's answer as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub stat: Stat,
    pub count: u64,
    /// The answer in the dataset's units, e.g. "12.34500000".
    pub text: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Turns the opened values of `stat` over `count` contributions into the answer.
pub fn finish(
    stat: Stat,
    population: bool,
    count: u64,
    scale: u32,
    opened: &[u128],
) -> Result<Answer> {
    if opened.len() != stat.opened_len() {
        bail!(
            "expected {} opened values for {}, found {}",
            stat.opened_len(),
            stat.name(),
            opened.len()
        );
    }
    let n = u128::from(count);
    let text = match stat {
        Stat::Count => count.to_string(),
        _ if count == 0 => bail!("no contributions"),
        Stat::Sum => decimal::format(opened[0], scale),
        Stat::Mean => decimal::format(decimal::div_round(opened[0], n), scale),
        Stat::Variance | Stat::Stddev => {
            // V = n·Σx² − (Σx)² in (10^-scale units)²; variance = V / (n·d), d = n or n − 1.
            let d = if population {
                n
            } else if n < 2 {
                bail!("the sample variance needs at least 2 contributions")
            } else {
                n - 1
            };
            let den = n * d;
            if stat == Stat::Variance {
                // Printed in units² with `scale` decimals: V / (den · 10^scale).
                decimal::format(divide_scaled(opened[0], den, 10u128.pow(scale)), scale)
            } else {
                decimal::format(decimal::sqrt_ratio_round(opened[0], den), scale)
            }
        }
    };
    Ok(Answer { stat, count, text })
}

/// round(v / (den · p)) without forming den · p when it would overflow.
fn divide_scaled(v: u128, den: u128, p: u128) -> u128 {
    match den.checked_mul(p) {
        Some(dp) => decimal::div_round(v, dp),
        None => decimal::div_round(v / den, p),
    }
}
