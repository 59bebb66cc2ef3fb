//! Lifting shares of small values from Z_2^128 to Z_2^256 (for exact second moments).
//!
//! With x = a_0 + a_1 + a_2 mod 2^128 and x < 2^127, the integer sum a_0 + a_1 + a_2 is
//! x + w·2^128 for a wrap count w ∈ {0, 1, 2}. Party 0 holds a_0 and a_1: it knows
//! w_1 = [a_0 + a_1 ≥ 2^128] and y = a_0 + a_1 mod 2^128. The second wrap
//! c = [y + a_2 ≥ 2^128] equals msb(y) ∨ msb(a_2), because y + a_2 is either x < 2^127 (then
//! both are below 2^127) or 2^128 + x (then one of them is at least 2^127). So
//! w = w_1 + u + v − u·v with u = msb(y) (party 0's input) and v = msb(a_2) (component 2,
//! held by parties 1 and 2): two rounds, one input and one product per value; nothing is
//! opened. The values must be below 2^127; callers guarantee it (dataset values < 2^62).

use super::error::Result;
use super::ring::{Ring, Z128};
use super::session::Session;
use super::share::Share;
use super::transport::Transport;
use super::wide::Z256;

impl<T: Transport> Session<T> {
    /// Z_2^256 shares of the same values as `x` (each below 2^127).
    pub async fn lift(&mut self, x: &[Share<Z128>]) -> Result<Vec<Share<Z256>>> {
        let n = x.len();
        let me = self.id();
        // Party 0's wrap bits: p = w_1 + u and u, for each value.
        let mine: Option<Vec<Z256>> = (me == 0).then(|| {
            x.iter()
                .flat_map(|s| {
                    let (y, w1) = s.a.0.overflowing_add(s.b.0);
                    let u = y >> 127;
                    [Z256::from_u128(u128::from(w1) + u), Z256::from_u128(u)]
                })
                .collect()
        });
        let inputs = self.input::<Z256>(0, mine.as_deref(), 2 * n).await?;
        // [v]: component 2 is msb(a_2), known to its holders (parties 1 and 2).
        let v: Vec<Share<Z256>> = x
            .iter()
            .map(|s| match me {
                1 => Share {
                    a: Z256::zero(),
                    b: Z256::from_u128(s.b.0 >> 127),
                },
                2 => Share {
                    a: Z256::from_u128(s.a.0 >> 127),
                    b: Z256::zero(),
                },
                _ => Share::zero(),
            })
            .collect();
        let u: Vec<Share<Z256>> = inputs.iter().skip(1).step_by(2).copied().collect();
        let uv = self.mul(&u, &v).await?;
        let two128 = Z256::new(0, 1);
        Ok(x.iter()
            .enumerate()
            .map(|(k, s)| {
                let wrap = inputs[2 * k].add(v[k]).sub(uv[k]);
                let a = Share {
                    a: Z256::from_u128(s.a.0),
                    b: Z256::from_u128(s.b.0),
                };
                a.sub(wrap.mul_public(two128))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::local::run3;
    use crate::engine::share::{reconstruct, split};
    use crate::engine::wide::Z256;
    use crate::engine::{Share, Z128};
    use rand::SeedableRng;

    #[tokio::test]
    async fn lifted_shares_open_to_the_same_values_at_every_wrap() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        // Values up to 2^127 − 1, with shares chosen at random (every wrap count occurs).
        let values: Vec<u128> = [0, 1, 7, (1 << 62) - 1, 1 << 100, (1 << 127) - 1]
            .into_iter()
            .cycle()
            .take(300)
            .collect();
        let shared: Vec<[Share<Z128>; 3]> =
            values.iter().map(|&v| split(Z128(v), &mut rng)).collect();
        let wraps: std::collections::HashSet<u32> = shared
            .iter()
            .map(|p| {
                let s = [p[0].a.0, p[1].a.0, p[2].a.0];
                let (t, c1) = s[0].overflowing_add(s[1]);
                let (_, c2) = t.overflowing_add(s[2]);
                u32::from(c1) + u32::from(c2)
            })
            .collect();
        assert_eq!(wraps.len(), 3, "wrap counts 0, 1 and 2 all occur");
        let shared = std::sync::Arc::new(shared);
        let out = run3(9, move |mut s| {
            let mine: Vec<Share<Z128>> = shared.iter().map(|p| p[s.id()]).collect();
            async move {
                let lifted = s.lift(&mine).await?;
                Ok((lifted, s.counters().rounds))
            }
        })
        .await;
        let out: Vec<(Vec<Share<Z256>>, u64)> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(out[0].1, 1 + 2, "seed round plus two");
        for (k, &v) in values.iter().enumerate() {
            let pairs = [out[0].0[k], out[1].0[k], out[2].0[k]];
            assert_eq!(reconstruct(&pairs).unwrap(), Z256::new(v, 0), "value {k}");
        }
    }
}
