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
//!
//! In a malicious session party 0's input cannot be trusted, so the wrap count is computed
//! in MPC instead (`Session::wrap_bits`): a carry-save layer over the three components
//! (each a boolean number its two holders place without communication) and a carry tree
//! give the two bits t, c with a_0 + a_1 + a_2 = x + 2^128·(t + c), through proven ANDs.
//! B2A (proven products) brings both bits to Z_2^256, and the widened components minus
//! 2^128·(t + c) are the lift. This holds for every x < 2^128. Cost: the ANDs of a 128-bit
//! comparison and 2n B2A products per batch; nothing is opened.

use super::binary::BitShares;
use super::error::Result;
use super::ring::{Ring, Z128};
use super::session::Session;
use super::share::Share;
use super::transport::Transport;
use super::wide::Z256;

impl<T: Transport> Session<T> {
    /// Z_2^256 shares of the same values as `x` (each below 2^127).
    pub async fn lift(&mut self, x: &[Share<Z128>]) -> Result<Vec<Share<Z256>>> {
        if self.malicious() {
            return self.lift_in_mpc(x).await;
        }
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

impl<T: Transport> Session<T> {
    /// The malicious-mode lift (module doc): the wrap count from a proven msb and B2A.
    async fn lift_in_mpc(&mut self, x: &[Share<Z128>]) -> Result<Vec<Share<Z256>>> {
        let n = x.len();
        let wide: Vec<Share<Z256>> = x
            .iter()
            .map(|s| Share {
                a: Z256::from_u128(s.a.0),
                b: Z256::from_u128(s.b.0),
            })
            .collect();
        let (t, c) = self.wrap_bits(x).await?;
        let bits: Vec<Share<Z256>> = self.b2a(&BitShares::concat(&[&t, &c])).await?;
        let two128 = Z256::new(0, 1);
        Ok(wide
            .iter()
            .enumerate()
            .map(|(k, s)| s.sub(bits[k].add(bits[n + k]).mul_public(two128)))
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

    /// The malicious-mode lift at every wrap count and at the top of the range (any
    /// x < 2^128), with every gate proven.
    #[tokio::test]
    async fn the_lift_in_mpc_is_exact_for_every_value() {
        use crate::engine::local::{local_transports, run3_secure};
        use crate::engine::verify::Security;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let values: Vec<u128> = [0, 1, (1 << 127) - 1, 1 << 127, u128::MAX, 1 << 64]
            .into_iter()
            .cycle()
            .take(90)
            .collect();
        let shared: Vec<[Share<Z128>; 3]> =
            values.iter().map(|&v| split(Z128(v), &mut rng)).collect();
        let shared = std::sync::Arc::new(shared);
        let out = run3_secure(9, Security::Malicious, local_transports(), move |mut s| {
            let mine: Vec<Share<Z128>> = shared.iter().map(|p| p[s.id()]).collect();
            async move {
                let lifted = s.lift(&mine).await?;
                s.verify().await?;
                Ok((lifted, s.proven()))
            }
        })
        .await;
        let out: Vec<_> = out.into_iter().map(|r| r.unwrap()).collect();
        assert!(out[0].1.product_gates >= 2 * values.len() as u64);
        for (k, &v) in values.iter().enumerate() {
            let pairs = [out[0].0[k], out[1].0[k], out[2].0[k]];
            assert_eq!(reconstruct(&pairs).unwrap(), Z256::new(v, 0), "value {k}");
        }
    }
}
