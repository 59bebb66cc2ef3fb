//! Each differentially private statistic's mechanism: sensitivity under the change of one
//! contributor's value, the part of a release's ε it gets, and the resulting discrete
//! Laplace scale. Public parameters only.
//!
//! With ε_r = ε / releases per fresh release:
//! * `sum`, `mean`: Σx + DLap(max / ε_r) (one value changes Σx by at most max);
//! * `variance`, `stddev`: Σx + DLap(2·max / ε_r) and Σx² + DLap(2·max² / ε_r), each half
//!   of ε_r; the consumer forms n·Σx² − (Σx)² from the noisy sums;
//! * `histogram`: every bucket count + DLap(2 / ε_r) (one value moves one unit between two
//!   buckets: L1 sensitivity 2);
//! * `median`, `quantile`, `percentile`: a binary search over the B bits of the value
//!   domain, each step comparing a count #{x < t} + DLap(B / ε_r) (sensitivity 1) with the
//!   target rank: B adaptive steps of ε_r / B each;
//! * `count` is exact and free: the number of contributions of an epoch is public.

use num_bigint::BigUint;

use crate::config::{Privacy, EPSILON_DIGITS};

/// The scale t/s of a discrete Laplace distribution DLap(t/s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    pub t: BigUint,
    pub s: BigUint,
}

/// A dataset's budget as a query sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Lifetime ε × 10^6.
    pub epsilon_micro: u128,
    /// Fresh releases it is split over.
    pub releases: u32,
}

impl Budget {
    pub fn of(p: &Privacy) -> anyhow::Result<Budget> {
        Ok(Budget {
            epsilon_micro: p.epsilon_micro()?,
            releases: p.releases,
        })
    }

    /// The scale for sensitivity `delta` with ε_r / `parts` (ε_r = ε / releases): the noise
    /// scale is Δ / (ε / (releases · parts)).
    pub fn scale(&self, delta: u128, parts: u32) -> Scale {
        Scale {
            t: BigUint::from(delta)
                * BigUint::from(self.releases)
                * BigUint::from(parts)
                * BigUint::from(10u32.pow(EPSILON_DIGITS)),
            s: BigUint::from(self.epsilon_micro),
        }
    }

    /// Noise of a noisy sum (sensitivity max).
    pub fn sum(&self, max: u128) -> Scale {
        self.scale(max, 1)
    }

    /// Noise of Σx and Σx² for variance (half the release each).
    pub fn moments(&self, max: u128) -> [Scale; 2] {
        let mut sq = self.scale(max, 2);
        sq.t *= BigUint::from(max);
        [self.scale(max, 2), sq]
    }

    /// Noise of each histogram bucket.
    pub fn bucket(&self) -> Scale {
        self.scale(2, 1)
    }

    /// Noise of each of the `steps` counts of a quantile's binary search.
    pub fn search_step(&self, steps: u32) -> Scale {
        self.scale(1, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_sensitivity_over_epsilon_per_part() {
        // ε = 0.5 over 10 releases: ε_r = 0.05, so a sum with max 7 gets scale 140.
        let b = Budget {
            epsilon_micro: 500_000,
            releases: 10,
        };
        let s = b.sum(7);
        assert_eq!(&s.t / &s.s, BigUint::from(140u32));
        assert_eq!(&s.t % &s.s, BigUint::from(0u32));
        let [m1, m2] = b.moments(7);
        assert_eq!(&m1.t / &m1.s, BigUint::from(280u32));
        assert_eq!(&m2.t / &m2.s, BigUint::from(280u32 * 7));
        let h = b.bucket();
        assert_eq!(&h.t / &h.s, BigUint::from(40u32));
        let q = b.search_step(40);
        assert_eq!(&q.t / &q.s, BigUint::from(800u32));
    }
}
