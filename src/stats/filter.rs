//! Public filters (`--where ">= 0.5"`): which contributions a statistic counts.
//!
//! In MPC the parties shuffle the values obliviously, compare each with the public threshold
//! and open the comparison bits. After a uniformly random shuffle the opened bits are a random
//! arrangement of (matching count) ones, so they reveal exactly the number of matching
//! contributions and nothing about which ones match. That count is part of every filtered
//! answer and is checked against `min_cohort`.

use anyhow::{bail, Context, Result};

use crate::config::{Dataset, MAX_SCALED};
use crate::decimal::{self, Excess};
use crate::engine::{share, BitShares, Session, Share, Transport, Z128, Z64};

/// Comparison operator of a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `x op t` holds, in plaintext.
    pub fn holds(self, x: u128, t: u128) -> bool {
        match self {
            Op::Lt => x < t,
            Op::Le => x <= t,
            Op::Gt => x > t,
            Op::Ge => x >= t,
            Op::Eq => x == t,
            Op::Ne => x != t,
        }
    }
}

/// `value op threshold`, the threshold scaled like the dataset's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub op: Op,
    pub threshold: u128,
}

impl Filter {
    /// Parses `">= 0.5"`, `"<10"`, `"== 3"` (operators `<`, `<=`, `>`, `>=`, `==`, `!=`).
    pub fn parse(text: &str, ds: &Dataset) -> Result<Filter> {
        let t = text.trim();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ];
        let Some((sym, op)) = ops.iter().find(|(s, _)| t.starts_with(s)) else {
            bail!("filter {text:?}: expected an operator (<, <=, >, >=, ==, !=) and a value, e.g. \">= 0.5\"");
        };
        let value = t[sym.len()..].trim();
        let threshold = decimal::parse(value, ds.scale, Excess::Reject).with_context(|| {
            format!(
                "filter {text:?}: expected a non-negative decimal with at most {} decimal places",
                ds.scale
            )
        })?;
        if threshold >= MAX_SCALED {
            bail!("filter {text:?}: the value is too large");
        }
        Ok(Filter { op: *op, threshold })
    }

    /// The filter as text in the dataset's units.
    pub fn describe(&self, scale: u32) -> String {
        format!(
            "{} {}",
            self.op.symbol(),
            decimal::format(self.threshold, scale)
        )
    }
}

/// Shares of the bits `x_j op threshold`, for values below 2^62 (compared on 64 bits).
pub async fn matching<T: Transport>(
    s: &mut Session<T>,
    x: &[Share<Z128>],
    f: &Filter,
) -> crate::engine::Result<BitShares> {
    let x64 = share::low64(x);
    let t = Z64(f.threshold as u64);
    let me = s.id();
    Ok(match f.op {
        Op::Lt => s.lt_public(&x64, t, 64).await?,
        Op::Le => s.le_public(&x64, t, 64).await?,
        Op::Gt => s.gt_public(&x64, t, 64).await?,
        Op::Ge => s.ge_public(&x64, t, 64).await?,
        Op::Eq => s.eq_public(&x64, t, 64).await?,
        Op::Ne => s.eq_public(&x64, t, 64).await?.not(me),
    })
}
