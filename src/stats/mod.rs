//! Statistic definitions: a consumer's [`QuerySpec`] is validated into a [`Query`] against the
//! dataset; `program` is its MPC program (what the parties compute and open to the consumer),
//! `answer` the consumer's last step, `reference` a plaintext computation for checks.
//! Under differential privacy, `private` (with `private_quantile`) is the program and
//! `private_answer` the consumer's last step.

pub mod answer;
mod division;
mod filter;
mod order;
mod private;
mod private_answer;
mod private_quantile;
pub mod program;
pub mod reference;

use anyhow::{bail, Context, Result};

use crate::config::{Dataset, MAX_SCALED};
use crate::decimal::{self, Excess};
use crate::privacy::Budget;
use crate::wire::QuerySpec;

pub use filter::{Filter, Op};

/// Decimal places of a Gini coefficient (truncated).
pub const GINI_DIGITS: u32 = 6;
/// Most decimal places a quantile q may have (12, or 10 for a percentile).
pub const QUANTILE_DIGITS: u32 = 12;
/// Most histogram edges.
pub const MAX_EDGES: usize = 64;
/// Most points of a Lorenz curve.
pub const MAX_LORENZ_POINTS: u32 = 100;

/// A statistic the cluster can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    Count,
    Sum,
    Mean,
    Variance,
    Stddev,
    Min,
    Max,
    Median,
    Quantile,
    Percentile,
    Gini,
    Histogram,
    Lorenz,
}

impl Stat {
    pub const ALL: [Stat; 13] = [
        Stat::Count,
        Stat::Sum,
        Stat::Mean,
        Stat::Variance,
        Stat::Stddev,
        Stat::Min,
        Stat::Max,
        Stat::Median,
        Stat::Quantile,
        Stat::Percentile,
        Stat::Gini,
        Stat::Histogram,
        Stat::Lorenz,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Mean => "mean",
            Stat::Variance => "variance",
            Stat::Stddev => "stddev",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Median => "median",
            Stat::Quantile => "quantile",
            Stat::Percentile => "percentile",
            Stat::Gini => "gini",
            Stat::Histogram => "histogram",
            Stat::Lorenz => "lorenz",
        }
    }

    /// Parses a statistic name, with an error that lists the supported ones.
    pub fn parse(name: &str) -> Result<Stat> {
        match Stat::ALL.iter().find(|s| s.name() == name) {
            Some(s) => Ok(*s),
            None => {
                let known: Vec<&str> = Stat::ALL.iter().map(|s| s.name()).collect();
                bail!(
                    "unknown statistic {name:?}; supported: {}",
                    known.join(", ")
                )
            }
        }
    }
}

/// A quantile as an exact fraction num/den of the way from the smallest to the largest value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    pub num: u128,
    pub den: u128,
}

/// A validated query: everything the parties and the consumer need, in scaled integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub stat: Stat,
    pub population: bool,
    /// For `quantile` and `percentile`.
    pub fraction: Option<Fraction>,
    /// For `lorenz`: the number K of points (the lowest 1/K, 2/K, … of contributions).
    pub points: Option<u32>,
    /// For `histogram`: increasing edges, scaled.
    pub edges: Vec<u128>,
    pub filter: Option<Filter>,
    /// The dataset's decimal places.
    pub scale: u32,
    /// The dataset's maximum × 10^scale.
    pub max_scaled: u128,
    /// The dataset's differential-privacy budget: the statistic is released with noise.
    pub privacy: Option<Budget>,
}

impl Query {
    /// Validates a consumer's request against the dataset it names.
    pub fn new(spec: &QuerySpec, ds: &Dataset) -> Result<Query> {
        let stat = Stat::parse(&spec.stat)?;
        let fraction = match stat {
            Stat::Quantile | Stat::Percentile => {
                let text = spec.param.as_deref().with_context(|| {
                    format!(
                        "{} needs {}",
                        stat.name(),
                        if stat == Stat::Quantile { "--q" } else { "--p" }
                    )
                })?;
                Some(parse_fraction(stat, text)?)
            }
            _ if spec.param.is_some() && stat != Stat::Lorenz => {
                bail!("{} takes no --q or --p", stat.name())
            }
            _ => None,
        };
        let points = match stat {
            Stat::Lorenz => {
                let text = spec
                    .param
                    .as_deref()
                    .context("lorenz needs --points K, e.g. --points 10")?;
                let k: u32 = text.trim().parse().ok().filter(|k| (2..=MAX_LORENZ_POINTS).contains(k)).with_context(|| {
                    format!("lorenz --points {text:?}: expected a whole number from 2 to {MAX_LORENZ_POINTS}")
                })?;
                Some(k)
            }
            _ => None,
        };
        let edges = if stat == Stat::Histogram {
            parse_edges(&spec.edges, ds)?
        } else if !spec.edges.is_empty() {
            bail!("only histogram takes --edges");
        } else {
            Vec::new()
        };
        let filter = match &spec.filter {
            Some(text) => Some(Filter::parse(text, ds)?),
            None => None,
        };
        if spec.population && !matches!(stat, Stat::Variance | Stat::Stddev) {
            bail!("--population applies to variance and stddev only");
        }
        let privacy = match &ds.privacy {
            Some(p) => {
                refuse_under_privacy(stat, filter.is_some(), &ds.name)?;
                Some(Budget::of(p)?)
            }
            None => None,
        };
        Ok(Query {
            stat,
            population: spec.population,
            fraction,
            points,
            edges,
            filter,
            scale: ds.scale,
            max_scaled: ds.max_scaled()?,
            privacy,
        })
    }

    /// How many values the statistic opens to the consumer, counting a Z_2^256 value (see
    /// [`Query::wide`]) as two.
    pub fn opened_len(&self) -> usize {
        match self.stat {
            Stat::Count => 0,
            // Under differential privacy: the noisy count of every bucket.
            Stat::Histogram if self.privacy.is_some() => self.edges.len() + 1,
            Stat::Histogram => self.edges.len(),
            // V, or under differential privacy the noisy Σx and Σx², in Z_2^256.
            Stat::Variance | Stat::Stddev if self.privacy.is_some() => 4,
            Stat::Variance | Stat::Stddev => 2,
            // The cumulative shares at 1/K … (K − 1)/K (the last point is 1).
            Stat::Lorenz => self.points.unwrap_or(2) as usize - 1,
            _ => 1,
        }
    }

    /// Whether the opened values are Z_2^256 values, each sent as its low and high halves.
    pub fn wide(&self) -> bool {
        matches!(self.stat, Stat::Variance | Stat::Stddev)
    }

    /// Checks that the statistic is defined over `n` contributions: at least
    /// [`Query::min_count`]. Checked by the coordinator and by every party over the
    /// contributions it actually computes over. (Every statistic is exact for every n a
    /// dataset can reach: sums in Z_2^128, second moments in Z_2^256.)
    pub fn check_count(&self, n: u64) -> Result<()> {
        if n < self.min_count() {
            bail!(
                "{} needs at least {} contributions",
                self.stat.name(),
                self.min_count()
            );
        }
        Ok(())
    }

    /// Whether the query can single out values when asked adaptively: a filter, a histogram,
    /// a quantile or a percentile (their thresholds and ranks are the consumer's choice).
    /// Without differential privacy the parties cap these per epoch.
    pub fn is_probing(&self) -> bool {
        self.filter.is_some()
            || matches!(
                self.stat,
                Stat::Histogram | Stat::Quantile | Stat::Percentile | Stat::Lorenz
            )
    }

    /// A hash of what the query computes, the same for every spelling of it ("0.5" and
    /// "0.50", "p 50" and "q 0.5" stay distinct only where they compute differently).
    pub fn key(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"mpcstats/query/v1");
        // A percentile is the quantile of the same rank (both open the same value).
        let stat = match self.stat {
            Stat::Percentile => Stat::Quantile,
            s => s,
        };
        h.update(stat.name().as_bytes());
        h.update([u8::from(self.population), u8::from(self.privacy.is_some())]);
        match self.fraction {
            Some(f) => {
                // Reduced, so quantile 0.5 and percentile 50 (the same rank) agree.
                let g = gcd(f.num, f.den);
                h.update([1]);
                h.update((f.num / g).to_le_bytes());
                h.update((f.den / g).to_le_bytes());
            }
            None => h.update([0]),
        }
        h.update(self.points.unwrap_or(0).to_le_bytes());
        h.update((self.edges.len() as u64).to_le_bytes());
        for e in &self.edges {
            h.update(e.to_le_bytes());
        }
        match &self.filter {
            Some(f) => {
                h.update([1]);
                h.update(f.op.symbol().as_bytes());
                h.update(f.threshold.to_le_bytes());
            }
            None => h.update([0]),
        }
        h.finalize().into()
    }

    /// The fewest contributions the statistic is defined over (before `min_cohort`).
    pub fn min_count(&self) -> u64 {
        match self.stat {
            Stat::Variance | Stat::Stddev if !self.population => 2,
            _ => 1,
        }
    }
}

/// What differential privacy cannot release, and why.
fn refuse_under_privacy(stat: Stat, filtered: bool, dataset: &str) -> Result<()> {
    match stat {
        Stat::Min | Stat::Max => bail!(
            "{} is not released for dataset {dataset}, which is differentially private: the \
             smallest or largest value is one contributor's exact value; ask for a quantile \
             near 0 or 1 instead (e.g. quantile --q 0.99)",
            stat.name()
        ),
        Stat::Gini | Stat::Lorenz => bail!(
            "{} is not released for dataset {dataset}, which is differentially private: \
             one contributor can move it by up to 1 when the others hold little, so no \
             useful noise scale bounds it; ask for quantiles or a histogram instead",
            stat.name()
        ),
        _ if filtered => bail!(
            "--where is not available for dataset {dataset}, which is differentially \
             private: a filter opens the exact number of matching contributions; ask for a \
             histogram (noisy counts per bucket) instead"
        ),
        _ => Ok(()),
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

fn parse_fraction(stat: Stat, text: &str) -> Result<Fraction> {
    let (digits, whole) = match stat {
        Stat::Quantile => (QUANTILE_DIGITS, 1u128),
        _ => (QUANTILE_DIGITS - 2, 100u128),
    };
    let num = decimal::parse(text, digits, Excess::Reject).with_context(|| {
        format!(
            "{} {text:?}: expected a decimal between 0 and {whole} with at most {digits} decimal places",
            stat.name()
        )
    })?;
    let den = 10u128.pow(digits) * whole;
    if num > den {
        bail!("{} {text} is above {whole}", stat.name());
    }
    Ok(Fraction { num, den })
}

fn parse_edges(edges: &[String], ds: &Dataset) -> Result<Vec<u128>> {
    if edges.is_empty() {
        bail!("histogram needs --edges, e.g. --edges 0,1,10,100");
    }
    if edges.len() > MAX_EDGES {
        bail!(
            "histogram takes at most {MAX_EDGES} edges, got {}",
            edges.len()
        );
    }
    let mut out: Vec<u128> = Vec::new();
    for e in edges {
        let v = decimal::parse(e.trim(), ds.scale, Excess::Reject).with_context(|| {
            format!(
                "histogram edge {e:?}: expected a non-negative decimal with at most {} decimal places",
                ds.scale
            )
        })?;
        if v >= MAX_SCALED {
            bail!("histogram edge {e} is too large");
        }
        if out.last().is_some_and(|&last| v <= last) {
            bail!("histogram edges must increase strictly; {e} does not");
        }
        out.push(v);
    }
    Ok(out)
}

/// ℓ = ⌈log2 n⌉ (at least 1): the bits of an index among n values.
pub fn index_bits(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// (ℓ, bits) for comparison keys value · 2^ℓ + index over n values below 2^value_bits:
/// the keys stay below 2^(value_bits + ℓ), so a difference of two keys and its sign fit
/// in value_bits + ℓ + 1 bits. Stored values lie in [0, max] (the parties' range check
/// at intake), so value_bits is that of the dataset's maximum, at most 62.
pub fn key_bits(n: usize, value_bits: u32) -> (u32, u32) {
    let l = index_bits(n);
    (l, value_bits + l + 1)
}
