//! Arithmetic protocols on replicated shares: input, open, multiplication, dot products and
//! resharing, as methods of [`Session`], generic over the [`Ring`].
//!
//! Every operation takes whole vectors and costs exactly one round for the whole vector; no
//! protocol sends per-element messages. Received bytes are decoded with
//! [`Ring::decode_vec`]; a wrong length is `EngineError::Malformed` naming the peer. Unequal
//! input lengths are `EngineError::Invalid`. Local (communication-free) operations live in
//! `share`; this module holds no networking code.

use super::error::{EngineError, Result};
use super::ring::Ring;
use super::session::{take, Session};
use super::share::Share;
use super::transport::{Expect, Outgoing, PartyId, Peer, Transport};
use super::verify::ring_proof::Gate;

/// This party's additive share of x · y: x_i y_i + x_i y_{i+1} + x_{i+1} y_i. The three
/// parties' terms sum to x · y; [`Session::products`] sums them into a gate and reshares
/// (one round, proven in malicious mode).
pub fn local_cross<R: Ring>(x: &Share<R>, y: &Share<R>) -> R {
    x.a * y.a + x.a * y.b + x.b * y.a
}

fn same_len(op: &str, x: usize, y: usize) -> Result<()> {
    if x == y {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: vectors of different lengths {x} and {y}"
        )))
    }
}

fn decode<R: Ring>(msg: Option<Vec<u8>>, peer: Peer, n: usize) -> Result<Vec<R>> {
    let bytes = take_elements::<R>(msg, peer, n)?;
    Ok(R::decode_vec(&bytes, n).unwrap_or_default())
}

/// The message expected from `peer`, checked to hold exactly n elements of R.
pub(crate) fn take_elements<R: Ring>(
    msg: Option<Vec<u8>>,
    peer: Peer,
    n: usize,
) -> Result<Vec<u8>> {
    let bytes = take(msg, peer)?;
    if Some(bytes.len()) != n.checked_mul(R::BYTES) {
        return Err(EngineError::Malformed {
            peer: peer.name(),
            expected: format!("{n} ring elements of {} bytes", R::BYTES),
            found: format!("{} bytes", bytes.len()),
        });
    }
    Ok(bytes)
}

/// Elements decoded per block by [`each_element`].
const DECODE_BLOCK: usize = 1024;

/// `f(i, x_i)` for every element of a message checked by [`take_elements`], decoded a
/// block at a time (no decoded copy of the whole message).
pub(crate) fn each_element<R: Ring>(bytes: &[u8], mut f: impl FnMut(usize, R)) {
    for (b, chunk) in bytes.chunks(DECODE_BLOCK * R::BYTES).enumerate() {
        let block = R::decode_vec(chunk, chunk.len() / R::BYTES).unwrap_or_default();
        for (k, x) in block.into_iter().enumerate() {
            f(b * DECODE_BLOCK + k, x);
        }
    }
}

const ONLY_NEXT: Expect = Expect {
    next: true,
    prev: false,
};

impl<T: Transport> Session<T> {
    /// Party `owner` secret-shares `values` (`Some` at the owner, `None` elsewhere; `len`
    /// everywhere). One round; only the owner sends, `len` elements to its previous party.
    ///
    /// With o the owner and r common to o and o + 1: component o + 1 = r, component
    /// o − 1 = 0, component o = x − r, which o sends to o − 1, its other holder.
    pub async fn input<R: Ring>(
        &mut self,
        owner: PartyId,
        values: Option<&[R]>,
        len: usize,
    ) -> Result<Vec<Share<R>>> {
        if owner > 2 {
            return Err(EngineError::Invalid(format!(
                "input: owner {owner}, expected 0, 1 or 2"
            )));
        }
        self.refuse_unproven("input by one party")?;
        let me = self.id();
        match (me == owner, values) {
            (true, None) => {
                return Err(EngineError::Invalid(
                    "input: the owner must pass its values".into(),
                ))
            }
            (false, Some(_)) => {
                return Err(EngineError::Invalid(format!(
                    "input: party {me} is not the owner {owner} and must not pass values"
                )))
            }
            (true, Some(v)) => same_len("input", v.len(), len)?,
            (false, None) => {}
        }
        if let Some(v) = values {
            let r: Vec<R> = self.correlated().common_with(Peer::Next, len);
            let masked: Vec<R> = v.iter().zip(&r).map(|(x, r)| *x - *r).collect();
            let out = Outgoing {
                next: None,
                prev: Some(R::encode_slice(&masked)),
            };
            self.exchange(out, Expect::default()).await?;
            Ok(masked
                .into_iter()
                .zip(r)
                .map(|(a, b)| Share { a, b })
                .collect())
        } else if Peer::Next.of(owner) == me {
            let r: Vec<R> = self.correlated().common_with(Peer::Prev, len);
            self.exchange(Outgoing::default(), Expect::default())
                .await?;
            Ok(r.into_iter().map(|a| Share { a, b: R::zero() }).collect())
        } else {
            let inc = self.exchange(Outgoing::default(), ONLY_NEXT).await?;
            let masked: Vec<R> = decode(inc.next, Peer::Next, len)?;
            Ok(masked
                .into_iter()
                .map(|b| Share { a: R::zero(), b })
                .collect())
        }
    }

    /// Reveals `x` to all three parties. One round; each party sends one element per value
    /// (its `a` to its next party, which lacks exactly that component).
    pub async fn open<R: Ring>(&mut self, x: &[Share<R>]) -> Result<Vec<R>> {
        let mine: Vec<R> = x.iter().map(|s| s.a).collect();
        let b = || R::encode_slice(&x.iter().map(|s| s.b).collect::<Vec<R>>());
        let bytes = self.open_round(R::encode_slice(&mine), b).await?;
        let missing: Vec<R> = decode(Some(bytes), Peer::Prev, x.len())?;
        Ok(x.iter().zip(missing).map(|(s, m)| s.a + s.b + m).collect())
    }

    /// The one round of every product and resharing: sends this party's encoded additive
    /// terms `msg` (n elements of R) to its previous party and returns the next party's,
    /// checked to hold n elements.
    pub(crate) async fn send_product_bytes<R: Ring>(
        &mut self,
        msg: Vec<u8>,
        n: usize,
    ) -> Result<Vec<u8>> {
        let out = Outgoing {
            next: None,
            prev: Some(msg),
        };
        let inc = self.exchange(out, ONLY_NEXT).await?;
        take_elements::<R>(inc.next, Peer::Next, n)
    }

    /// Element-wise products. One round, one element per product per party.
    pub async fn mul<R: Ring>(&mut self, x: &[Share<R>], y: &[Share<R>]) -> Result<Vec<Share<R>>> {
        same_len("mul", x.len(), y.len())?;
        self.mul_elementwise(x, y).await
    }

    /// Σ_j x_j y_j at the cost of one product.
    pub async fn dot<R: Ring>(&mut self, x: &[Share<R>], y: &[Share<R>]) -> Result<Share<R>> {
        let mut v = self.dots(&[(x, y)]).await?;
        v.pop()
            .ok_or_else(|| EngineError::Invalid("dot: no result".into()))
    }

    /// Several dot products in one round, one element per dot product per party.
    #[allow(clippy::type_complexity)] // the pair type is the documented API
    pub async fn dots<R: Ring>(
        &mut self,
        pairs: &[(&[Share<R>], &[Share<R>])],
    ) -> Result<Vec<Share<R>>> {
        let mut gates = Vec::with_capacity(pairs.len());
        for (x, y) in pairs {
            same_len("dot", x.len(), y.len())?;
            gates.push(Gate {
                x,
                y,
                linear: Share::zero(),
            });
        }
        self.products(&gates).await
    }

    /// A fresh sharing of the same values (new random components). One round. Use it before
    /// handing result pairs to a client, so that they are independent of stored shares.
    pub async fn reshare<R: Ring>(&mut self, x: &[Share<R>]) -> Result<Vec<Share<R>>> {
        let gates: Vec<Gate<'_, R>> = x
            .iter()
            .map(|s| Gate {
                x: &[],
                y: &[],
                linear: *s,
            })
            .collect();
        self.products(&gates).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::{local_transports, run3, run3_over, Truncating};
    use crate::engine::ring::{Z128, Z64};
    use crate::engine::session::Counters;
    use crate::engine::share::{reconstruct, Share};
    use crate::engine::transport::framed;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::sync::Arc;
    use std::time::Duration;

    fn rand_vec<R: Ring>(seed: u64, n: usize) -> Vec<R> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n).map(|_| R::random(&mut rng)).collect()
    }

    fn ok<O>(r: [Result<O>; 3]) -> [O; 3] {
        r.map(|x| x.unwrap())
    }

    /// Reconstructs a vector from the three parties' pairs, checking consistency.
    fn recon<R: Ring>(parts: &[Vec<Share<R>>; 3]) -> Vec<R> {
        assert_eq!(parts[0].len(), parts[1].len());
        assert_eq!(parts[0].len(), parts[2].len());
        (0..parts[0].len())
            .map(|j| reconstruct(&[parts[0][j], parts[1][j], parts[2][j]]).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn input_from_each_owner_then_open() {
        for owner in 0..3 {
            let vals: Arc<Vec<Z64>> = Arc::new(rand_vec(owner as u64, 17));
            let v = vals.clone();
            let out = ok(run3(1, move |mut s| {
                let v = v.clone();
                async move {
                    let mine = (s.id() == owner).then_some(v.as_slice());
                    let x = s.input::<Z64>(owner, mine, 17).await?;
                    let opened = s.open(&x).await?;
                    Ok((x, opened, s.counters()))
                }
            })
            .await);
            let shares = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
            assert_eq!(recon(&shares), *vals);
            for (i, (_, opened, c)) in out.iter().enumerate() {
                assert_eq!(opened, &*vals);
                assert_eq!(c.rounds, 3);
                // One frame each: seed 32 and mode 1, open 17*8, (owner only) 17*8 for
                // the input.
                let extra = if i == owner { framed(17 * 8) } else { 0 };
                assert_eq!(c.bytes_sent, framed(33) + framed(17 * 8) + extra);
            }
        }
    }

    #[tokio::test]
    async fn input_wrong_length_is_an_error() {
        let out = run3(2, |mut s| async move {
            let v = [Z64(1), Z64(2)];
            let mine = (s.id() == 0).then_some(&v[..]);
            s.input::<Z64>(0, mine, 3).await
        })
        .await;
        assert!(matches!(out[0], Err(EngineError::Invalid(_))));
        // The owner never sent; party 2 waits for it and sees the dropped link.
        assert!(matches!(out[2], Err(EngineError::Transport { .. })));
        let out = run3(2, |mut s| async move {
            let v = [Z64(1)];
            s.input::<Z64>(0, Some(&v[..]), 1).await
        })
        .await;
        // Parties 1 and 2 refuse; the owner's send may then find party 2 gone.
        assert!(matches!(out[1], Err(EngineError::Invalid(_))));
        assert!(matches!(out[2], Err(EngineError::Invalid(_))));
    }

    #[tokio::test]
    async fn linear_ops_and_public_constants() {
        let out = ok(run3(3, |mut s| async move {
            let v = [Z64(10), Z64(u64::MAX)];
            let w = [Z64(3), Z64(2)];
            let x = s
                .input::<Z64>(0, (s.id() == 0).then_some(&v[..]), 2)
                .await?;
            let y = s
                .input::<Z64>(1, (s.id() == 1).then_some(&w[..]), 2)
                .await?;
            let id = s.id();
            let mut res = crate::engine::share::add_vec(&x, &y)?;
            res.extend(crate::engine::share::sub_vec(&x, &y)?);
            res.extend(x.iter().map(|s| s.mul_public(Z64(5))));
            res.extend(x.iter().map(|s| s.add_public(id, Z64(7))));
            res.push(crate::engine::share::sum(&x).neg());
            s.open(&res).await
        })
        .await);
        let expect = vec![
            Z64(13),
            Z64(1),
            Z64(7),
            Z64(u64::MAX - 2),
            Z64(50),
            Z64(u64::MAX - 4),
            Z64(17),
            Z64(6),
            Z64(0) - (Z64(10) + Z64(u64::MAX)),
        ];
        for o in out {
            assert_eq!(o, expect);
        }
    }

    /// Runs mul and dot on random shared vectors of length n and checks them in plaintext.
    async fn check_mul<R: Ring>(n: usize, seed: u64) {
        let xs: Arc<Vec<R>> = Arc::new(rand_vec(seed, n));
        let ys: Arc<Vec<R>> = Arc::new(rand_vec(seed + 1000, n));
        let (x2, y2) = (xs.clone(), ys.clone());
        let out = ok(run3(seed, move |mut s| {
            let (xs, ys) = (x2.clone(), y2.clone());
            async move {
                let id = s.id();
                let x = s.input::<R>(0, (id == 0).then_some(&xs[..]), n).await?;
                let y = s.input::<R>(2, (id == 2).then_some(&ys[..]), n).await?;
                let before = s.counters();
                let z = s.mul(&x, &y).await?;
                let after = s.counters();
                let d = s.dot(&x, &y).await?;
                let after_dot = s.counters();
                Ok((z, d, before, after, after_dot))
            }
        })
        .await);
        let z = recon(&[out[0].0.clone(), out[1].0.clone(), out[2].0.clone()]);
        let expect: Vec<R> = xs.iter().zip(ys.iter()).map(|(a, b)| *a * *b).collect();
        assert_eq!(z, expect);
        let d = reconstruct(&[out[0].1, out[1].1, out[2].1]).unwrap();
        assert_eq!(d, expect.iter().fold(R::zero(), |acc, v| acc + *v));
        for (_, _, before, after, after_dot) in &out {
            assert_eq!(after.rounds - before.rounds, 1);
            // One frame of n elements each way (an empty one for n = 0).
            assert_eq!(after.bytes_sent - before.bytes_sent, framed(n * R::BYTES));
            assert_eq!(
                after.bytes_received - before.bytes_received,
                framed(n * R::BYTES)
            );
            assert_eq!(after_dot.rounds - after.rounds, 1);
            assert_eq!(after_dot.bytes_sent - after.bytes_sent, framed(R::BYTES));
        }
    }

    #[tokio::test]
    async fn mul_and_dot_match_plaintext() {
        for (i, n) in [0usize, 1, 1000].into_iter().enumerate() {
            check_mul::<Z64>(n, 10 + i as u64).await;
            check_mul::<Z128>(n, 20 + i as u64).await;
        }
    }

    #[tokio::test]
    async fn dots_and_a_variance_gate_in_one_round_each() {
        let out = ok(run3(4, |mut s| async move {
            let id = s.id();
            let v: Vec<Z128> = (1..=6).map(Z128).collect();
            let x = s.input::<Z128>(1, (id == 1).then_some(&v[..]), 6).await?;
            let before = s.counters();
            let d = s
                .dots(&[(&x[..2], &x[2..4]), (&x[..0], &x[..0]), (&x, &x)])
                .await?;
            let after = s.counters();
            // n·Σx² − (Σx)² as one gate over [x…, Σx] and [n·x…, −Σx].
            let total = crate::engine::share::sum(&x);
            let mut xs = x.clone();
            xs.push(total);
            let mut ys: Vec<Share<Z128>> = x.iter().map(|v| v.mul_public(Z128(6))).collect();
            ys.push(total.neg());
            let var = s
                .products(&[crate::engine::Gate {
                    x: &xs,
                    y: &ys,
                    linear: Share::zero(),
                }])
                .await?;
            let mut all = d;
            all.extend(var);
            let opened = s.open(&all).await?;
            Ok((opened, before, after))
        })
        .await);
        for (opened, before, after) in out {
            assert_eq!(
                opened,
                vec![Z128(3 + 8), Z128(0), Z128(91), Z128(6 * 91 - 441)]
            );
            assert_eq!(after.rounds - before.rounds, 1);
            assert_eq!(after.bytes_sent - before.bytes_sent, framed(3 * 16));
        }
    }

    #[tokio::test]
    async fn reshare_keeps_value_and_changes_components() {
        let out = ok(run3(5, |mut s| async move {
            let v = rand_vec::<Z64>(5, 50);
            let x = s
                .input::<Z64>(2, (s.id() == 2).then_some(&v[..]), 50)
                .await?;
            let y = s.reshare(&x).await?;
            Ok((x, y))
        })
        .await);
        let xs = [out[0].0.clone(), out[1].0.clone(), out[2].0.clone()];
        let ys = [out[0].1.clone(), out[1].1.clone(), out[2].1.clone()];
        assert_eq!(recon(&xs), rand_vec::<Z64>(5, 50));
        assert_eq!(recon(&ys), recon(&xs));
        for i in 0..3 {
            for j in 0..50 {
                assert_ne!(xs[i][j].a, ys[i][j].a);
                assert_ne!(xs[i][j].b, ys[i][j].b);
            }
        }
    }

    #[tokio::test]
    async fn unequal_lengths_are_invalid() {
        let out = run3(6, |mut s| async move {
            let x = vec![Share::<Z64>::zero(); 3];
            let e1 = s.mul(&x, &x[..2]).await.err();
            let e2 = s.dots(&[(&x[..], &x[..1])]).await.err();
            Ok((e1, e2, s.counters().rounds))
        })
        .await;
        for r in out {
            let (e1, e2, rounds) = r.unwrap();
            assert!(matches!(e1, Some(EngineError::Invalid(_))));
            assert!(matches!(e2, Some(EngineError::Invalid(_))));
            assert_eq!(rounds, 1, "nothing sent after the seed round");
        }
    }

    #[tokio::test]
    async fn wrong_length_message_is_malformed() {
        let ts = local_transports().map(|inner| Truncating { inner, rounds: 0 });
        let out = run3_over(7, ts, |mut s| async move {
            let x = s.correlated().random_shares::<Z64>(4);
            s.mul(&x, &x).await
        })
        .await;
        for r in out {
            match r {
                Err(EngineError::Malformed {
                    peer,
                    expected,
                    found,
                }) => {
                    assert_eq!(peer, "next");
                    assert_eq!(expected, "4 ring elements of 8 bytes");
                    assert_eq!(found, "31 bytes");
                }
                other => panic!("expected Malformed, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn dropped_peer_is_an_error_not_a_hang() {
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            run3(8, |mut s| async move {
                if s.id() == 1 {
                    // Party 1 leaves right after the seed round.
                    return Ok(Counters::default());
                }
                let x = s.correlated().random_shares::<Z64>(3);
                s.mul(&x, &x).await?;
                s.open(&x).await?;
                Ok(s.counters())
            }),
        )
        .await
        .expect("parties must not hang on a dropped peer");
        assert!(out[1].is_ok());
        assert!(matches!(out[0], Err(EngineError::Transport { .. })));
        assert!(matches!(out[2], Err(EngineError::Transport { .. })));
    }

    #[test]
    fn local_cross_terms_sum_to_product() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (x, y) = (Z64(rng.next_u64()), Z64(rng.next_u64()));
        let sx = crate::engine::share::split(x, &mut rng);
        let sy = crate::engine::share::split(y, &mut rng);
        let t: Z64 = (0..3)
            .map(|i| local_cross(&sx[i], &sy[i]))
            .fold(Z64(0), |a, b| a + b);
        assert_eq!(t, x * y);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]
            #[test]
            fn mul_matches_plaintext(
                pairs in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..20),
                seed in any::<u64>(),
            ) {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let xs: Arc<Vec<Z64>> = Arc::new(pairs.iter().map(|p| Z64(p.0)).collect());
                let ys: Arc<Vec<Z64>> = Arc::new(pairs.iter().map(|p| Z64(p.1)).collect());
                let n = pairs.len();
                let (x2, y2) = (xs.clone(), ys.clone());
                let out = rt.block_on(run3(seed, move |mut s| {
                    let (xs, ys) = (x2.clone(), y2.clone());
                    async move {
                        let id = s.id();
                        let x = s.input::<Z64>(1, (id == 1).then_some(&xs[..]), n).await?;
                        let y = s.input::<Z64>(2, (id == 2).then_some(&ys[..]), n).await?;
                        let z = s.mul(&x, &y).await?;
                        s.open(&z).await
                    }
                }));
                let expect: Vec<Z64> = pairs.iter().map(|p| Z64(p.0.wrapping_mul(p.1))).collect();
                for r in out {
                    prop_assert_eq!(r.unwrap(), expect.clone());
                }
            }
        }
    }
}
