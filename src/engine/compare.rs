//! Comparisons of arithmetic shares, as methods of [`Session`], all vectorised: the whole
//! vector costs log2(bits) + O(1) rounds.
//!
//! Semantics: `lt(x, y, bits)` is the most significant bit of (x − y) mod 2^bits, which is
//! `[x < y]` whenever x, y ∈ [0, 2^(bits−1)) (more generally whenever x − y fits in a signed
//! `bits`-bit integer). The public variants assume the same of the constant. Equality is a
//! zero test of (x − y) mod 2^bits, exact for any x, y ∈ [0, 2^bits).
//!
//! Costs per element and party, k = bits: LT / LTZ is [`super::convert::msb_rounds`]`(k)`
//! rounds (8 for k = 64) and [`super::convert::msb_and_gates`]`(k)` ANDs (150 for k = 64)
//! of one bit each plus k/3 input bits (≈ 25 bytes for k = 64); EQ is 1 + ⌈log2 k⌉ rounds
//! and k − 1 ANDs plus k/3 input bits (≈ 11 bytes for k = 64). The results are boolean
//! shares; see `convert` for B2A and bit injection.

use super::binary::{unpack, BitShares};
use super::convert::check_bits;
use super::error::{EngineError, Result};
use super::ring::Ring;
use super::session::Session;
use super::share::{sub_vec, Share};
use super::transport::Transport;

/// Rounds of [`Session::eq`] on `bits` bits: the input round and ⌈log2 bits⌉ AND levels.
pub fn eq_rounds(bits: u32) -> u64 {
    1 + u64::from(bits.max(1).next_power_of_two().trailing_zeros())
}

impl<T: Transport> Session<T> {
    /// `[x < y]` for x, y ∈ [0, 2^(bits−1)): msb of (x − y) mod 2^bits.
    pub async fn lt<R: Ring>(
        &mut self,
        x: &[Share<R>],
        y: &[Share<R>],
        bits: u32,
    ) -> Result<BitShares> {
        let d = sub_vec(x, y)?;
        self.msb(&d, bits).await
    }

    /// `[x < c]` for a public c.
    pub async fn lt_public<R: Ring>(
        &mut self,
        x: &[Share<R>],
        c: R,
        bits: u32,
    ) -> Result<BitShares> {
        let me = self.id();
        let d: Vec<Share<R>> = x.iter().map(|s| s.add_public(me, -c)).collect();
        self.msb(&d, bits).await
    }

    /// `[x > c]` for a public c: msb of c − x.
    pub async fn gt_public<R: Ring>(
        &mut self,
        x: &[Share<R>],
        c: R,
        bits: u32,
    ) -> Result<BitShares> {
        let me = self.id();
        let d: Vec<Share<R>> = x.iter().map(|s| s.neg().add_public(me, c)).collect();
        self.msb(&d, bits).await
    }

    /// [x ≥ c] for a public c: the complement of [`Session::lt_public`].
    pub async fn ge_public<R: Ring>(
        &mut self,
        x: &[Share<R>],
        c: R,
        bits: u32,
    ) -> Result<BitShares> {
        let me = self.id();
        Ok(self.lt_public(x, c, bits).await?.not(me))
    }

    /// [x ≤ c] for a public c: the complement of [`Session::gt_public`].
    pub async fn le_public<R: Ring>(
        &mut self,
        x: &[Share<R>],
        c: R,
        bits: u32,
    ) -> Result<BitShares> {
        let me = self.id();
        Ok(self.gt_public(x, c, bits).await?.not(me))
    }

    /// `[x < 0]` for x a two's-complement number on `bits` bits: its msb.
    pub async fn ltz<R: Ring>(&mut self, x: &[Share<R>], bits: u32) -> Result<BitShares> {
        self.msb(x, bits).await
    }

    /// [x ≡ 0 mod 2^bits]. With V − W ≡ x from the two-summand split, x ≡ 0 exactly when
    /// V = W bit for bit, so the result is the AND of ¬(V_j ⊕ W_j) over all j: one input
    /// round, then an AND tree of ⌈log2 bits⌉ levels and bits − 1 ANDs.
    pub async fn is_zero<R: Ring>(&mut self, x: &[Share<R>], bits: u32) -> Result<BitShares> {
        check_bits::<R>("is_zero", bits)?;
        let me = self.id();
        let (v, w) = self.two_summands(x, bits, true).await?;
        let mut level: Vec<BitShares> = v
            .iter()
            .zip(&w)
            .map(|(a, b)| a.xor_same(b).not(me))
            .collect();
        while level.len() > 1 {
            let pairs: Vec<(&BitShares, &BitShares)> =
                level.chunks_exact(2).map(|p| (&p[0], &p[1])).collect();
            let mut next = self.and_many(&pairs).await?;
            if level.len() % 2 == 1 {
                next.push(level.pop().expect("odd length"));
            }
            level = next;
        }
        level
            .pop()
            .ok_or_else(|| EngineError::Invalid("is_zero: no planes".into()))
    }

    /// [x = y] (mod 2^bits).
    pub async fn eq<R: Ring>(
        &mut self,
        x: &[Share<R>],
        y: &[Share<R>],
        bits: u32,
    ) -> Result<BitShares> {
        let d = sub_vec(x, y)?;
        self.is_zero(&d, bits).await
    }

    /// [x = c] (mod 2^bits) for a public c.
    pub async fn eq_public<R: Ring>(
        &mut self,
        x: &[Share<R>],
        c: R,
        bits: u32,
    ) -> Result<BitShares> {
        let me = self.id();
        let d: Vec<Share<R>> = x.iter().map(|s| s.add_public(me, -c)).collect();
        self.is_zero(&d, bits).await
    }

    /// `[x < y]` as in [`Session::lt`], opened to all three parties: one more round and
    /// ⌈n/8⌉ bytes per party.
    pub async fn lt_open<R: Ring>(
        &mut self,
        x: &[Share<R>],
        y: &[Share<R>],
        bits: u32,
    ) -> Result<Vec<bool>> {
        let b = self.lt(x, y, bits).await?;
        let words = self.open_bits(&b).await?;
        Ok(unpack(&words, b.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::binary::tests::recon_bits;
    use crate::engine::convert::tests::share_all;
    use crate::engine::convert::{msb_and_gates, msb_rounds};
    use crate::engine::local::run3;
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::session::Counters;
    use crate::engine::transport::FRAME_HEADER;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::sync::Arc;

    fn ok<O>(r: [Result<O>; 3]) -> [O; 3] {
        r.map(|x| x.unwrap())
    }

    fn col(out: &[Vec<BitShares>; 3], k: usize) -> Vec<bool> {
        recon_bits(&[out[0][k].clone(), out[1][k].clone(), out[2][k].clone()])
    }

    /// Pairs in [0, 2^(bits−1)) with the edges: 0, the maximum, equal and adjacent values.
    fn edge_pairs(seed: u64, n: usize, bits: u32) -> (Vec<u128>, Vec<u128>) {
        let max = (1u128 << (bits - 1)) - 1;
        let mut xs = vec![0, 0, 1, max, max, max - 1, 0, max, 5, 6, 7, 1 << (bits - 2)];
        let mut ys = vec![
            0,
            1,
            0,
            max,
            max - 1,
            max,
            max,
            0,
            6,
            5,
            7,
            (1 << (bits - 2)) + 1,
        ];
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        while xs.len() < n {
            let x = rng.gen::<u128>() & max;
            let y = match rng.gen_range(0..4) {
                0 => x,
                1 => (x + 1).min(max),
                2 => x.saturating_sub(1),
                _ => rng.gen::<u128>() & max,
            };
            xs.push(x);
            ys.push(y);
        }
        (xs, ys)
    }

    async fn check_compare<R: Ring>(n: usize, bits: u32, seed: u64) {
        let (xs, ys) = edge_pairs(seed, n, bits);
        let c = xs[11];
        let xr: Vec<R> = xs.iter().map(|&v| R::from_u128(v)).collect();
        let yr: Vec<R> = ys.iter().map(|&v| R::from_u128(v)).collect();
        let sx = Arc::new(share_all(&xr, seed));
        let sy = Arc::new(share_all(&yr, seed + 1));
        let cr = R::from_u128(c);
        let out = ok(run3(seed, move |mut s| {
            let (sx, sy) = (sx.clone(), sy.clone());
            async move {
                let (x, y) = (&sx[s.id()], &sy[s.id()]);
                let before = s.counters();
                let v = vec![
                    s.lt(x, y, bits).await?,
                    s.lt_public(x, cr, bits).await?,
                    s.gt_public(x, cr, bits).await?,
                    s.ge_public(x, cr, bits).await?,
                    s.le_public(x, cr, bits).await?,
                    s.eq(x, y, bits).await?,
                    s.eq_public(x, cr, bits).await?,
                ];
                let mid = s.counters();
                let opened = s.lt_open(x, y, bits).await?;
                let e0 = s.counters();
                s.eq(x, y, bits).await?;
                let e1 = s.counters();
                Ok((v, opened, mid.rounds - before.rounds, e1.rounds - e0.rounds))
            }
        })
        .await);
        let v = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
        let lt: Vec<bool> = xs.iter().zip(&ys).map(|(x, y)| x < y).collect();
        assert_eq!(col(&v, 0), lt, "lt {bits}");
        assert_eq!(col(&v, 1), xs.iter().map(|x| *x < c).collect::<Vec<_>>());
        assert_eq!(col(&v, 2), xs.iter().map(|x| *x > c).collect::<Vec<_>>());
        assert_eq!(col(&v, 3), xs.iter().map(|x| *x >= c).collect::<Vec<_>>());
        assert_eq!(col(&v, 4), xs.iter().map(|x| *x <= c).collect::<Vec<_>>());
        let eq: Vec<bool> = xs.iter().zip(&ys).map(|(x, y)| x == y).collect();
        assert!(eq.iter().any(|&e| e) && eq.iter().any(|&e| !e));
        assert_eq!(col(&v, 5), eq, "eq {bits}");
        assert_eq!(col(&v, 6), xs.iter().map(|x| *x == c).collect::<Vec<_>>());
        for o in &out {
            assert_eq!(o.1, lt);
            assert_eq!(o.2, 5 * msb_rounds(bits) + 2 * eq_rounds(bits));
            assert_eq!(o.3, eq_rounds(bits));
        }
    }

    #[tokio::test]
    async fn comparisons_match_plaintext() {
        check_compare::<Z64>(500, 64, 1).await;
        check_compare::<Z64>(12, 64, 2).await;
        check_compare::<Z64>(200, 20, 3).await;
        check_compare::<Z128>(300, 84, 4).await;
        check_compare::<Z128>(100, 128, 5).await;
    }

    #[tokio::test]
    async fn ltz_is_the_sign() {
        let vals: Vec<Z64> = [0i64, 1, -1, i64::MAX, i64::MIN, -5, 5, 1 << 40, -(1 << 40)]
            .iter()
            .map(|&v| Z64(v as u64))
            .collect();
        let shares = Arc::new(share_all(&vals, 3));
        let out = ok(run3(3, move |mut s| {
            let shares = shares.clone();
            async move {
                let x = &shares[s.id()];
                Ok(vec![s.ltz(x, 64).await?, s.ltz(x, 42).await?])
            }
        })
        .await);
        let neg64: Vec<bool> = vals.iter().map(|v| (v.0 as i64) < 0).collect();
        // On 42 bits: sign bit of the low 42 bits.
        let neg42: Vec<bool> = vals.iter().map(|v| (v.0 >> 41) & 1 == 1).collect();
        assert_eq!(col(&out, 0), neg64);
        assert_eq!(col(&out, 1), neg42);
    }

    #[tokio::test]
    async fn unequal_lengths_are_invalid() {
        let out = run3(4, |mut s| async move {
            let x = vec![Share::<Z64>::zero(); 3];
            let e1 = s.lt(&x, &x[..2], 64).await.err();
            let e2 = s.eq(&x, &x[..1], 64).await.err();
            let e3 = s.lt_open(&x[..1], &x, 64).await.err();
            Ok((e1, e2, e3, s.counters().rounds))
        })
        .await;
        for r in out {
            let (e1, e2, e3, rounds) = r.unwrap();
            assert!(matches!(e1, Some(EngineError::Invalid(_))));
            assert!(matches!(e2, Some(EngineError::Invalid(_))));
            assert!(matches!(e3, Some(EngineError::Invalid(_))));
            assert_eq!(rounds, 1);
        }
    }

    /// Cost of one `lt` on `n` elements of `bits` bits, as seen by each party.
    async fn lt_cost<R: Ring>(n: usize, bits: u32) -> [Counters; 3] {
        let vals: Vec<R> = (0..n as u64).map(R::from_u64).collect();
        let shares = Arc::new(share_all(&vals, 9));
        ok(run3(9, move |mut s| {
            let shares = shares.clone();
            async move {
                let x = &shares[s.id()];
                let before = s.counters();
                s.lt_public(x, R::from_u64(7), bits).await?;
                let after = s.counters();
                Ok(Counters {
                    rounds: after.rounds - before.rounds,
                    bytes_sent: after.bytes_sent - before.bytes_sent,
                    bytes_received: after.bytes_received - before.bytes_received,
                })
            }
        })
        .await)
    }

    #[tokio::test]
    async fn msb_cost_is_exact() {
        // 64·3 elements: three owner blocks of one word each.
        let k = 3;
        let n = 64 * k;
        let cost = lt_cost::<Z64>(n, 64).await;
        // Input round: 64 planes of the own 64-element block (8 bytes each); then 150 ANDs
        // of n bits each. Every round sends one frame, to the previous party.
        assert_eq!(msb_and_gates(64), 150);
        let payload = 64 * 8 + 150 * n / 8;
        assert_eq!(payload, 4112);
        let expect_bytes = (payload + 8 * FRAME_HEADER) as u64;
        for c in cost {
            assert_eq!(c.rounds, 8);
            assert_eq!(c.bytes_sent, expect_bytes);
            assert_eq!(c.bytes_received, expect_bytes);
        }
    }

    #[tokio::test]
    async fn print_comparison_costs() {
        let n = 64 * 300;
        for (bits, cost) in [
            (64, lt_cost::<Z64>(n, 64).await),
            (84, lt_cost::<Z128>(n, 84).await),
        ] {
            let per = cost.iter().map(|c| c.bytes_sent).max().unwrap() as f64 / n as f64;
            eprintln!(
                "lt on {bits} bits: {} rounds, {per:.2} bytes sent per comparison per party \
                 (max over parties), {} AND gates",
                cost[0].rounds,
                msb_and_gates(bits)
            );
            assert!(per < 40.0);
            // Input (bits/3 bits) plus one bit per AND.
            let model = (bits as f64 / 3.0 + msb_and_gates(bits) as f64) / 8.0;
            assert!((per - model).abs() < 0.5, "{per} vs {model}");
        }
        let eqc = {
            let vals: Vec<Z64> = (0..n as u64).map(Z64).collect();
            let shares = Arc::new(share_all(&vals, 9));
            ok(run3(9, move |mut s| {
                let shares = shares.clone();
                async move {
                    let before = s.counters();
                    s.eq_public(&shares[s.id()], Z64(3), 64).await?;
                    Ok((
                        s.counters().bytes_sent - before.bytes_sent,
                        s.counters().rounds - before.rounds,
                    ))
                }
            })
            .await)
        };
        eprintln!(
            "eq on 64 bits: {} rounds, {:.2} bytes sent per comparison per party",
            eqc[0].1,
            eqc[0].0 as f64 / n as f64
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]
            #[test]
            fn lt_and_eq_match_plaintext(
                pairs in proptest::collection::vec((0u64..1 << 15, 0u64..1 << 15), 0..40),
                seed in any::<u64>(),
            ) {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let xs: Vec<Z64> = pairs.iter().map(|p| Z64(p.0)).collect();
                let ys: Vec<Z64> = pairs.iter().map(|p| Z64(p.1)).collect();
                let sx = Arc::new(share_all(&xs, seed));
                let sy = Arc::new(share_all(&ys, seed ^ 1));
                let out = rt.block_on(run3(seed, move |mut s| {
                    let (sx, sy) = (sx.clone(), sy.clone());
                    async move {
                        let (x, y) = (&sx[s.id()], &sy[s.id()]);
                        Ok(vec![s.lt(x, y, 16).await?, s.eq(x, y, 16).await?])
                    }
                }));
                let out = ok(out);
                let lt: Vec<bool> = pairs.iter().map(|p| p.0 < p.1).collect();
                let eq: Vec<bool> = pairs.iter().map(|p| p.0 == p.1).collect();
                prop_assert_eq!(col(&out, 0), lt);
                prop_assert_eq!(col(&out, 1), eq);
            }
        }
    }
}
