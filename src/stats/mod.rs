//! Statistic definitions: what each statistic opens, its MPC program (`program`), and how a
//! consumer turns the opened values into the answer (`answer`). A plaintext reference over
//! the same definitions lives in `reference` for the demo and the tests.

pub mod answer;
pub mod program;
pub mod reference;

use anyhow::{bail, Result};

/// A statistic the cluster can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    Count,
    Sum,
    Mean,
    Variance,
    Stddev,
}

impl Stat {
    pub const ALL: [Stat; 5] = [
        Stat::Count,
        Stat::Sum,
        Stat::Mean,
        Stat::Variance,
        Stat::Stddev,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Sum => "sum",
            Stat::Mean => "mean",
            Stat::Variance => "variance",
            Stat::Stddev => "stddev",
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

    /// How many ring elements the statistic opens.
    pub fn opened_len(self) -> usize {
        match self {
            Stat::Count => 0,
            _ => 1,
        }
    }
}
